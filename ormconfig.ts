import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from './libs/database/src/data-source-options';

/**
 * The DataSource the TypeORM CLI uses (`npm run migration:generate|run|revert`), built from the same
 * options as the apps. Needs DATABASE_URL: migrations are run explicitly against a real database.
 */
const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error('DATABASE_URL is required for the migration commands (e.g. postgres://127.0.0.1:5432/rsa).');
}

export default new DataSource(buildDataSourceOptions({ url, applicationName: 'rsa-cli' }));
