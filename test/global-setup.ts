import 'reflect-metadata';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from '../libs/database/src/data-source-options';
import { startEmbeddedPostgres } from '../libs/database/src/embedded-postgres';

/**
 * Runs once before all test files, in plain Node. Without DATABASE_URL the suites run on an
 * in-memory embedded PostgreSQL (PGlite over the wire protocol); with it, on that real server.
 * Either way the committed migrations are applied first: tests never use `synchronize`.
 */
export default async function globalSetup(): Promise<void> {
  // Every worker's log output and every credential the tests see go here (see test/log-capture.ts).
  process.env.RSA_TEST_LOG_DIR = mkdtempSync(join(tmpdir(), 'rsa-test-logs-'));
  if (!process.env.DATABASE_URL) {
    const embedded = await startEmbeddedPostgres({ dataDir: null });
    (globalThis as { __RSA_EMBEDDED_PG__?: unknown }).__RSA_EMBEDDED_PG__ = embedded;
    process.env.DATABASE_URL = embedded.url;
    process.env.RSA_TEST_DATABASE = 'embedded';
    console.log(`\n[tests] no DATABASE_URL: using embedded PostgreSQL (PGlite) at ${embedded.url}`);
  } else {
    process.env.RSA_TEST_DATABASE = 'server';
    console.log(`\n[tests] using the PostgreSQL server at DATABASE_URL (${new URL(process.env.DATABASE_URL).host})`);
  }
  const dataSource = new DataSource(buildDataSourceOptions({ url: process.env.DATABASE_URL, poolSize: 1 }));
  await dataSource.initialize();
  await dataSource.runMigrations();
  await dataSource.destroy();
}
