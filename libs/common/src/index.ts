export * from './domain-error';
export * from './bearer-error';
export * from './request-id';
export * from './all-exceptions.filter';
export * from './validation';
export * from './timeout';
export * from './http-app';
export * from './pagination';
