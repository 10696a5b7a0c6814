import type { DevAccount } from '@rsa/dev-upstream';
import { json } from './support/http';
import { auditActionsFor, devAccounts, newRmUser, rmLogin, type RmUser } from './support/resource-users';
import { startStack, type TestStack } from './support/stack';
import { randomId } from './support/test-config';

type Resource = { id: string; name: string; type: string; scopes: string[] };
type Page = { owned: Resource[]; delegated: { owner: { sub: string }; resources: Resource[] }[]; next_cursor: string | null };

const ownedOf = async (user: RmUser): Promise<Resource[]> => ((await json(await user.get('/resources?limit=100'))) as Page).owned;
const delegatedIdsOf = async (user: RmUser): Promise<string[]> =>
  ((await json(await user.get('/resources?limit=100'))) as Page).delegated.flatMap((g) => g.resources.map((r) => r.id)).sort();
const byName = (resources: Resource[], name: string): Resource => {
  const found = resources.find((r) => r.name === name);
  if (!found) throw new Error(`no resource named ${name} among ${resources.map((r) => r.name).join(', ')}`);
  return found;
};

/**
 * Discovery keeps aliases in step with the upstream: an account that vanishes makes its alias `gone`
 * and ends its delegations (for good), a rename reaches owner and delegates, a returning account is
 * the owner's again. The dev upstream's accounts are changed per instance (setAccountsOf).
 */
describe('Resource discovery at login', () => {
  let stack: TestStack;
  let owner: RmUser;
  let delegate: RmUser;
  let accounts: DevAccount[];
  let x1: Resource;
  let x2: Resource;
  let x3: Resource;
  let toDelegateX1: string;
  let pendingX1: string;
  let toDelegateX2: string;

  beforeAll(async () => {
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0', USERINFO_CACHE_TTL_SECONDS: '0' } });
    accounts = devAccounts(3, 'disc');
    [owner, delegate] = await Promise.all([newRmUser(stack, 'disc-owner', { accounts }), newRmUser(stack, 'disc-delegate')]);
    const owned = await ownedOf(owner);
    [x1, x2, x3] = accounts.map((a) => byName(owned, a.name));
    const created: { id: string; alias: { id: string } }[] = await json(
      await owner.send('POST', '/delegations', { aliases: [x1.id, x2.id], scopes: ['read'], delegate: { sub: delegate.sub } }),
    );
    toDelegateX1 = created.find((d) => d.alias.id === x1.id)!.id;
    toDelegateX2 = created.find((d) => d.alias.id === x2.id)!.id;
    [{ id: pendingX1 }] = await json(
      await owner.send('POST', '/delegations', { aliases: [x1.id], scopes: ['read'], delegate: { email: `${randomId('nobody')}@disc.example` } }),
    );
    expect(await delegatedIdsOf(delegate)).toEqual([x1.id, x2.id].sort());
  });
  afterAll(() => stack?.close());

  it('an account gone at the upstream: its alias is gone at the next login, its delegations end, the delegate loses it', async () => {
    stack.upstream.setAccountsOf(owner.upstream.sub, [{ ...accounts[1], name: 'Renamed savings' }, accounts[2]]);
    owner = await rmLogin(stack, owner.upstream);

    const owned = await ownedOf(owner);
    expect(owned.map((r) => r.id).sort()).toEqual([x2.id, x3.id].sort());
    expect(byName(owned, 'Renamed savings').id).toBe(x2.id);
    const [{ status }] = await stack.dataSource.query(`SELECT status FROM generic_resource_alias WHERE id = $1`, [x1.id]);
    expect(status).toBe('gone');
    expect((await owner.get(`/resources/${x1.id}`)).status).toBe(404);

    for (const id of [toDelegateX1, pendingX1]) {
      expect((await json(await owner.get(`/delegations/${id}`))).status).toBe('expired');
      expect(await auditActionsFor(stack.dataSource, id)).toEqual(['delegation.created', 'delegation.ended_alias_gone']);
    }
    expect((await json(await owner.get(`/delegations/${toDelegateX2}`))).status).toBe('active');

    const calls = stack.upstream.stats.resourceCalls;
    expect(await delegatedIdsOf(delegate)).toEqual([x2.id]);
    expect((await delegate.get(`/resources/${x1.id}`)).status).toBe(404);
    expect((await delegate.get(`/resources/${x1.id}/data/`)).status).toBe(404);
    expect((await delegate.get(`/resources/${x1.id}/data/transactions`)).status).toBe(404);
    expect(stack.upstream.stats.resourceCalls).toBe(calls);
  });

  it('a renamed account shows its new name to owner and delegate, in /resources and in related', async () => {
    const page: Page = await json(await delegate.get('/resources'));
    expect(page.delegated).toEqual([expect.objectContaining({ resources: [{ id: x2.id, type: 'account', name: 'Renamed savings', scopes: ['read'] }] })]);
    const related = (await json(await delegate.get('/userinfo'))).related;
    expect(related).toEqual([expect.objectContaining({ sub: owner.sub, resources: [{ id: x2.id, type: 'account', name: 'Renamed savings', scopes: ['read'] }] })]);
    expect((await json(await delegate.get(`/resources/${x2.id}`))).name).toBe('Renamed savings');
    expect((await delegate.get(`/resources/${x2.id}/data/`)).status).toBe(200);
  });

  it('an account that comes back is the owner\'s again under the same id; its ended delegations stay ended', async () => {
    stack.upstream.setAccountsOf(owner.upstream.sub, accounts);
    owner = await rmLogin(stack, owner.upstream);

    const owned = await ownedOf(owner);
    expect(owned.map((r) => r.id).sort()).toEqual([x1.id, x2.id, x3.id].sort());
    expect(byName(owned, accounts[1].name).id).toBe(x2.id);
    expect(byName(owned, accounts[0].name)).toEqual({ ...x1, scopes: ['read', 'write'] });
    expect((await owner.get(`/resources/${x1.id}/data/`)).status).toBe(200);

    for (const id of [toDelegateX1, pendingX1]) {
      expect((await json(await owner.get(`/delegations/${id}`))).status).toBe('expired');
      expect(await auditActionsFor(stack.dataSource, id)).toEqual(['delegation.created', 'delegation.ended_alias_gone']);
    }
    expect(await delegatedIdsOf(delegate)).toEqual([x2.id]);
    expect((await delegate.get(`/resources/${x1.id}/data/`)).status).toBe(404);

    // A new delegation of the returned account is a fresh start (the ended one does not block it).
    const again = await owner.send('POST', '/delegations', { aliases: [x1.id], scopes: ['read'], delegate: { sub: delegate.sub } });
    expect(again.status).toBe(201);
    expect(await delegatedIdsOf(delegate)).toEqual([x1.id, x2.id].sort());
  });

  it('an owner whose upstream lists no accounts at all loses every alias, and every delegation ends', async () => {
    stack.upstream.setAccountsOf(owner.upstream.sub, []);
    owner = await rmLogin(stack, owner.upstream);
    expect(await ownedOf(owner)).toEqual([]);
    expect(await delegatedIdsOf(delegate)).toEqual([]);
    const granted = (await json(await owner.get('/delegations?direction=granted&limit=100'))).items as { status: string }[];
    expect(granted.map((d) => d.status).sort()).toEqual(['expired', 'expired', 'expired', 'expired']);
    expect(x3.id).toBeDefined();
  });
});

describe('Resource discovery when stale (RESOURCE_DISCOVERY_STALE_SECONDS=0)', () => {
  let stack: TestStack;
  let owner: RmUser;
  let delegate: RmUser;
  let accounts: DevAccount[];
  let y1: Resource;
  let y2: Resource;

  beforeAll(async () => {
    stack = await startStack({ env: { RESOURCE_DISCOVERY_STALE_SECONDS: '0', RELATED_CACHE_TTL_SECONDS: '0' } });
    accounts = devAccounts(2, 'stale');
    [owner, delegate] = await Promise.all([newRmUser(stack, 'stale-owner', { accounts }), newRmUser(stack, 'stale-delegate')]);
    const owned = await ownedOf(owner);
    [y1, y2] = accounts.map((a) => byName(owned, a.name));
  });
  afterAll(() => stack?.close());

  it('GET /resources re-discovers: a vanished account is gone without a new login, and its delegation ends', async () => {
    const [d] = await json(await owner.send('POST', '/delegations', { aliases: [y1.id], scopes: ['read'], delegate: { sub: delegate.sub } }));
    expect(await delegatedIdsOf(delegate)).toEqual([y1.id]);

    stack.upstream.setAccountsOf(owner.upstream.sub, [accounts[1]]);
    expect((await ownedOf(owner)).map((r) => r.id)).toEqual([y2.id]);
    expect((await json(await owner.get(`/delegations/${d.id}`))).status).toBe('expired');
    expect(await auditActionsFor(stack.dataSource, d.id)).toEqual(['delegation.created', 'delegation.ended_alias_gone']);
    expect(await delegatedIdsOf(delegate)).toEqual([]);
    expect((await delegate.get(`/resources/${y1.id}/data/`)).status).toBe(404);

    stack.upstream.setAccountsOf(owner.upstream.sub, [{ ...accounts[1], name: 'Stale renamed' }, accounts[0]]);
    const owned = await ownedOf(owner);
    expect(owned.map((r) => r.id).sort()).toEqual([y1.id, y2.id].sort());
    expect(byName(owned, 'Stale renamed').id).toBe(y2.id);
    expect((await json(await owner.get(`/delegations/${d.id}`))).status).toBe('expired');
    expect(await delegatedIdsOf(delegate)).toEqual([]);
  });

  it('a listing that fails leaves the aliases as they were (no false "gone")', async () => {
    // The owner's upstream grant is revoked: the listing is refused with 401, the aliases stay.
    await stack.upstream.revokeGrantsOf(owner.upstream.sub);
    const res = await owner.get('/resources');
    expect(res.status).toBe(200);
    expect(((await json(res)) as Page).owned.map((r) => r.id).sort()).toEqual([y1.id, y2.id].sort());
    const statuses: { status: string }[] = await stack.dataSource.query(`SELECT status FROM generic_resource_alias WHERE id = ANY($1::uuid[])`, [[y1.id, y2.id]]);
    expect(statuses.map((s) => s.status)).toEqual(['active', 'active']);
  });
});
