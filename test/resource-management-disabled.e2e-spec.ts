import { json } from './support/http';
import { devAccounts, newRmUser, type RmUser } from './support/resource-users';
import { startStack, type TestStack } from './support/stack';

/**
 * RESOURCE_MANAGEMENT_ENABLED=false: the Resource Management API does not exist (404 everywhere,
 * not 401/403), /userinfo has no `related` even for a token with fpx_rot and an active delegation in
 * the database, and nothing is discovered at the upstream at login.
 */
describe('Resource Management disabled', () => {
  let stack: TestStack;
  let owner: RmUser;
  let delegate: RmUser;
  let aliasId: string;
  let delegationId: string;

  beforeAll(async () => {
    stack = await startStack({ env: { RESOURCE_MANAGEMENT_ENABLED: 'false', RELATED_CACHE_TTL_SECONDS: '0' } });
    [owner, delegate] = await Promise.all([newRmUser(stack, 'off-owner', { accounts: devAccounts(1) }), newRmUser(stack, 'off-delegate')]);
    // A delegation as it could be left over from when the feature was on.
    [{ id: aliasId }] = await stack.dataSource.query(
      `INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status, last_seen_at)
       SELECT $1, id, 'off-account', 'Left over', 'active', now() FROM generic_resource WHERE identifier = 'account' RETURNING id`,
      [owner.sub],
    );
    await stack.dataSource.query(`INSERT INTO generic_resource_alias_scope (alias_id, scope) VALUES ($1, 'read')`, [aliasId]);
    [{ id: delegationId }] = await stack.dataSource.query(
      `INSERT INTO generic_resource_authorization (alias_id, owner_account_id, delegate_account_id, status, created_by)
       VALUES ($1, $2, $3, 'active', 'test') RETURNING id`,
      [aliasId, owner.sub, delegate.sub],
    );
    await stack.dataSource.query(`INSERT INTO generic_resource_authorization_scope (authorization_id, scope) VALUES ($1, 'read')`, [delegationId]);
  });
  afterAll(() => stack?.close());

  it('the tokens carry fpx_rot and delegations all the same', () => {
    const scopes = String(delegate.session.tokens.scope).split(' ');
    expect(scopes).toEqual(expect.arrayContaining([stack.config.scopes.related, stack.config.scopes.delegations]));
  });

  // Every row has three entries: with fewer, Jest would pass its `done` callback as `body`.
  it.each<[string, string, unknown]>([
    ['GET', '/resources', null],
    ['GET', '/resources?limit=1', null],
    ['GET', `/resources/ALIAS`, null],
    ['GET', `/resources/ALIAS/data/`, null],
    ['POST', `/resources/ALIAS/data/transfers`, { to: 'x', amount: 1 }],
    ['GET', '/delegations?direction=received', null],
    ['GET', '/delegations/DELEGATION', null],
    ['POST', '/delegations', { aliases: ['ALIAS'], scopes: ['read'], delegate: { sub: 'DELEGATE' } }],
    ['PATCH', '/delegations/DELEGATION', { scopes: ['read'] }],
    ['DELETE', '/delegations/DELEGATION', null],
  ])('%s %s is a 404', async (method, template, body) => {
    const fill = (text: string) => text.replace(/ALIAS/g, aliasId).replace(/DELEGATION/g, delegationId).replace(/DELEGATE/g, delegate.sub);
    for (const user of [owner, delegate]) {
      const res = await user.send(method, fill(template), body === null ? undefined : JSON.parse(fill(JSON.stringify(body))));
      expect({ method, path: template, status: res.status }).toEqual({ method, path: template, status: 404 });
    }
    // Nothing changed, nothing reached the upstream resource API.
    const [{ status }] = await stack.dataSource.query(`SELECT status FROM generic_resource_authorization WHERE id = $1`, [delegationId]);
    expect(status).toBe('active');
    expect(stack.upstream.stats.resourceCalls).toBe(0);
  });

  it('/userinfo (GET and POST) has no `related`, even with fpx_rot and an active delegation', async () => {
    for (const method of ['GET', 'POST']) {
      const res = await delegate.get('/userinfo', { method });
      expect(res.status).toBe(200);
      const claims = await json(res);
      expect(claims.sub).toBe(delegate.sub);
      expect(claims).not.toHaveProperty('related');
    }
  });

  it('nothing is discovered at login, and the OpenAPI document has no resource or delegation routes', async () => {
    const [{ count }] = await stack.dataSource.query(`SELECT count(*)::int AS count FROM generic_resource_alias WHERE owner_account_id = ANY($1::uuid[])`, [
      [owner.sub, delegate.sub],
    ]);
    expect(count).toBe(1); // only the one inserted above
    expect(stack.upstream.stats.resourceCalls).toBe(0);
    const paths = Object.keys((await json(await fetch(`${stack.issuer}/docs-json`))).paths);
    expect(paths.filter((p) => p.startsWith('/resources') || p.startsWith('/delegations'))).toEqual([]);
    expect(paths).toContain('/userinfo');
  });
});
