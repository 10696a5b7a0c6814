export * from './userinfo.module';
export * from './userinfo.service';
export * from './ttl-cache';
export * from './related-claim.service';
export * from './concurrency';
