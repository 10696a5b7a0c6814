export * from './env.schema';
export * from './rsa-config';
export * from './config.module';
