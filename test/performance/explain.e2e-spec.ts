import { randomBytes } from 'node:crypto';
import { DataSource, type QueryRunner } from 'typeorm';
import { TokenHealthService } from '@rsa/auth';
import { encodeCursor } from '@rsa/common';
import type { RsaConfig } from '@rsa/config';
import { AccessPolicy } from '@rsa/delegation';
import { buildDataSourceOptions } from '../../libs/database/src/data-source-options';

/**
 * The list queries of issue 6 use their indexes: EXPLAIN of the exact SQL the product sends (captured
 * from TokenHealthService.listAccounts and AccessPolicy.delegated through a recording DataSource),
 * over a few thousand rows and fresh statistics (ANALYZE), shows no sequential scan of
 * upstream_token / generic_resource_authorization. And a page of `GET /resources` for a delegate
 * holding BIG_DELEGATIONS delegations reads about a page of them, not all of them (EXPLAIN ANALYZE).
 *
 * Everything happens inside one transaction that is rolled back: the rows, and the statistics
 * ANALYZE gathers, are never seen by other test files sharing the database. Rows use a provider of
 * their own as well.
 */
const ACCOUNTS = 3000;
const OWNERS = 100;
const DELEGATES = 300;
const ALIASES = 6000;
/** Delegations held by one more delegate; every 10th grants only a scope its alias does not carry. */
const BIG_DELEGATIONS = 1000;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Recheck Cond'?: string;
  Filter?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

function nodesOf(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodesOf)];
}

/** The SQL and parameters `call` makes a service send (the recorder answers every query with no rows). */
async function captured(call: (ds: DataSource) => Promise<unknown>): Promise<{ sql: string; params: unknown[] }> {
  const sent: { sql: string; params: unknown[] }[] = [];
  const recorder = { query: async (sql: string, params: unknown[] = []) => (sent.push({ sql, params }), []) } as unknown as DataSource;
  await call(recorder);
  expect(sent).toHaveLength(1);
  return sent[0];
}

describe('EXPLAIN: the list queries use their indexes (issue 6)', () => {
  let dataSource: DataSource;
  let runner: QueryRunner;
  const provider = `http://explain-${randomBytes(6).toString('hex')}.test`;
  let delegateId: string;
  let bigDelegateId: string;
  let accountIds: string[];
  const server = process.env.RSA_TEST_DATABASE !== 'embedded';

  beforeAll(async () => {
    if (!server) console.log('[explain] running on embedded PGlite (its planner is PostgreSQL’s; same expectations)');
    dataSource = new DataSource(buildDataSourceOptions({ url: process.env.DATABASE_URL!, poolSize: 1 }));
    await dataSource.initialize();
    runner = dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();

    const prefix = randomBytes(4).toString('hex');
    await runner.query(
      `INSERT INTO account (provider, sub, email, email_verified, name, first_login_at, last_login_at)
       SELECT $1, $2 || '-' || n, $2 || '-' || n || '@explain.example', true, 'Explain ' || n, now(), now()
         FROM generate_series(1, $3::int) AS n`,
      [provider, prefix, ACCOUNTS],
    );
    const rows: { id: string }[] = await runner.query(
      `SELECT id FROM account WHERE provider = $1 ORDER BY (split_part(sub, '-', 2))::int`,
      [provider],
    );
    accountIds = rows.map((r) => r.id);
    await runner.query(
      `INSERT INTO upstream_token (account_id, provider, access_token_enc, refresh_token_enc, scope, access_token_expires_at, refresh_token_expires_at, status)
       SELECT id, $1::text, 'v1.explain.aaaa.bbbb.cccc', 'v1.explain.dddd.eeee.ffff', 'openid', now() + interval '1 hour', now() + interval '14 days',
              CASE WHEN random() < 0.05 THEN 'reauth_required' ELSE 'valid' END
         FROM account WHERE provider = $1::text`,
      [provider],
    );
    // Aliases of OWNERS owners, each delegated (scope read) to one of DELEGATES delegates, round robin.
    const owners = accountIds.slice(0, OWNERS);
    const delegates = accountIds.slice(OWNERS, OWNERS + DELEGATES);
    delegateId = delegates[0];
    await runner.query(
      `WITH kind AS (SELECT id FROM generic_resource WHERE identifier = 'account'),
            ensured AS (
              INSERT INTO generic_resource (identifier, name, path_template, scopes)
              SELECT 'account', 'Bank account', '/accounts/{id}', ARRAY['read', 'write'] WHERE NOT EXISTS (SELECT 1 FROM kind)
              RETURNING id),
            resource AS (SELECT id FROM kind UNION ALL SELECT id FROM ensured)
       INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status)
       SELECT ($1::uuid[])[1 + n % $2::int], resource.id, 'explain-' || n, 'Account ' || n, 'active'
         FROM generate_series(1, $3::int) AS n, resource`,
      [owners, OWNERS, ALIASES],
    );
    await runner.query(
      `INSERT INTO generic_resource_alias_scope (alias_id, scope)
       SELECT al.id, s FROM generic_resource_alias al, unnest(ARRAY['read', 'write']) AS s WHERE al.owner_account_id = ANY($1::uuid[])`,
      [owners],
    );
    await runner.query(
      `INSERT INTO generic_resource_authorization (alias_id, owner_account_id, delegate_account_id, status, created_by)
       SELECT al.id, al.owner_account_id, ($2::uuid[])[1 + (row_number() OVER (ORDER BY al.id))::int % $3::int], 'active', 'explain'
         FROM generic_resource_alias al WHERE al.owner_account_id = ANY($1::uuid[])`,
      [owners, delegates, DELEGATES],
    );
    await runner.query(
      `INSERT INTO generic_resource_authorization_scope (authorization_id, scope)
       SELECT a.id, 'read' FROM generic_resource_authorization a WHERE a.owner_account_id = ANY($1::uuid[])`,
      [owners],
    );
    // One delegate holding BIG_DELEGATIONS delegations (like the benchmark's), in alias id order every
    // 10th with no effective scope: those must be skipped, and the page still filled from the next ones.
    bigDelegateId = accountIds[OWNERS + DELEGATES];
    await runner.query(
      `WITH big AS (
         INSERT INTO generic_resource_authorization (alias_id, owner_account_id, delegate_account_id, status, created_by)
         SELECT al.id, al.owner_account_id, $2::uuid, 'active', 'explain'
           FROM generic_resource_alias al WHERE al.owner_account_id = ANY($1::uuid[]) ORDER BY al.id LIMIT $3
         RETURNING id, alias_id)
       INSERT INTO generic_resource_authorization_scope (authorization_id, scope)
       SELECT id, CASE WHEN row_number() OVER (ORDER BY alias_id) % 10 = 0 THEN 'not-on-the-alias' ELSE 'read' END FROM big`,
      [owners, bigDelegateId, BIG_DELEGATIONS],
    );
    await analyze();
  }, 60_000);

  /**
   * Statistics that count this test's rows. They are inserted in a transaction that is never
   * committed, and ANALYZE writes a table's row count in place: an autovacuum ANALYZE prompted by
   * another test file's writes overwrites it with the committed rows only — a table that looks
   * nearly empty, which a sequential scan suits. So every plan is taken right after an ANALYZE here.
   */
  async function analyze(): Promise<void> {
    for (const table of ['account', 'upstream_token', 'generic_resource_alias', 'generic_resource_alias_scope', 'generic_resource_authorization', 'generic_resource_authorization_scope']) {
      await runner.query(`ANALYZE ${table}`);
    }
  }

  afterAll(async () => {
    if (runner?.isTransactionActive) await runner.rollbackTransaction();
    await runner?.release();
    await dataSource?.destroy();
  });

  async function plan(query: { sql: string; params: unknown[] }): Promise<PlanNode[]> {
    await analyze();
    const [row] = await runner.query(`EXPLAIN (FORMAT JSON) ${query.sql}`, query.params);
    const json = typeof row['QUERY PLAN'] === 'string' ? JSON.parse(row['QUERY PLAN']) : row['QUERY PLAN'];
    const nodes = nodesOf(json[0].Plan as PlanNode);
    if (process.env.SHOW_PLANS) {
      const [text] = [await runner.query(`EXPLAIN ${query.sql}`, query.params)];
      console.log(text.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'));
    }
    return nodes;
  }

  const seqScansOf = (nodes: PlanNode[], tables: string[]) =>
    nodes.filter((n) => n['Node Type'] === 'Seq Scan' && tables.includes(n['Relation Name'] ?? '')).map((n) => n['Relation Name']);
  /** Indexes of `table` that the plan uses (a Bitmap Index Scan names the index, not the table). */
  const indexesOn = async (nodes: PlanNode[], table: string) => {
    const own: { indexname: string }[] = await runner.query('SELECT indexname FROM pg_indexes WHERE tablename = $1', [table]);
    const names = new Set(own.map((r) => r.indexname));
    return nodes.map((n) => n['Index Name']).filter((name): name is string => !!name && names.has(name));
  };

  const health = (ds: DataSource) => new TokenHealthService(ds, undefined as never, { upstream: { issuer: provider } } as RsaConfig);

  it('token-health list, first page: index on upstream_token (account_id order), no sequential scan', async () => {
    const query = await captured((ds) => health(ds).listAccounts({}, { limit: 50 }));
    const nodes = await plan(query);
    expect(seqScansOf(nodes, ['upstream_token', 'generic_resource_authorization'])).toEqual([]);
    expect(await indexesOn(nodes, 'upstream_token')).not.toEqual([]);
  });

  it('token-health list, deep cursor: same plan shape, no sequential scan', async () => {
    const cursor = encodeCursor({ a: [...accountIds].sort()[Math.floor(ACCOUNTS * 0.9)] });
    const query = await captured((ds) => health(ds).listAccounts({}, { cursor, limit: 50 }));
    const nodes = await plan(query);
    expect(seqScansOf(nodes, ['upstream_token', 'generic_resource_authorization'])).toEqual([]);
    expect(await indexesOn(nodes, 'upstream_token')).not.toEqual([]);
    // Regression (measured with npm run bench: deep-cursor p99 210 ms → 27 ms over 100,000 accounts):
    // the account side of the join must be bounded too, not scanned from its first row on every page.
    // At this test's size the planner may read that side with a sequential scan; then it must still
    // carry the keyset bound (`id > cursor`) as a filter.
    const unbounded = nodes
      .filter((n) => n['Relation Name'] === 'account' && !n['Index Cond'] && !n['Recheck Cond'] && !/\bid > /.test(n['Filter'] ?? ''))
      .map((n) => n['Node Type']);
    expect(unbounded).toEqual([]);
  });

  it('shared with me (/resources delegated section): index on generic_resource_authorization by delegate, no sequential scan', async () => {
    const query = await captured((ds) => new AccessPolicy(ds).delegated(delegateId, { limit: 51 }));
    const nodes = await plan(query);
    expect(seqScansOf(nodes, ['upstream_token', 'generic_resource_authorization'])).toEqual([]);
    expect(await indexesOn(nodes, 'generic_resource_authorization')).toContain('ix_authz_delegate_status_alias');
  });

  it(`shared with me, first page for a delegate with ${BIG_DELEGATIONS} delegations: reads about a page of them, not all`, async () => {
    const limit = 51;
    const query = await captured((ds) => new AccessPolicy(ds).delegated(bigDelegateId, { limit }));
    await analyze();
    const [row] = await runner.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${query.sql}`, query.params);
    const json = typeof row['QUERY PLAN'] === 'string' ? JSON.parse(row['QUERY PLAN']) : row['QUERY PLAN'];
    const nodes = nodesOf(json[0].Plan as PlanNode);
    if (process.env.SHOW_PLANS) console.log(JSON.stringify(json[0].Plan, null, 1));
    const scans = nodes.filter((n) => n['Relation Name'] === 'generic_resource_authorization');
    expect(scans.map((n) => n['Index Name'])).toEqual(['ix_authz_delegate_status_alias']);
    // Rows the scan produced plus those its filter (the effective-scope test) dropped: ~limit × 10/9.
    const read = scans.reduce((sum, n) => sum + ((n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0)) * (n['Actual Loops'] ?? 1), 0);
    expect(read).toBeGreaterThanOrEqual(limit);
    expect(read).toBeLessThan(2 * limit);

    // And the page is right: the first `limit` delegations with an effective scope, in alias id order.
    const page = await new AccessPolicy({ query: (sql: string, params?: unknown[]) => runner.query(sql, params) } as unknown as DataSource).delegated(bigDelegateId, { limit });
    const expected: { alias_id: string }[] = await runner.query(
      `SELECT a.alias_id FROM generic_resource_authorization a JOIN generic_resource_authorization_scope s ON s.authorization_id = a.id
        WHERE a.delegate_account_id = $1 AND s.scope = 'read' ORDER BY a.alias_id LIMIT $2`,
      [bigDelegateId, limit],
    );
    expect(page.map((r) => r.id)).toEqual(expected.map((r) => r.alias_id));
    expect(page.every((r) => r.scopes.join() === 'read')).toBe(true);
  });

  it('related claim (all delegated to the caller): no sequential scan of the delegations', async () => {
    const query = await captured((ds) => new AccessPolicy(ds).allDelegated(delegateId));
    const nodes = await plan(query);
    expect(seqScansOf(nodes, ['upstream_token', 'generic_resource_authorization'])).toEqual([]);
  });
});
