export * from './delegation.module';
export * from './delegation.errors';
export * from './access-policy.service';
export * from './delegation.service';
export * from './delegation-admin.service';
