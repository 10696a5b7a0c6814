export * from './resources.module';
export * from './catalogue.service';
export * from './resource-discovery.service';
export * from './resource-proxy.service';
