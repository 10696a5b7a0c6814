import * as oidc from 'openid-client';
import { PostgresQueryRunner } from 'typeorm/driver/postgres/PostgresQueryRunner';
import { DataRevision } from '@rsa/database';
import { UpstreamTokenVault } from '@rsa/auth';
import { expectBearerError, tokenDigest } from './support/bearer-assertions';
import { bearer, json } from './support/http';
import { newRmUser, type RmUser } from './support/resource-users';
import { startSecondInstance, type ApiInstance } from './support/second-instance';
import { startStack, type TestStack } from './support/stack';
import { randomId } from './support/test-config';

const REVISION_QUERY = 'SELECT "value", pg_postmaster_start_time() AS started FROM "data_revision" WHERE "id" = 1';
const revisionValue = (revision: string) => BigInt(revision.split('.')[1]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Related = { sub: string; resources: { id: string }[] }[];
type Page = { delegated: { sub: string; resources: { id: string }[] }[] };

/**
 * The request path keeps validated tokens and each caller's delegations in memory, valid under one
 * data revision (DataRevision; database triggers move it in the same transaction as a change).
 * Every request reads the revision afresh, so a revocation takes effect on the next request — on
 * whichever instance it lands, and whoever made the change (the API, the admin app, plain SQL).
 */
describe('Cached token validation and delegations: a change takes effect on the next request, on any instance', () => {
  let stack: TestStack;
  let second: ApiInstance;
  let alice: RmUser;
  let bob: RmUser;

  beforeAll(async () => {
    stack = await startStack({ env: { RESOURCE_DISCOVERY_STALE_SECONDS: '86400' } });
    second = await startSecondInstance(stack);
    [alice, bob] = await Promise.all([newRmUser(stack, 'rev-alice'), newRmUser(stack, 'rev-bob')]);
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  const at = (instance: 0 | 1, user: RmUser, path: string, init: RequestInit = {}) =>
    fetch(`${instance === 0 ? stack.issuer : second.url}${path}`, bearer(user.token, init));
  const relatedOf = async (instance: 0 | 1, user: RmUser): Promise<Related> => {
    const res = await at(instance, user, '/userinfo');
    expect(res.status).toBe(200);
    return (await json(res)).related;
  };
  const delegatedOf = async (instance: 0 | 1, user: RmUser): Promise<string[]> => {
    const res = await at(instance, user, '/resources');
    expect(res.status).toBe(200);
    return ((await json(res)) as Page).delegated.flatMap((group) => group.resources.map((r) => r.id));
  };
  /** A new alias of alice's, delegated to bob for reading through the API (instance 0). */
  const delegateToBob = async (): Promise<{ aliasId: string; delegationId: string }> => {
    const [{ id: aliasId }] = await stack.dataSource.query(
      `WITH alias AS (
         INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status, last_seen_at)
         SELECT $1::uuid, id, $2::text, 'Account ' || $2::text, 'active', now() FROM generic_resource WHERE identifier = 'account'
         RETURNING id),
       scoped AS (INSERT INTO generic_resource_alias_scope (alias_id, scope) SELECT alias.id, s FROM alias, unnest(ARRAY['read', 'write']) s)
       SELECT id FROM alias`,
      [alice.sub, randomId('rev-ext')],
    );
    const res = await at(0, alice, '/delegations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ aliases: [aliasId], scopes: ['read'], delegate: { sub: bob.sub } }),
    });
    expect(res.status).toBe(201);
    const [delegation] = await json(res);
    return { aliasId, delegationId: delegation.id };
  };
  const sees = (related: Related, aliasId: string) => related.some((e) => e.resources.some((r) => r.id === aliasId));

  it('a warm /userinfo with `related` runs one statement: the data revision', async () => {
    const { aliasId } = await delegateToBob();
    const revision = async () => ((await stack.dataSource.query(REVISION_QUERY)) as { value: string }[])[0].value;
    // Other test files write to the same database and move the revision: measure again when it moved.
    let statements: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = await revision();
      expect(sees(await relatedOf(0, bob), aliasId)).toBe(true);
      const spy = jest.spyOn(PostgresQueryRunner.prototype, 'query');
      try {
        expect(sees(await relatedOf(0, bob), aliasId)).toBe(true);
        // Instance 0's pool only: each instance validates with its own validator and caches.
        statements = spy.mock.calls.filter((_, i) => (spy.mock.contexts[i] as PostgresQueryRunner).connection === stack.dataSource).map(([sql]) => sql);
      } finally {
        spy.mockRestore();
      }
      if ((await revision()) === before) break;
    }
    expect(statements).toEqual([REVISION_QUERY]);
  });

  it('a token revoked through instance 0 is refused by instance 1 on its next request (and by instance 0)', async () => {
    const carol = await newRmUser(stack, 'rev-carol');
    for (const instance of [0, 1, 1] as const) expect((await at(instance, carol, '/userinfo')).status).toBe(200);
    await oidc.tokenRevocation(carol.session.configuration, carol.token);
    await expectBearerError(await at(1, carol, '/userinfo'), 401, 'invalid_token');
    await expectBearerError(await at(0, carol, '/resources'), 401, 'invalid_token');
  });

  it('a delegation revoked through instance 0 is gone from instance 1 on the next request', async () => {
    const { aliasId, delegationId } = await delegateToBob();
    for (let i = 0; i < 2; i++) {
      expect(sees(await relatedOf(1, bob), aliasId)).toBe(true);
      expect(await delegatedOf(1, bob)).toContain(aliasId);
    }
    expect((await at(0, alice, `/delegations/${delegationId}`, { method: 'DELETE' })).status).toBe(204);
    expect(sees(await relatedOf(1, bob), aliasId)).toBe(false);
    expect(await delegatedOf(1, bob)).not.toContain(aliasId);
    expect((await at(1, bob, `/resources/${aliasId}`)).status).toBe(404);
  });

  it('a change made straight in the database (not through the API) is seen on the next request', async () => {
    const { aliasId, delegationId } = await delegateToBob();
    for (let i = 0; i < 2; i++) expect(sees(await relatedOf(1, bob), aliasId)).toBe(true);
    await stack.dataSource.query(`UPDATE generic_resource_authorization SET status = 'revoked', revoked_at = now() WHERE id = $1`, [delegationId]);
    expect(sees(await relatedOf(1, bob), aliasId)).toBe(false);

    // Taking the last scope from the alias leaves the delegation nothing to grant.
    const other = await delegateToBob();
    for (let i = 0; i < 2; i++) expect(sees(await relatedOf(1, bob), other.aliasId)).toBe(true);
    await stack.dataSource.query(`DELETE FROM generic_resource_alias_scope WHERE alias_id = $1 AND scope = 'read'`, [other.aliasId]);
    expect(sees(await relatedOf(1, bob), other.aliasId)).toBe(false);
  });

  it("an owner's renamed resource, and a delegation whose granted scopes were taken, show on the next request", async () => {
    const { aliasId } = await delegateToBob();
    const ownedName = async () => {
      const res = await at(1, alice, '/resources?limit=100');
      expect(res.status).toBe(200);
      const body = (await json(res)) as { owned: { id: string; name: string }[] };
      return body.owned.find((r) => r.id === aliasId)?.name;
    };
    for (let i = 0; i < 2; i++) expect(await ownedName()).toMatch(/^Account /);
    await stack.dataSource.query(`UPDATE generic_resource_alias SET display_name = 'Renamed' WHERE id = $1`, [aliasId]);
    expect(await ownedName()).toBe('Renamed');

    // The proxy's access decision is cached too: once bob's granted scopes are gone, so is his access.
    const proxied = () => at(1, bob, `/resources/${aliasId}/data/`);
    for (let i = 0; i < 2; i++) expect((await at(1, bob, `/resources/${aliasId}`)).status).toBe(200);
    await stack.dataSource.query(
      `DELETE FROM generic_resource_authorization_scope WHERE authorization_id IN (SELECT id FROM generic_resource_authorization WHERE alias_id = $1)`,
      [aliasId],
    );
    expect((await at(1, bob, `/resources/${aliasId}`)).status).toBe(404);
    expect((await proxied()).status).toBe(404);
  });

  it('a delegation leaves the cached list when it expires, with nothing else changing', async () => {
    const { aliasId, delegationId } = await delegateToBob();
    await stack.dataSource.query(`UPDATE generic_resource_authorization SET expires_at = now() + interval '1500 milliseconds' WHERE id = $1`, [
      delegationId,
    ]);
    const [{ expires_at: expiresAt }] = await stack.dataSource.query(`SELECT expires_at FROM generic_resource_authorization WHERE id = $1`, [
      delegationId,
    ]);
    for (let i = 0; i < 2; i++) expect(sees(await relatedOf(1, bob), aliasId)).toBe(true);
    await sleep(Math.max(0, new Date(expiresAt).getTime() - Date.now()) + 100);
    expect(sees(await relatedOf(1, bob), aliasId)).toBe(false);
    expect(await delegatedOf(1, bob)).not.toContain(aliasId);
  });

  it('concurrent callers share one revision query, and none is answered by a query that started before its call', async () => {
    const revisions = new DataRevision(stack.dataSource);
    const query = stack.dataSource.query.bind(stack.dataSource);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    // The first revision query runs at once (it sees the value before the change below) but its answer
    // is held back, so the callers that come after the change arrive while it is still out.
    const spy = jest.spyOn(stack.dataSource, 'query').mockImplementation(async (sql: string, params?: unknown[]) => {
      if (sql !== REVISION_QUERY) return query(sql, params);
      const answer = await query(sql, params);
      if (++calls === 1) await gate;
      return answer;
    });
    try {
      const first = revisions.current();
      await sleep(100);
      await stack.dataSource.query('UPDATE data_revision SET value = value + 1 WHERE id = 1');
      const later = [revisions.current(), revisions.current(), revisions.current()];
      release();
      const before = revisionValue(await first);
      const values = (await Promise.all(later)).map(revisionValue);
      // Not the answer of the query that was out when they came: one that started after the change.
      for (const value of values) expect(value).toBeGreaterThan(before);
      expect(new Set(values).size).toBe(1);
      expect(calls).toBe(2);
    } finally {
      spy.mockRestore();
    }
  });

  it('logins, token issue and refresh, and upstream token refreshes do not move the revision (the caches stay warm)', async () => {
    const raw = async () => ((await stack.dataSource.query('SELECT value FROM data_revision WHERE id = 1')) as { value: string }[])[0].value;
    const vault = stack.api.get(UpstreamTokenVault);
    // Other test files write to the same database: a quiet attempt is enough, a login that always
    // moves the revision never has one.
    let moved = true;
    for (let attempt = 0; attempt < 5 && moved; attempt++) {
      const before = await raw();
      const dave = await newRmUser(stack, 'rev-quiet');
      await oidc.refreshTokenGrant(dave.session.configuration, dave.session.tokens.refresh_token!);
      await vault.forceRefresh(dave.sub);
      moved = (await raw()) !== before;
    }
    expect(moved).toBe(false);
  });

  it('a grant that is removed (logout, grant revocation) or whose expiry moves into the past ends its tokens on the next request', async () => {
    const grantOf = async (user: RmUser) =>
      ((await stack.dataSource.query(`SELECT payload->>'grantId' AS grant_id FROM oidc_payload WHERE model = 'AccessToken' AND id = $1`, [tokenDigest(user.token)])) as {
        grant_id: string;
      }[])[0].grant_id;
    const erin = await newRmUser(stack, 'rev-erin');
    for (const instance of [0, 1, 1] as const) expect((await at(instance, erin, '/userinfo')).status).toBe(200);
    await stack.dataSource.query(`UPDATE oidc_payload SET expires_at = now() - interval '1 second' WHERE model = 'Grant' AND id = $1`, [await grantOf(erin)]);
    await expectBearerError(await at(1, erin, '/userinfo'), 401, 'invalid_token');

    const frank = await newRmUser(stack, 'rev-frank');
    for (const instance of [0, 1, 1] as const) expect((await at(instance, frank, '/userinfo')).status).toBe(200);
    await stack.dataSource.query(`DELETE FROM oidc_payload WHERE model = 'Grant' AND id = $1`, [await grantOf(frank)]);
    await expectBearerError(await at(1, frank, '/userinfo'), 401, 'invalid_token');
  });
});
