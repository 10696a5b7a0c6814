export * from './entities';
export * from './data-source-options';
export * from './embedded-postgres';
export * from './audit.service';
export * from './audit-query.service';
export * from './database-health.service';
export * from './database.module';
export { MIGRATIONS } from './migrations';
export * from './rate-limit';
