import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions, MIGRATIONS } from '@rsa/database';

describe('database schema', () => {
  let dataSource: DataSource;

  beforeAll(async () => {
    dataSource = new DataSource(buildDataSourceOptions({ url: process.env.DATABASE_URL!, poolSize: 1 }));
    await dataSource.initialize();
  });
  afterAll(() => dataSource?.destroy());

  it('the committed migrations match the entities (a generated migration would be empty)', async () => {
    const pending = await dataSource.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('every migration has run and synchronize is off', async () => {
    expect(dataSource.options.synchronize).toBe(false);
    expect(await dataSource.showMigrations()).toBe(false);
    const rows: { name: string }[] = await dataSource.query('SELECT name FROM migrations ORDER BY id');
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => (m as { name: string }).name));
  });

  it('audit events are append-only in the database itself', async () => {
    const [{ id }] = await dataSource.query(
      `INSERT INTO audit_event (actor_type, action, details) VALUES ('system', 'test.append_only', '{}') RETURNING id`,
    );
    await expect(dataSource.query(`UPDATE audit_event SET action = 'x' WHERE id = $1`, [id])).rejects.toThrow(/append-only/);
    await expect(dataSource.query(`DELETE FROM audit_event WHERE id = $1`, [id])).rejects.toThrow(/append-only/);
  });
});
