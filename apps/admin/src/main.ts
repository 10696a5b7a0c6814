import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfig } from '@rsa/config';
import { createAdminApp } from './bootstrap';

/** Production entry: one process, one app, configuration from the environment (DATABASE_URL required). */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(1);
  }
  const app = await createAdminApp(config);
  // One app per process in production: let Nest close it (and its pool) on SIGTERM/SIGINT.
  app.enableShutdownHooks();
  await app.listen(config.ports.admin);
  new Logger('Bootstrap').log(`admin listening on port ${config.ports.admin}`);
}

void main().catch((error: unknown) => {
  console.error(`admin failed to start: ${(error as Error).message}`);
  process.exit(1);
});
