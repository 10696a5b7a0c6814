export * from './resources.module';
export * from './catalogue.service';
export * from './catalogue-admin.service';
export * from './catalogue.errors';
export * from './resource-discovery.service';
export * from './resource-proxy.service';
