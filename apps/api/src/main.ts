import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfig } from '@rsa/config';
import { createApiApp } from './bootstrap';

/** Production entry: one process, one app, configuration from the environment (DATABASE_URL required). */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  const app = await createApiApp(config);
  // One app per process in production: let Nest close it (and its pool) on SIGTERM/SIGINT.
  app.enableShutdownHooks();
  await app.listen(config.ports.api);
  new Logger('Bootstrap').log(`api listening on port ${config.ports.api}; issuer ${config.issuer}`);
}

void main().catch((error: unknown) => {
  console.error(`api failed to start: ${(error as Error).message}`);
  process.exit(1);
});
