export * from './userinfo.module';
export * from './userinfo.service';
export * from './ttl-cache';
