import { randomUUID } from 'node:crypto';
import type { DevUser } from '@rsa/dev-upstream';
import { adminActorFor } from '../apps/admin/src/common/admin-actor';
import { startAdmin, type AdminInstance } from './support/admin';
import { bearer, json } from './support/http';
import { startStack, type TestStack } from './support/stack';
import { randomId, TEST_ADMIN_TOKEN } from './support/test-config';
import { loginAs, type WalletSession } from './support/wallet';

const ADMIN_ACTOR = adminActorFor(TEST_ADMIN_TOKEN);

/**
 * A user of this stack's dev upstream with a random, verified email, logged in at the RSA. Test files
 * share the database, and every stack has its own alice, bob and carol with the same emails: a
 * delegation by email to bob@example.com could bind to another file's bob. Random emails cannot.
 */
async function uniqueUser(stack: TestStack, prefix: string): Promise<{ id: string; email: string }> {
  const name = randomId(prefix);
  const user: DevUser = {
    sub: `${name}-sub`,
    username: name,
    password: name,
    name: `User ${name}`,
    given_name: 'User',
    family_name: name,
    email: `${name}@users.example`,
    email_verified: true,
  };
  stack.upstream.users.push(user);
  const session = await loginAs(stack, name, { password: name });
  return { id: session.tokens.claims()!.sub, email: user.email };
}

interface Delegation {
  id: string;
  status: string;
  alias_id: string;
  owner_account_id: string;
  delegate_account_id: string | null;
  delegate_email: string | null;
  scopes: string[];
  expires_at: string | null;
  created_by: string;
  revoked_by: string | null;
}

/**
 * Delegations through the admin API: created on behalf of an owner under the owner's rules, seen
 * by the delegate through the public API, changed, revoked and deleted — plus their granted scopes
 * — each write audited as the admin, and Idempotency-Key on create.
 */
describe('admin API: delegations (generic resource authorizations) and their scopes', () => {
  let stack: TestStack;
  let admin: AdminInstance;
  let bob: WalletSession;
  let aliceId: string;
  let bobId: string;
  let carolId: string;
  /** Users with emails unique to this run, for delegations by email. */
  let dora: { id: string; email: string };
  let erin: { id: string; email: string };
  /** alice's discovered bank accounts (kind `account`: read, write). */
  let checking: { id: string; display_name: string };
  let savings: { id: string; display_name: string };
  /** A kind of our own with three scopes, no discovery: its aliases are made here. */
  let kindId: string;

  const auditOf = (targetId: string): Promise<{ action: string; actor_type: string; actor_id: string; details: Record<string, unknown> }[]> =>
    stack.dataSource.query('SELECT action, actor_type, actor_id, details FROM audit_event WHERE target_id = $1 ORDER BY occurred_at, action', [targetId]);
  const fieldsOf = (body: { fields?: { field: string }[]; details?: { field?: string } }) => [
    ...(body.fields ?? []).map((f) => f.field),
    ...(body.details?.field ? [body.details.field] : []),
  ];
  const bobResources = async () => json(await fetch(`${stack.issuer}/resources`, bearer(bob.tokens.access_token)));
  const bobSees = async (aliasId: string): Promise<string[] | undefined> => {
    const body = await bobResources();
    const all = (body.delegated as { resources: { id: string; scopes: string[] }[] }[]).flatMap((d) => d.resources);
    return all.find((r) => r.id === aliasId)?.scopes;
  };

  /** A fresh alias of our kind owned by alice (or `owner`), so tests never share delegations. */
  async function aliceAlias(scopes = ['read', 'write', 'admin'], owner = aliceId): Promise<string> {
    const res = await admin.request('POST', '/generic-resource-aliases', {
      body: { owner_account_id: owner, generic_resource_id: kindId, external_id: randomId('ext'), display_name: 'Alice Thing', scopes },
    });
    expect(res.status).toBe(201);
    return res.body.id as string;
  }
  async function create(body: Record<string, unknown>): Promise<Delegation> {
    const res = await admin.request('POST', '/generic-resource-authorizations', { body });
    expect({ status: res.status, body: res.body }).toEqual({ status: 201, body: expect.anything() });
    return res.body as Delegation;
  }

  beforeAll(async () => {
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0' } });
    admin = await startAdmin(stack);
    const scope = `openid profile email offline_access ${stack.config.scopes.related} ${stack.config.scopes.delegations}`;
    aliceId = (await loginAs(stack, 'alice', { scope })).tokens.claims()!.sub;
    bob = await loginAs(stack, 'bob', { scope });
    bobId = bob.tokens.claims()!.sub;
    carolId = (await loginAs(stack, 'carol', { scope })).tokens.claims()!.sub;
    dora = await uniqueUser(stack, 'dora');
    erin = await uniqueUser(stack, 'erin');

    const account = (await admin.request('GET', '/generic-resources?identifier=account')).body.items[0];
    const owned = (await admin.request('GET', `/generic-resource-aliases?owner_account_id=${aliceId}&generic_resource_id=${account.id}`)).body.items;
    [checking, savings] = [...owned].sort((a: { display_name: string }, b: { display_name: string }) => a.display_name.localeCompare(b.display_name));
    expect(checking.display_name).toBe('Alice Checking');

    const kind = await admin.request('POST', '/generic-resources', {
      body: { identifier: randomId('vault'), name: 'Vault', path_template: '/vaults/{id}', scopes: ['read', 'write', 'admin'] },
    });
    kindId = kind.body.id;
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  describe('/generic-resource-authorizations', () => {
    it('an admin delegates alice’s account to bob on her behalf: bob sees and uses it through the public API; audited as the admin', async () => {
      const delegation = await create({ owner_account_id: aliceId, alias_id: checking.id, delegate_account_id: bobId, scopes: ['read'] });
      expect(delegation).toEqual({
        id: expect.any(String),
        status: 'active',
        alias_id: checking.id,
        generic_resource: 'account',
        owner_account_id: aliceId,
        delegate_account_id: bobId,
        delegate_email: 'bob@example.com',
        scopes: ['read'],
        expires_at: null,
        created_by: ADMIN_ACTOR,
        created_at: expect.any(String),
        updated_at: expect.any(String),
        revoked_at: null,
        revoked_by: null,
      });

      // (filtered by owner: other test files share the database, and may delegate to "bob@example.com")
      const resources = await bobResources();
      expect(resources.delegated.filter((group: { owner: { sub: string } }) => group.owner.sub === aliceId)).toEqual([
        expect.objectContaining({
          owner: expect.objectContaining({ sub: aliceId }),
          status: 'available',
          resources: [{ id: checking.id, type: 'account', name: 'Alice Checking', scopes: ['read'] }],
        }),
      ]);
      // and uses it: alice's upstream data through the proxy, read only
      const data = await fetch(`${stack.issuer}/resources/${checking.id}/data/`, bearer(bob.tokens.access_token));
      expect(data.status).toBe(200);
      expect(await json(data)).toMatchObject({ name: 'Alice Checking' });

      expect(await auditOf(delegation.id)).toEqual([
        expect.objectContaining({ action: 'delegation.created', actor_type: 'admin', actor_id: ADMIN_ACTOR, details: expect.objectContaining({ alias_id: checking.id, delegate_account_id: bobId, scopes: ['read'] }) }),
      ]);
      expect((await admin.request('GET', `/generic-resource-authorizations/${delegation.id}`)).body).toEqual(delegation);

      // revoke it again so the other tests see bob's view from scratch
      const revoked = await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { status: 'revoked' } });
      expect(revoked.body).toMatchObject({ status: 'revoked', revoked_by: ADMIN_ACTOR, revoked_at: expect.any(String) });
      expect(await bobSees(checking.id)).toBeUndefined();
      expect((await fetch(`${stack.issuer}/resources/${checking.id}/data/`, bearer(bob.tokens.access_token))).status).toBe(404);
      expect((await auditOf(delegation.id)).map((a) => a.action)).toEqual(['delegation.created', 'delegation.revoked']);
    });

    it('the owners’ rules hold for admins: each broken rule is refused naming the field', async () => {
      const base = { owner_account_id: aliceId, alias_id: savings.id, delegate_account_id: bobId, scopes: ['read'] };
      const past = new Date(Date.now() - 60_000).toISOString();
      const dorasAlias = await aliceAlias(['read'], dora.id);
      const cases: [string, Record<string, unknown>, number, string][] = [
        ['the alias is not the owner’s', { owner_account_id: bobId }, 400, 'alias_id'],
        ['a scope the alias does not offer', { scopes: ['read', 'admin'] }, 400, 'scopes'],
        ['self-delegation', { delegate_account_id: aliceId }, 400, 'delegate_account_id'],
        [
          'self-delegation by email',
          { owner_account_id: dora.id, alias_id: dorasAlias, delegate_account_id: undefined, delegate_email: dora.email.toUpperCase() },
          400,
          'delegate_email',
        ],
        ['two delegates', { delegate_email: 'bob@example.com' }, 400, 'delegate_account_id'],
        ['no delegate', { delegate_account_id: undefined }, 400, 'delegate_account_id'],
        ['an expiry in the past', { expires_at: past }, 400, 'expires_at'],
        ['an expiry that is not ISO 8601', { expires_at: 'tomorrow' }, 400, 'expires_at'],
        ['no scopes', { scopes: [] }, 400, 'scopes'],
        ['a malformed email', { delegate_account_id: undefined, delegate_email: 'not-an-email' }, 400, 'delegate_email'],
        ['an unknown property', { delegate: { sub: bobId } }, 400, 'delegate'],
        ['an unknown owner', { owner_account_id: randomUUID() }, 404, 'owner_account_id'],
        ['an unknown alias', { alias_id: randomUUID() }, 404, 'alias_id'],
        ['an unknown delegate account', { delegate_account_id: randomUUID() }, 404, 'delegate_account_id'],
      ];
      for (const [name, overrides, status, field] of cases) {
        const res = await admin.request('POST', '/generic-resource-authorizations', { body: { ...base, ...overrides } });
        expect({ name, status: res.status, fields: fieldsOf(res.body) }).toEqual({ name, status, fields: [field] });
      }
      const rows = await stack.dataSource.query('SELECT 1 FROM generic_resource_authorization WHERE alias_id = ANY($1::uuid[])', [[savings.id, dorasAlias]]);
      expect(rows).toEqual([]);
    });

    it('a second active delegation of the alias to the same delegate is a 409; a gone alias cannot be delegated (409)', async () => {
      const aliasId = await aliceAlias();
      await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: dora.id, scopes: ['read'] });
      const duplicate = await admin.request('POST', '/generic-resource-authorizations', {
        body: { owner_account_id: aliceId, alias_id: aliasId, delegate_email: dora.email.toUpperCase(), scopes: ['write'] },
      });
      expect(duplicate.status).toBe(409);

      const gone = await aliceAlias();
      await admin.request('PATCH', `/generic-resource-aliases/${gone}`, { body: { status: 'gone' } });
      const refused = await admin.request('POST', '/generic-resource-authorizations', {
        body: { owner_account_id: aliceId, alias_id: gone, delegate_account_id: bobId, scopes: ['read'] },
      });
      expect(refused.status).toBe(409);
      expect(fieldsOf(refused.body)).toEqual(['alias_id']);
    });

    it('by email: bound at once to the account with that verified email (case-insensitive), else pending; lists filter by owner, delegate, alias, email and status', async () => {
      const aliasId = await aliceAlias();
      const toErin = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_email: erin.email.toUpperCase(), scopes: ['read'] });
      expect(toErin).toMatchObject({ status: 'active', delegate_account_id: erin.id, delegate_email: erin.email });
      const email = `${randomId('nobody')}@example.org`;
      const pending = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_email: email, scopes: ['read', 'write'], expires_at: new Date(Date.now() + 86_400_000).toISOString() });
      expect(pending).toMatchObject({ status: 'pending', delegate_account_id: null, delegate_email: email, expires_at: expect.any(String) });
      const toBob = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['admin'] });
      await admin.request('PATCH', `/generic-resource-authorizations/${toBob.id}`, { body: { status: 'revoked' } });

      const ids = async (query: string) =>
        ((await admin.request('GET', `/generic-resource-authorizations?${query}`)).body.items as Delegation[]).map((d) => d.id).sort();
      expect(await ids(`alias_id=${aliasId}`)).toEqual([toErin.id, pending.id, toBob.id].sort());
      expect(await ids(`alias_id=${aliasId}&status=pending`)).toEqual([pending.id]);
      expect(await ids(`alias_id=${aliasId}&status=active`)).toEqual([toErin.id]);
      expect(await ids(`alias_id=${aliasId}&status=revoked`)).toEqual([toBob.id]);
      expect(await ids(`alias_id=${aliasId}&delegate_account_id=${erin.id}`)).toEqual([toErin.id]);
      expect(await ids(`alias_id=${aliasId}&delegate_email=${email.toUpperCase()}`)).toEqual([pending.id]);
      expect(await ids(`owner_account_id=${aliceId}&delegate_account_id=${erin.id}&alias_id=${aliasId}`)).toEqual([toErin.id]);
      expect(await ids(`owner_account_id=${erin.id}&alias_id=${aliasId}`)).toEqual([]);

      const first = await admin.request('GET', `/generic-resource-authorizations?alias_id=${aliasId}&limit=2`);
      expect(first.body.items).toHaveLength(2);
      const second = await admin.request('GET', `/generic-resource-authorizations?alias_id=${aliasId}&limit=2&cursor=${first.body.next_cursor}`);
      expect(second.body).toEqual({ items: [expect.any(Object)], next_cursor: null });

      for (const [query, field] of [
        ['status=gone', 'status'],
        ['owner_account_id=alice', 'owner_account_id'],
        ['limit=500', 'limit'],
        ['colour=blue', 'colour'],
      ]) {
        const res = await admin.request('GET', `/generic-resource-authorizations?${query}`);
        expect({ query, status: res.status, fields: fieldsOf(res.body) }).toEqual({ query, status: 400, fields: [field] });
      }
    });

    it('updates scopes (widening only within the alias) and expiry; the delegate sees each change at once; each audited with before and after', async () => {
      const aliasId = await aliceAlias(['read', 'write']);
      const delegation = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['read'] });
      expect(await bobSees(aliasId)).toEqual(['read']);

      const widened = await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { scopes: ['read', 'write'] } });
      expect(widened.status).toBe(200);
      expect(widened.body.scopes).toEqual(['read', 'write']);
      expect(await bobSees(aliasId)).toEqual(['read', 'write']);

      const beyond = await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { scopes: ['read', 'admin'] } });
      expect(beyond.status).toBe(400);
      expect(fieldsOf(beyond.body)).toEqual(['scopes']);

      const expiresAt = new Date(Date.now() + 3600_000).toISOString();
      const changed = await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { scopes: ['write'], expires_at: expiresAt } });
      expect(changed.body).toMatchObject({ scopes: ['write'], expires_at: expiresAt, status: 'active' });
      expect(await bobSees(aliasId)).toEqual(['write']);

      for (const [body, field] of [
        [{ expires_at: new Date(Date.now() - 1000).toISOString() }, 'expires_at'],
        [{ scopes: [] }, 'scopes'],
        [{ status: 'active' }, 'status'],
        [{ status: 'revoked', scopes: ['read'] }, 'status'],
        [{ owner_account_id: carolId }, 'owner_account_id'],
      ] as [Record<string, unknown>, string][]) {
        const res = await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body });
        expect({ body, status: res.status, fields: fieldsOf(res.body) }).toEqual({ body, status: 400, fields: [field] });
      }
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { expires_at: null } })).body.expires_at).toBeNull();

      const audit = await auditOf(delegation.id);
      expect(audit.map((a) => a.action)).toEqual(['delegation.created', 'delegation.updated', 'delegation.updated', 'delegation.updated']);
      expect(audit[1]).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR, details: { before: { scopes: ['read'] }, after: { scopes: ['read', 'write'] } } });

      // revoked: no more changes (409), revoking again changes nothing
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { status: 'revoked' } })).body.status).toBe('revoked');
      expect(await bobSees(aliasId)).toBeUndefined();
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { scopes: ['read'] } })).status).toBe(409);
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { status: 'revoked' } })).status).toBe(200);
      expect((await auditOf(delegation.id)).filter((a) => a.action === 'delegation.revoked')).toHaveLength(1);
    });

    it('an expired delegation shows as expired, cannot be changed (409) nor revoked (409)', async () => {
      const aliasId = await aliceAlias();
      const delegation = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['read'], expires_at: new Date(Date.now() + 60_000).toISOString() });
      await stack.dataSource.query(`UPDATE generic_resource_authorization SET expires_at = now() - interval '1 second' WHERE id = $1`, [delegation.id]);
      expect((await admin.request('GET', `/generic-resource-authorizations/${delegation.id}`)).body.status).toBe('expired');
      expect((await admin.request('GET', `/generic-resource-authorizations?alias_id=${aliasId}&status=expired`)).body.items).toHaveLength(1);
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { scopes: ['read'] } })).status).toBe(409);
      await stack.dataSource.query(`UPDATE generic_resource_authorization SET status = 'expired' WHERE id = $1`, [delegation.id]);
      expect((await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { status: 'revoked' } })).status).toBe(409);
    });

    it('delete removes the delegation and its granted scopes (audited with a snapshot); the delegate loses it; unknown ids are 404', async () => {
      const aliasId = await aliceAlias();
      const delegation = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['read', 'admin'] });
      expect(await bobSees(aliasId)).toEqual(['admin', 'read']);
      expect((await admin.request('DELETE', `/generic-resource-authorizations/${delegation.id}`)).status).toBe(204);
      expect(await bobSees(aliasId)).toBeUndefined();
      expect((await admin.request('GET', `/generic-resource-authorizations/${delegation.id}`)).status).toBe(404);
      expect(await stack.dataSource.query('SELECT 1 FROM generic_resource_authorization_scope WHERE authorization_id = $1', [delegation.id])).toEqual([]);
      const audit = await auditOf(delegation.id);
      expect(audit.map((a) => a.action)).toEqual(['delegation.created', 'delegation.deleted']);
      expect(audit[1]).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR, details: { before: { status: 'active', scopes: ['admin', 'read'], delegate_account_id: bobId } } });

      for (const [method, body] of [['GET'], ['PATCH', { status: 'revoked' }], ['DELETE']] as [string, unknown?][]) {
        expect((await admin.request(method, `/generic-resource-authorizations/${delegation.id}`, { body })).status).toBe(404);
      }
      const notUuid = await admin.request('DELETE', '/generic-resource-authorizations/123');
      expect(notUuid.status).toBe(400);
      expect(fieldsOf(notUuid.body)).toEqual(['id']);
    });

    it('an idempotent create: 10 parallel identical POSTs with one Idempotency-Key make one delegation and get the same body; the key with another body is a 422', async () => {
      const aliasId = await aliceAlias();
      const body = { owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: carolId, scopes: ['read'] };
      const key = randomId('idem');
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => admin.request('POST', '/generic-resource-authorizations', { body, headers: { 'idempotency-key': key } })),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
      for (const res of responses) expect(res.body).toEqual(responses[0].body);
      const rows: { id: string }[] = await stack.dataSource.query('SELECT id FROM generic_resource_authorization WHERE alias_id = $1', [aliasId]);
      expect(rows).toEqual([{ id: responses[0].body.id }]);
      expect((await auditOf(rows[0].id)).map((a) => a.action)).toEqual(['delegation.created']);

      const reused = await admin.request('POST', '/generic-resource-authorizations', { body: { ...body, scopes: ['write'] }, headers: { 'idempotency-key': key } });
      expect(reused.status).toBe(422);
    });
  });

  describe('/generic-resource-authorization-scopes', () => {
    it('grants, reads, lists, replaces and withdraws a scope of an active delegation; the delegate sees each change; audited on the delegation', async () => {
      const aliasId = await aliceAlias();
      const delegation = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['read'] });

      const granted = await admin.request('POST', '/generic-resource-authorization-scopes', { body: { authorization_id: delegation.id, scope: 'write' } });
      expect(granted.status).toBe(201);
      expect(granted.body).toEqual({ id: expect.any(String), authorization_id: delegation.id, scope: 'write' });
      const id = granted.body.id as string;
      expect(await bobSees(aliasId)).toEqual(['read', 'write']);
      expect((await admin.request('GET', `/generic-resource-authorization-scopes/${id}`)).body).toEqual(granted.body);
      const listed = await admin.request('GET', `/generic-resource-authorization-scopes?authorization_id=${delegation.id}`);
      expect(listed.body.items.map((s: { scope: string }) => s.scope).sort()).toEqual(['read', 'write']);
      expect((await admin.request('GET', `/generic-resource-authorization-scopes?authorization_id=${delegation.id}&scope=write`)).body.items).toEqual([granted.body]);

      const replaced = await admin.request('PATCH', `/generic-resource-authorization-scopes/${id}`, { body: { scope: 'admin' } });
      expect(replaced.status).toBe(200);
      expect(replaced.body).toEqual({ id, authorization_id: delegation.id, scope: 'admin' });
      expect(await bobSees(aliasId)).toEqual(['admin', 'read']);

      expect((await admin.request('DELETE', `/generic-resource-authorization-scopes/${id}`)).status).toBe(204);
      expect((await admin.request('GET', `/generic-resource-authorization-scopes/${id}`)).status).toBe(404);
      expect(await bobSees(aliasId)).toEqual(['read']);

      const audit = await auditOf(delegation.id);
      expect(audit.map((a) => [a.action, a.details.after])).toEqual([
        ['delegation.created', undefined],
        ['delegation.updated', { scopes: ['read', 'write'] }],
        ['delegation.updated', { scopes: ['admin', 'read'] }],
        ['delegation.updated', { scopes: ['read'] }],
      ]);
      for (const row of audit) expect(row).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR });
    });

    it('the subset rule and the rest: not offered 400 (`scope`), granted already 409, last scope 409, inactive delegation 409, unknown ids 404', async () => {
      const aliasId = await aliceAlias(['read', 'write']);
      const delegation = await create({ owner_account_id: aliceId, alias_id: aliasId, delegate_account_id: bobId, scopes: ['read'] });
      const post = (body: Record<string, unknown>) => admin.request('POST', '/generic-resource-authorization-scopes', { body });

      const notOffered = await post({ authorization_id: delegation.id, scope: 'admin' });
      expect(notOffered.status).toBe(400);
      expect(fieldsOf(notOffered.body)).toEqual(['scope']);
      const malformed = await post({ authorization_id: delegation.id, scope: 'two words' });
      expect(fieldsOf(malformed.body)).toEqual(['scope']);
      const granted = await post({ authorization_id: delegation.id, scope: 'read' });
      expect(granted.status).toBe(409);
      const noDelegation = await post({ authorization_id: randomUUID(), scope: 'read' });
      expect(noDelegation.status).toBe(404);
      expect(fieldsOf(noDelegation.body)).toEqual(['authorization_id']);

      const [read] = (await admin.request('GET', `/generic-resource-authorization-scopes?authorization_id=${delegation.id}`)).body.items;
      const last = await admin.request('DELETE', `/generic-resource-authorization-scopes/${read.id}`);
      expect(last.status).toBe(409);
      expect(await bobSees(aliasId)).toEqual(['read']);
      const renameBeyond = await admin.request('PATCH', `/generic-resource-authorization-scopes/${read.id}`, { body: { scope: 'admin' } });
      expect(renameBeyond.status).toBe(400);

      // Two parallel grants of the same scope: one wins, the other is a 409 (never a 500 or a duplicate).
      const racing = await Promise.all([post({ authorization_id: delegation.id, scope: 'write' }), post({ authorization_id: delegation.id, scope: 'write' })]);
      expect(racing.map((r) => r.status).sort()).toEqual([201, 409]);

      await admin.request('PATCH', `/generic-resource-authorizations/${delegation.id}`, { body: { status: 'revoked' } });
      expect((await post({ authorization_id: delegation.id, scope: 'write' })).status).toBe(409);
      expect((await admin.request('DELETE', `/generic-resource-authorization-scopes/${read.id}`)).status).toBe(409);

      const unknown = randomUUID();
      expect((await admin.request('GET', `/generic-resource-authorization-scopes/${unknown}`)).status).toBe(404);
      expect((await admin.request('PATCH', `/generic-resource-authorization-scopes/${unknown}`, { body: { scope: 'read' } })).status).toBe(404);
      expect((await admin.request('DELETE', `/generic-resource-authorization-scopes/${unknown}`)).status).toBe(404);
    });
  });

  it('Swagger documents every delegation route with a summary', async () => {
    const doc = await admin.request('GET', '/docs-json', { token: null });
    for (const path of ['/generic-resource-authorizations', '/generic-resource-authorization-scopes']) {
      for (const method of ['get', 'post']) expect(doc.body.paths[path][method].summary).toBeTruthy();
      for (const method of ['get', 'patch', 'delete']) expect(doc.body.paths[`${path}/{id}`][method].summary).toBeTruthy();
      expect(doc.body.paths[path].post.description).toContain('Idempotency-Key');
    }
  });
});
