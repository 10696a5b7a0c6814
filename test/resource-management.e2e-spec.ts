import { bearer, json, rawRequest } from './support/http';
import { startStack, TestStack } from './support/stack';
import { loginAs, WalletSession } from './support/wallet';

const SCOPE = 'openid profile email offline_access fpx_rot delegations';

/**
 * The story of issue [2], driven through the real Wallet flow: alice delegates one of her accounts
 * to bob; bob sees and uses it, within its scope and its path; carol sees nothing; revocation and
 * expiry take effect at once; alice's dead upstream grant degrades bob's view instead of failing it.
 */
describe('Resource Management API: delegating, seeing and using a resource', () => {
  let stack: TestStack;
  let alice: WalletSession;
  let bob: WalletSession;
  let carol: WalletSession;
  let aliceSub: string;
  let bobSub: string;
  let a1: { id: string; name: string };
  let a2: { id: string; name: string };

  const get = (session: WalletSession, path: string, init: RequestInit = {}) =>
    fetch(`${stack.issuer}${path}`, bearer(session.tokens.access_token, init));
  const send = (session: WalletSession, method: string, path: string, body?: unknown) =>
    get(session, path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });

  beforeAll(async () => {
    // No caching of owners' details here: every step must show the current state.
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0', USERINFO_CACHE_TTL_SECONDS: '0' } });
    alice = await loginAs(stack, 'alice', { scope: SCOPE });
    bob = await loginAs(stack, 'bob', { scope: SCOPE });
    carol = await loginAs(stack, 'carol', { scope: SCOPE });
    aliceSub = alice.tokens.claims()!.sub;
    bobSub = bob.tokens.claims()!.sub;
    const owned = (await json(await get(alice, '/resources'))).owned as { id: string; name: string }[];
    [a1, a2] = [...owned].sort((x, y) => x.name.localeCompare(y.name));
  });
  afterAll(() => stack?.close());

  it("login discovers each user's own resources at the upstream", async () => {
    const res = await get(alice, '/resources');
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.owned.map((r: { name: string }) => r.name).sort()).toEqual(['Alice Checking', 'Alice Savings']);
    for (const r of body.owned) expect(r).toMatchObject({ type: 'account', scopes: ['read', 'write'] });
    expect(body.delegated).toEqual([]);
  });

  it('alice delegates A1 to bob (by email) with read; the delegation is bound to bob at once', async () => {
    const res = await send(alice, 'POST', '/delegations', { aliases: [a1.id], scopes: ['read'], delegate: { email: 'BOB@example.com' } });
    expect(res.status).toBe(201);
    const [delegation] = await json(res);
    expect(delegation).toMatchObject({ status: 'active', scopes: ['read'], alias: { id: a1.id }, owner: { sub: aliceSub }, delegate: { sub: bobSub } });

    const received = await json(await get(bob, '/delegations?direction=received'));
    expect(received.items.map((d: { id: string }) => d.id)).toEqual([delegation.id]);
    const granted = await json(await get(alice, '/delegations?direction=granted'));
    expect(granted.items.map((d: { id: string }) => d.id)).toContain(delegation.id);
  });

  it("bob's /userinfo carries `related` with alice and A1; /resources shows A1 under delegated", async () => {
    const userinfo = await json(await get(bob, '/userinfo'));
    expect(userinfo.related).toEqual([
      {
        sub: aliceSub,
        name: 'Alice Anderson',
        email: 'alice@example.com',
        status: 'available',
        resources: [{ id: a1.id, type: 'account', name: a1.name, scopes: ['read'] }],
      },
    ]);
    const resources = await json(await get(bob, '/resources'));
    expect(resources.owned.map((r: { name: string }) => r.name).sort()).toEqual(['Bob Checking', 'Bob Savings']);
    expect(resources.delegated).toEqual([
      { owner: { sub: aliceSub, name: 'Alice Anderson', email: 'alice@example.com' }, status: 'available', resources: [{ id: a1.id, type: 'account', name: a1.name, scopes: ['read'] }] },
    ]);
    const one = await json(await get(bob, `/resources/${a1.id}`));
    expect(one).toMatchObject({ id: a1.id, role: 'delegate', scopes: ['read'], owner: { sub: aliceSub } });
  });

  it("bob reads A1 through the proxy and gets alice's upstream data; writing is 403", async () => {
    const detail = await get(bob, `/resources/${a1.id}/data/`);
    expect(detail.status).toBe(200);
    expect(await json(detail)).toMatchObject({ name: a1.name });
    const transactions = await get(bob, `/resources/${a1.id}/data/transactions`);
    expect(transactions.status).toBe(200);

    const calls = stack.upstream.stats.resourceCalls;
    const write = await send(bob, 'POST', `/resources/${a1.id}/data/transfers`, { to: 'bob-checking', amount: 10 });
    expect(write.status).toBe(403);
    expect(stack.upstream.stats.resourceCalls).toBe(calls);
    // The owner may write.
    expect((await send(alice, 'POST', `/resources/${a1.id}/data/transfers`, { to: a2.id, amount: 1 })).status).toBe(201);
  });

  it("bob cannot climb from A1 to alice's other account through the proxy path; nothing reaches the upstream", async () => {
    const calls = stack.upstream.stats.resourceCalls;
    const attempts = [
      `/resources/${a1.id}/data/../${a2.id}`,
      `/resources/${a1.id}/data/..%2f..%2faccounts`,
      `/resources/${a1.id}/data/%2e%2e/x`,
      `/resources/${a1.id}/data/%2E%2E%2Fx`,
      `/resources/${a1.id}/data/.%2e/x`,
      `/resources/${a1.id}/data/..%5cx`,
      `/resources/${a1.id}/data//evil.example/x`,
      `/resources/${a1.id}/data/./transactions`,
      `/resources/${a1.id}/data/%252e%252e/x`,
    ];
    for (const path of attempts) {
      const res = await rawRequest(stack.issuer, path, { headers: { authorization: `Bearer ${bob.tokens.access_token}` } });
      // 400 from our checks, or 404 when Express itself already refuses the shape; never a relay.
      expect({ path, status: res.status, calls: stack.upstream.stats.resourceCalls }).toEqual({ path, status: expect.any(Number), calls });
      expect([400, 404]).toContain(res.status);
    }
    expect(stack.upstream.stats.resourceCalls).toBe(calls);
  });

  it('carol gets the same 404 for A1 as for a resource that does not exist, and sees nothing of alice', async () => {
    const forA1 = await get(carol, `/resources/${a1.id}`);
    const forNothing = await get(carol, '/resources/00000000-0000-4000-8000-000000000000');
    expect(forA1.status).toBe(404);
    expect(forNothing.status).toBe(404);
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined });
    expect(strip(await json(forA1))).toEqual(strip(await json(forNothing)));
    expect((await get(carol, `/resources/${a1.id}/data/`)).status).toBe(404);
    expect((await json(await get(carol, '/resources'))).delegated).toEqual([]);
    expect((await json(await get(carol, '/userinfo'))).related).toEqual([]);
    // carol cannot revoke or change alice's delegation either
    const [delegation] = (await json(await get(alice, '/delegations?direction=granted'))).items;
    expect((await send(carol, 'DELETE', `/delegations/${delegation.id}`)).status).toBe(404);
    expect((await send(carol, 'PATCH', `/delegations/${delegation.id}`, { scopes: ['read'] })).status).toBe(404);
  });

  it('a delegate cannot re-delegate, and nobody can delegate to themselves or beyond the alias scopes', async () => {
    expect((await send(bob, 'POST', '/delegations', { aliases: [a1.id], scopes: ['read'], delegate: { sub: aliceSub } })).status).toBe(404);
    expect((await send(alice, 'POST', '/delegations', { aliases: [a2.id], scopes: ['read'], delegate: { sub: aliceSub } })).status).toBe(400);
    const beyond = await send(alice, 'POST', '/delegations', { aliases: [a2.id], scopes: ['admin'], delegate: { sub: bobSub } });
    expect(beyond.status).toBe(400);
    expect((await json(beyond)).details).toMatchObject({ field: 'scopes' });
    const duplicate = await send(alice, 'POST', '/delegations', { aliases: [a1.id], scopes: ['read'], delegate: { sub: bobSub } });
    expect(duplicate.status).toBe(409);
  });

  it("alice revokes; bob's very next calls no longer show or reach A1", async () => {
    const [delegation] = (await json(await get(alice, '/delegations?direction=granted'))).items.filter((d: { status: string }) => d.status === 'active');
    expect((await send(alice, 'DELETE', `/delegations/${delegation.id}`)).status).toBe(204);
    expect((await json(await get(bob, '/resources'))).delegated).toEqual([]);
    expect((await json(await get(bob, '/userinfo'))).related).toEqual([]);
    expect((await get(bob, `/resources/${a1.id}`)).status).toBe(404);
    expect((await get(bob, `/resources/${a1.id}/data/`)).status).toBe(404);
    expect((await json(await get(alice, `/delegations/${delegation.id}`))).status).toBe('revoked');
  });

  it('a delegation past its expiry is invisible, without any background job', async () => {
    const [delegation] = await json(
      await send(alice, 'POST', '/delegations', { aliases: [a2.id], scopes: ['read'], delegate: { sub: bobSub }, expires_at: new Date(Date.now() + 3600_000).toISOString() }),
    );
    expect((await json(await get(bob, '/resources'))).delegated).toHaveLength(1);
    await stack.dataSource.query(`UPDATE generic_resource_authorization SET expires_at = now() - interval '1 second' WHERE id = $1`, [delegation.id]);
    expect((await json(await get(bob, '/resources'))).delegated).toEqual([]);
    expect((await json(await get(bob, '/userinfo'))).related).toEqual([]);
    expect((await get(bob, `/resources/${a2.id}/data/`)).status).toBe(404);
    expect((await json(await get(alice, `/delegations/${delegation.id}`))).status).toBe('expired');
  });

  it("alice's upstream grant revoked: bob still gets 200 with alice unavailable; alice logs in again: available", async () => {
    await send(alice, 'POST', '/delegations', { aliases: [a1.id], scopes: ['read'], delegate: { sub: bobSub } });
    const aliceUpstream = stack.upstream.users.find((u) => u.username === 'alice')!;
    await stack.upstream.revokeGrantsOf(aliceUpstream.sub);
    await stack.dataSource.query(`UPDATE upstream_token SET access_token_expires_at = now() - interval '1 minute' WHERE account_id = $1`, [aliceSub]);

    const userinfo = await get(bob, '/userinfo');
    expect(userinfo.status).toBe(200);
    expect((await json(userinfo)).related).toEqual([
      expect.objectContaining({ sub: aliceSub, status: 'unavailable', reason: 'owner_login_required', resources: [expect.objectContaining({ id: a1.id })] }),
    ]);
    const resources = await json(await get(bob, '/resources'));
    expect(resources.delegated).toEqual([expect.objectContaining({ status: 'unavailable', reason: 'owner_login_required' })]);
    const proxied = await get(bob, `/resources/${a1.id}/data/`);
    expect(proxied.status).toBe(503);
    expect((await json(proxied)).error).toBe('owner_login_required');

    await loginAs(stack, 'alice', { scope: SCOPE });
    expect((await json(await get(bob, '/userinfo'))).related).toEqual([expect.objectContaining({ sub: aliceSub, status: 'available' })]);
    expect((await get(bob, `/resources/${a1.id}/data/`)).status).toBe(200);
  });

  it('narrowing a delegation takes effect at once; widening is refused', async () => {
    const [delegation] = await json(await send(alice, 'POST', '/delegations', { aliases: [a2.id], scopes: ['read', 'write'], delegate: { sub: bobSub } }));
    expect((await send(bob, 'POST', `/resources/${a2.id}/data/transfers`, { to: a1.id, amount: 1 })).status).toBe(201);
    const narrowed = await send(alice, 'PATCH', `/delegations/${delegation.id}`, { scopes: ['read'] });
    expect(narrowed.status).toBe(200);
    expect((await json(narrowed)).scopes).toEqual(['read']);
    expect((await send(bob, 'POST', `/resources/${a2.id}/data/transfers`, { to: a1.id, amount: 1 })).status).toBe(403);
    expect((await send(alice, 'PATCH', `/delegations/${delegation.id}`, { scopes: ['read', 'write'] })).status).toBe(400);
  });

  it('every delegation change is audited', async () => {
    const rows: { action: string }[] = await stack.dataSource.query(
      `SELECT action FROM audit_event WHERE actor_id = $1 AND action LIKE 'delegation.%'`,
      [`account:${aliceSub}`],
    );
    const actions = new Set(rows.map((r) => r.action));
    expect([...actions].sort()).toEqual(['delegation.created', 'delegation.revoked', 'delegation.updated']);
  });
});
