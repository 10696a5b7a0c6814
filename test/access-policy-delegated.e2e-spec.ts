import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource, type QueryRunner } from 'typeorm';
import { AccessPolicy, type DelegatedResource } from '@rsa/delegation';
import { buildDataSourceOptions } from '../libs/database/src/data-source-options';

/**
 * What AccessPolicy.delegated (the delegated section of `GET /resources`, one keyset page at a time)
 * and AccessPolicy.allDelegated (the `related` claim) return, against a model, over random data that
 * holds every case the rules distinguish: delegations active, revoked, pending by email, expired or
 * expiring later; aliases gone, or owned by someone else than the delegating owner now; granted
 * scopes that the alias no longer carries (some delegations keep none: they must not show, nor take
 * a page slot); two resource types; several owners, one without name or email.
 *
 * Every page size, type and owner filter is walked to the end through `afterId`: the pages put end to
 * end are exactly the model's list, each page is full but the last, and no page is ever empty while
 * rows remain. Everything happens in one transaction that is rolled back.
 */
const SEEDS = [1, 2];
const OWNERS = 6;
const DELEGATES = 3;
const ALIASES = 150;
const SCOPES = ['read', 'write'] as const;
const GRANTABLE = ['read', 'write', 'admin'] as const;

/** mulberry32: a small seeded PRNG, so that a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Account {
  id: string;
  sub: string;
  name: string | null;
  email: string | null;
}
interface Alias {
  id: string;
  owner: Account;
  type: string;
  typeId: string;
  name: string;
  status: 'active' | 'gone';
  scopes: string[];
}
interface Authorization {
  id: string;
  alias: Alias;
  /** the delegating owner (not always the alias's owner now) */
  owner: Account;
  delegate: Account | null;
  status: 'active' | 'revoked' | 'expired';
  /** hours from now; null: never */
  expiresInHours: number | null;
  scopes: string[];
}

describe('AccessPolicy: delegated pages and allDelegated against a model', () => {
  let dataSource: DataSource;
  let runner: QueryRunner;
  let policy: AccessPolicy;

  beforeAll(async () => {
    dataSource = new DataSource(buildDataSourceOptions({ url: process.env.DATABASE_URL!, poolSize: 1 }));
    await dataSource.initialize();
    runner = dataSource.createQueryRunner();
    await runner.connect();
    // The policy's queries go through the transaction's connection.
    policy = new AccessPolicy({ query: (sql: string, params?: unknown[]) => runner.query(sql, params) } as unknown as DataSource);
  });

  afterAll(async () => {
    if (runner?.isTransactionActive) await runner.rollbackTransaction();
    await runner?.release();
    await dataSource?.destroy();
  });

  afterEach(async () => {
    if (runner.isTransactionActive) await runner.rollbackTransaction();
  });

  async function seed(seedNo: number): Promise<{ delegates: Account[]; owners: Account[]; authorizations: Authorization[]; types: string[]; now: Date }> {
    const random = prng(seedNo);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const subset = <T>(items: readonly T[]): T[] => items.filter(() => random() < 0.5);
    const tag = randomBytes(4).toString('hex');
    const provider = `http://policy-${tag}.test`;

    const accounts: Account[] = Array.from({ length: OWNERS + DELEGATES }, (_, i) => ({
      id: randomUUID(),
      sub: `policy-${tag}-${i}`,
      name: i === 1 ? null : `Policy ${i}`,
      email: i === 1 ? null : `policy-${tag}-${i}@example.test`,
    }));
    await runner.query(
      `INSERT INTO account (id, provider, sub, email, email_verified, name, first_login_at, last_login_at)
       SELECT id, $1, sub, email, true, name, now(), now() FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS t(id, sub, email, name)`,
      [provider, accounts.map((a) => a.id), accounts.map((a) => a.sub), accounts.map((a) => a.email), accounts.map((a) => a.name)],
    );
    const owners = accounts.slice(0, OWNERS);
    const delegates = accounts.slice(OWNERS);

    const types = [`policy-a-${tag}`, `policy-b-${tag}`];
    const typeRows: { id: string; identifier: string }[] = await runner.query(
      `INSERT INTO generic_resource (identifier, name, path_template, scopes)
       SELECT identifier, identifier, '/x/{id}', ARRAY['read', 'write'] FROM unnest($1::text[]) AS identifier RETURNING id, identifier`,
      [types],
    );
    const typeId = new Map(typeRows.map((r) => [r.identifier, r.id]));

    const aliases: Alias[] = Array.from({ length: ALIASES }, (_, i) => {
      const type = pick(types);
      return {
        id: randomUUID(),
        owner: pick(owners),
        type,
        typeId: typeId.get(type)!,
        name: `Alias ${i}`,
        status: random() < 0.15 ? 'gone' : 'active',
        scopes: random() < 0.1 ? [] : subset(SCOPES),
      };
    });
    await runner.query(
      `INSERT INTO generic_resource_alias (id, owner_account_id, generic_resource_id, external_id, display_name, status)
       SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[])`,
      [aliases.map((a) => a.id), aliases.map((a) => a.owner.id), aliases.map((a) => a.typeId), aliases.map((a) => `ext-${a.id}`), aliases.map((a) => a.name), aliases.map((a) => a.status)],
    );
    const aliasScopes = aliases.flatMap((a) => a.scopes.map((scope) => [a.id, scope]));
    await runner.query(`INSERT INTO generic_resource_alias_scope (alias_id, scope) SELECT * FROM unnest($1::uuid[], $2::text[])`, [
      aliasScopes.map((r) => r[0]),
      aliasScopes.map((r) => r[1]),
    ]);

    const authorizations: Authorization[] = [];
    for (const alias of aliases) {
      for (const delegate of [...delegates, null]) {
        if (random() < 0.4) continue;
        // Mostly the alias's owner; sometimes the alias has changed hands since.
        const owner = random() < 0.85 ? alias.owner : pick(owners.filter((o) => o !== alias.owner));
        const make = (status: Authorization['status']): Authorization => ({
          id: randomUUID(),
          alias,
          owner,
          delegate,
          status,
          expiresInHours: random() < 0.6 ? null : pick([-48, -1, 1, 48]),
          scopes: random() < 0.1 ? [] : subset(GRANTABLE),
        });
        // At most one active delegation per alias and delegate (or email); ended ones alongside.
        if (random() < 0.3) authorizations.push(make(pick(['revoked', 'expired'] as const)));
        authorizations.push(make(random() < 0.75 ? 'active' : pick(['revoked', 'expired'] as const)));
      }
    }
    await runner.query(
      `INSERT INTO generic_resource_authorization (id, alias_id, owner_account_id, delegate_account_id, delegate_email, status, expires_at, created_by)
       SELECT id, alias_id, owner_id, delegate_id, CASE WHEN delegate_id IS NULL THEN 'pending-' || id || '@example.test' END, status,
              CASE WHEN hours IS NOT NULL THEN now() + hours * interval '1 hour' END, 'test'
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::int[]) AS t(id, alias_id, owner_id, delegate_id, status, hours)`,
      [
        authorizations.map((a) => a.id),
        authorizations.map((a) => a.alias.id),
        authorizations.map((a) => a.owner.id),
        authorizations.map((a) => a.delegate?.id ?? null),
        authorizations.map((a) => a.status),
        authorizations.map((a) => a.expiresInHours),
      ],
    );
    const granted = authorizations.flatMap((a) => a.scopes.map((scope) => [a.id, scope]));
    await runner.query(`INSERT INTO generic_resource_authorization_scope (authorization_id, scope) SELECT * FROM unnest($1::uuid[], $2::text[])`, [
      granted.map((r) => r[0]),
      granted.map((r) => r[1]),
    ]);
    for (const table of ['generic_resource_alias', 'generic_resource_alias_scope', 'generic_resource_authorization', 'generic_resource_authorization_scope']) {
      await runner.query(`ANALYZE ${table}`);
    }
    const [{ now }] = await runner.query('SELECT now() AS now');
    return { delegates, owners, authorizations, types, now };
  }

  /** The rules, in TypeScript: what `delegate` holds, as AccessPolicy answers it, in alias id order. */
  function model(authorizations: Authorization[], delegate: Account, expiresAt: (a: Authorization) => Date | null): DelegatedResource[] {
    return authorizations
      .filter(
        (a) =>
          a.delegate === delegate &&
          a.status === 'active' &&
          (a.expiresInHours === null || a.expiresInHours > 0) &&
          a.alias.status === 'active' &&
          a.alias.owner === a.owner,
      )
      .map((a) => ({ a, scopes: a.scopes.filter((s) => a.alias.scopes.includes(s)).sort() }))
      .filter(({ scopes }) => scopes.length > 0)
      .map(({ a, scopes }) => ({
        id: a.alias.id,
        type: a.alias.type,
        name: a.alias.name,
        scopes,
        ownerAccountId: a.owner.id,
        ownerName: a.owner.name,
        ownerEmail: a.owner.email,
        ownerUpstreamSub: a.owner.sub,
        authorizationId: a.id,
        expiresAt: expiresAt(a),
      }))
      .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  }

  it.each(SEEDS)('seed %i: every page, for every page size and filter, is the model’s; allDelegated too', async (seedNo) => {
    await runner.startTransaction();
    const { delegates, owners, authorizations, types } = await seed(seedNo);
    const expiries: { id: string; expires_at: Date | null }[] = await runner.query(
      'SELECT id, expires_at FROM generic_resource_authorization WHERE id = ANY($1::uuid[])',
      [authorizations.map((a) => a.id)],
    );
    const expiryOf = new Map(expiries.map((r) => [r.id, r.expires_at]));
    const expiresAt = (a: Authorization) => expiryOf.get(a.id) ?? null;

    let cases = 0;
    for (const delegate of delegates) {
      const all = model(authorizations, delegate, expiresAt);
      // The data holds the cases that matter (checked, so that the test cannot pass on empty data).
      expect(all.length).toBeGreaterThan(5);

      const byOwner = [...all].sort((x, y) => (x.ownerAccountId < y.ownerAccountId ? -1 : x.ownerAccountId > y.ownerAccountId ? 1 : x.id < y.id ? -1 : 1));
      expect(await policy.allDelegated(delegate.id)).toEqual(byOwner);

      const notAnOwner = delegates.find((d) => d !== delegate)!;
      for (const type of [undefined, ...types, 'no-such-type']) {
        for (const owner of [undefined, ...owners, notAnOwner].map((o) => o?.id)) {
          const expected = all.filter((r) => (!type || r.type === type) && (!owner || r.ownerAccountId === owner));
          for (const limit of [1, 2, 7, 51]) {
            const seen: DelegatedResource[] = [];
            let afterId: string | undefined;
            for (;;) {
              const page = await policy.delegated(delegate.id, { type, owner, afterId, limit });
              cases++;
              const want = expected.slice(seen.length, seen.length + limit);
              expect({ type, owner, limit, afterId, page }).toEqual({ type, owner, limit, afterId, page: want });
              seen.push(...page);
              if (page.length < limit) break;
              afterId = page[page.length - 1].id;
            }
            expect(seen).toEqual(expected);
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(500);

    // The cases that must be left out are in the data: a delegation that would count but for its
    // empty effective scopes, one whose alias changed hands, one on a gone alias, expired ones.
    const live = authorizations.filter((a) => a.delegate && a.status === 'active' && (a.expiresInHours === null || a.expiresInHours > 0));
    expect(live.some((a) => a.alias.status === 'active' && a.alias.owner === a.owner && a.scopes.length && !a.scopes.some((s) => a.alias.scopes.includes(s)))).toBe(true);
    expect(live.some((a) => a.alias.owner !== a.owner)).toBe(true);
    expect(live.some((a) => a.alias.status === 'gone')).toBe(true);
    expect(authorizations.some((a) => a.delegate && a.status === 'active' && a.expiresInHours !== null && a.expiresInHours < 0)).toBe(true);
  }, 60_000);
});
