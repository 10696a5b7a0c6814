import { randomUUID } from 'node:crypto';
import { adminActorFor } from '../apps/admin/src/common/admin-actor';
import { startAdmin, type AdminInstance } from './support/admin';
import { startStack, type TestStack } from './support/stack';
import { randomId, TEST_ADMIN_TOKEN } from './support/test-config';
import { bearer, json } from './support/http';
import { loginAs, type WalletSession } from './support/wallet';

const ADMIN_ACTOR = adminActorFor(TEST_ADMIN_TOKEN);

interface AuditRow {
  action: string;
  actor_type: string;
  actor_id: string;
  target_type: string;
  target_id: string;
  details: Record<string, unknown>;
}

/**
 * The catalogue part of the admin API: generic resources, aliases and alias scopes — CRUD,
 * validation naming the field, 404/409, the deliberate cascades and refusals, audit in the same
 * transaction, and Idempotency-Key on create. Everything it creates is unique to this run.
 */
describe('admin API: the resource catalogue', () => {
  let stack: TestStack;
  let admin: AdminInstance;
  let aliceId: string;
  let bobId: string;
  let bob: WalletSession;

  beforeAll(async () => {
    stack = await startStack();
    admin = await startAdmin(stack);
    const scope = `openid profile email offline_access ${stack.config.scopes.related} ${stack.config.scopes.delegations}`;
    aliceId = (await loginAs(stack, 'alice', { scope })).tokens.claims()!.sub;
    bob = await loginAs(stack, 'bob', { scope });
    bobId = bob.tokens.claims()!.sub;
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  const auditOf = (targetId: string): Promise<AuditRow[]> =>
    stack.dataSource.query(
      'SELECT action, actor_type, actor_id, target_type, target_id, details FROM audit_event WHERE target_id = $1 ORDER BY occurred_at, action',
      [targetId],
    );
  const fieldsOf = (body: { fields?: { field: string }[]; details?: { field?: string } }) => [
    ...(body.fields ?? []).map((f) => f.field),
    ...(body.details?.field ? [body.details.field] : []),
  ];

  const kindBody = (overrides: Record<string, unknown> = {}) => ({
    identifier: randomId('kind'),
    name: 'Test kind',
    description: 'made by the catalogue test',
    path_template: '/things/{id}',
    scopes: ['read', 'write'],
    ...overrides,
  });
  async function createKind(overrides: Record<string, unknown> = {}) {
    const res = await admin.request('POST', '/generic-resources', { body: kindBody(overrides) });
    expect(res.status).toBe(201);
    return res.body as { id: string; identifier: string; scopes: string[] };
  }
  async function createAlias(kindId: string, ownerId: string, overrides: Record<string, unknown> = {}) {
    const res = await admin.request('POST', '/generic-resource-aliases', {
      body: { owner_account_id: ownerId, generic_resource_id: kindId, external_id: randomId('ext'), display_name: 'Thing', ...overrides },
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; scopes: string[]; status: string };
  }
  async function delegate(ownerId: string, aliasId: string, delegateId: string, scopes: string[]) {
    const res = await admin.request('POST', '/generic-resource-authorizations', {
      body: { owner_account_id: ownerId, alias_id: aliasId, delegate_account_id: delegateId, scopes },
    });
    expect(res.status).toBe(201);
    return res.body as { id: string; scopes: string[]; status: string };
  }

  describe('/generic-resources', () => {
    it('creates, reads, lists, updates and deletes a generic resource, auditing each write as the admin', async () => {
      const body = kindBody({ discovery_path: '/things' });
      const created = await admin.request('POST', '/generic-resources', { body });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.any(String),
        identifier: body.identifier,
        name: 'Test kind',
        description: 'made by the catalogue test',
        path_template: '/things/{id}',
        discovery_path: '/things',
        scopes: ['read', 'write'],
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const id = created.body.id as string;

      expect((await admin.request('GET', `/generic-resources/${id}`)).body).toEqual(created.body);
      const listed = await admin.request('GET', `/generic-resources?identifier=${body.identifier}`);
      expect(listed.status).toBe(200);
      expect(listed.body).toEqual({ items: [created.body], next_cursor: null });

      const updated = await admin.request('PATCH', `/generic-resources/${id}`, {
        body: { name: 'Renamed', description: null, discovery_path: null, scopes: ['read', 'write', 'admin'] },
      });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id, identifier: body.identifier, name: 'Renamed', description: null, discovery_path: null, scopes: ['read', 'write', 'admin'] });

      // A PATCH that changes nothing writes nothing (and so records no event).
      const same = await admin.request('PATCH', `/generic-resources/${id}`, { body: { name: 'Renamed' } });
      expect(same.body).toEqual(updated.body);

      expect((await admin.request('DELETE', `/generic-resources/${id}`)).status).toBe(204);
      expect((await admin.request('GET', `/generic-resources/${id}`)).status).toBe(404);

      const audit = await auditOf(id);
      expect(audit.map((a) => a.action)).toEqual(['generic_resource.created', 'generic_resource.updated', 'generic_resource.deleted']);
      for (const row of audit) expect(row).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR, target_type: 'generic_resource' });
      expect(audit[1].details).toMatchObject({ before: { name: 'Test kind' }, after: { name: 'Renamed', scopes: ['read', 'write', 'admin'] } });
    });

    it('lists page by page with next_cursor, filtered by q and scope; limit is capped at 100', async () => {
      const prefix = randomId('page');
      for (const n of [1, 2, 3]) await createKind({ identifier: `${prefix}-${n}`, scopes: ['read', `only-${prefix}`] });
      const first = await admin.request('GET', `/generic-resources?q=${prefix}&limit=2`);
      expect(first.body.items.map((i: { identifier: string }) => i.identifier)).toEqual([`${prefix}-1`, `${prefix}-2`]);
      expect(first.body.next_cursor).toEqual(expect.any(String));
      const second = await admin.request('GET', `/generic-resources?q=${prefix}&limit=2&cursor=${first.body.next_cursor}`);
      expect(second.body).toEqual({ items: [expect.objectContaining({ identifier: `${prefix}-3` })], next_cursor: null });
      const byScope = await admin.request('GET', `/generic-resources?scope=only-${prefix}`);
      expect(byScope.body.items).toHaveLength(3);

      const tooMany = await admin.request('GET', '/generic-resources?limit=101');
      expect(tooMany.status).toBe(400);
      expect(fieldsOf(tooMany.body)).toEqual(['limit']);
      const badCursor = await admin.request('GET', '/generic-resources?cursor=not-a-cursor');
      expect(badCursor.status).toBe(400);
      expect(fieldsOf(badCursor.body)).toEqual(['cursor']);
    });

    it.each([
      ['a path_template without {id}', { path_template: '/things' }, 'path_template'],
      ['a path_template not starting with /', { path_template: 'things/{id}' }, 'path_template'],
      ['a path_template with {id} twice', { path_template: '/{id}/{id}' }, 'path_template'],
      ['a path_template with a dot segment', { path_template: '/a/../{id}' }, 'path_template'],
      ['a relative discovery_path', { discovery_path: 'things' }, 'discovery_path'],
      ['no scopes', { scopes: [] }, 'scopes'],
      ['a scope with a space', { scopes: ['read write'] }, 'scopes'],
      ['an identifier with capitals', { identifier: 'Account' }, 'identifier'],
      ['a missing name', { name: undefined }, 'name'],
      ['an unknown property', { colour: 'blue' }, 'colour'],
    ])('refuses %s with 400 naming the field', async (_name, overrides, field) => {
      const res = await admin.request('POST', '/generic-resources', { body: kindBody(overrides) });
      expect(res.status).toBe(400);
      expect(fieldsOf(res.body)).toContain(field);
    });

    it('PATCH validates too (a required field cannot become null), and a non-UUID id is a 400 naming `id`', async () => {
      const kind = await createKind();
      const nulled = await admin.request('PATCH', `/generic-resources/${kind.id}`, { body: { name: null } });
      expect(nulled.status).toBe(400);
      expect(fieldsOf(nulled.body)).toEqual(['name']);
      const bad = await admin.request('PATCH', `/generic-resources/${kind.id}`, { body: { path_template: '/nothing' } });
      expect(fieldsOf(bad.body)).toEqual(['path_template']);
      const notUuid = await admin.request('GET', '/generic-resources/not-a-uuid');
      expect(notUuid.status).toBe(400);
      expect(fieldsOf(notUuid.body)).toEqual(['id']);
    });

    it('404 for an unknown id on get, update and delete', async () => {
      const id = randomUUID();
      expect((await admin.request('GET', `/generic-resources/${id}`)).status).toBe(404);
      expect((await admin.request('PATCH', `/generic-resources/${id}`, { body: { name: 'x' } })).status).toBe(404);
      expect((await admin.request('DELETE', `/generic-resources/${id}`)).status).toBe(404);
    });

    it('409 for a taken identifier (create and rename)', async () => {
      const kind = await createKind();
      const other = await createKind();
      const duplicate = await admin.request('POST', '/generic-resources', { body: kindBody({ identifier: kind.identifier }) });
      expect(duplicate.status).toBe(409);
      expect(duplicate.body).toMatchObject({ error: 'CONFLICT', details: { field: 'identifier' } });
      const rename = await admin.request('PATCH', `/generic-resources/${other.id}`, { body: { identifier: kind.identifier } });
      expect(rename.status).toBe(409);
    });

    it('a generic resource with aliases cannot be deleted (409), nor lose a scope an alias carries; nothing is orphaned', async () => {
      const kind = await createKind();
      const alias = await createAlias(kind.id, aliceId, { status: 'gone' });
      const refused = await admin.request('DELETE', `/generic-resources/${kind.id}`);
      expect(refused.status).toBe(409);
      expect(refused.body.details).toMatchObject({ aliases: 1 });
      const narrowed = await admin.request('PATCH', `/generic-resources/${kind.id}`, { body: { scopes: ['read'] } });
      expect(narrowed.status).toBe(409);
      expect(narrowed.body.details).toMatchObject({ field: 'scopes', scopes: ['write'] });
      expect((await admin.request('GET', `/generic-resources/${kind.id}`)).body.scopes).toEqual(['read', 'write']);

      // Once the alias no longer carries it, the scope can go; once the alias is gone, the kind can.
      const scopes = await admin.request('GET', `/generic-resource-alias-scopes?alias_id=${alias.id}&scope=write`);
      expect((await admin.request('DELETE', `/generic-resource-alias-scopes/${scopes.body.items[0].id}`)).status).toBe(204);
      expect((await admin.request('PATCH', `/generic-resources/${kind.id}`, { body: { scopes: ['read'] } })).status).toBe(200);
      expect((await admin.request('DELETE', `/generic-resource-aliases/${alias.id}`)).status).toBe(204);
      expect((await admin.request('DELETE', `/generic-resources/${kind.id}`)).status).toBe(204);
    });

    it('an idempotent create: 10 parallel identical POSTs with one Idempotency-Key make one row and get the same body; the key with another body is a 422', async () => {
      const body = kindBody();
      const key = randomId('idem');
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => admin.request('POST', '/generic-resources', { body, headers: { 'idempotency-key': key } })),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
      for (const res of responses) expect(res.body).toEqual(responses[0].body);
      const rows: { id: string }[] = await stack.dataSource.query('SELECT id FROM generic_resource WHERE identifier = $1', [body.identifier]);
      expect(rows).toEqual([{ id: responses[0].body.id }]);
      expect((await auditOf(rows[0].id)).map((a) => a.action)).toEqual(['generic_resource.created']);

      const reused = await admin.request('POST', '/generic-resources', { body: { ...body, name: 'Another' }, headers: { 'idempotency-key': key } });
      expect(reused.status).toBe(422);
    });
  });

  describe('/generic-resource-aliases', () => {
    it('creates an alias for an owner (all the kind’s scopes by default), reads, lists by filters, updates and deletes it, audited', async () => {
      const kind = await createKind();
      const created = await admin.request('POST', '/generic-resource-aliases', {
        body: { owner_account_id: aliceId, generic_resource_id: kind.id, external_id: 'thing-1', display_name: 'Thing one' },
      });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.any(String),
        owner_account_id: aliceId,
        generic_resource_id: kind.id,
        external_id: 'thing-1',
        display_name: 'Thing one',
        status: 'active',
        scopes: ['read', 'write'],
        last_seen_at: null,
        created_at: expect.any(String),
        updated_at: expect.any(String),
      });
      const id = created.body.id as string;
      const readOnly = await createAlias(kind.id, aliceId, { scopes: ['read'] });
      expect(readOnly.scopes).toEqual(['read']);
      await createAlias(kind.id, bobId);

      expect((await admin.request('GET', `/generic-resource-aliases/${id}`)).body).toEqual(created.body);
      const mine = await admin.request('GET', `/generic-resource-aliases?owner_account_id=${aliceId}&generic_resource_id=${kind.id}&status=active`);
      expect(mine.body.items.map((a: { id: string }) => a.id).sort()).toEqual([id, readOnly.id].sort());
      const byExternal = await admin.request('GET', `/generic-resource-aliases?generic_resource_id=${kind.id}&external_id=thing-1`);
      expect(byExternal.body.items.map((a: { id: string }) => a.id)).toEqual([id]);
      const paged = await admin.request('GET', `/generic-resource-aliases?generic_resource_id=${kind.id}&limit=2`);
      expect(paged.body.items).toHaveLength(2);
      const rest = await admin.request('GET', `/generic-resource-aliases?generic_resource_id=${kind.id}&limit=2&cursor=${paged.body.next_cursor}`);
      expect(rest.body.items).toHaveLength(1);
      expect(rest.body.next_cursor).toBeNull();

      const updated = await admin.request('PATCH', `/generic-resource-aliases/${id}`, { body: { display_name: 'Thing 1', external_id: 'thing-01' } });
      expect(updated.status).toBe(200);
      expect(updated.body).toMatchObject({ id, display_name: 'Thing 1', external_id: 'thing-01', status: 'active' });
      expect((await admin.request('PATCH', `/generic-resource-aliases/${id}`, { body: { status: 'active' } })).body).toEqual(updated.body);

      expect((await admin.request('DELETE', `/generic-resource-aliases/${id}`)).status).toBe(204);
      expect((await admin.request('GET', `/generic-resource-aliases/${id}`)).status).toBe(404);
      const scopesLeft = await stack.dataSource.query('SELECT 1 FROM generic_resource_alias_scope WHERE alias_id = $1', [id]);
      expect(scopesLeft).toEqual([]);

      const audit = await auditOf(id);
      expect(audit.map((a) => a.action)).toEqual(['generic_resource_alias.created', 'generic_resource_alias.updated', 'generic_resource_alias.deleted']);
      for (const row of audit) expect(row).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR, target_type: 'generic_resource_alias' });
    });

    it('validation names the field; unknown owner or kind is a 404 naming it; a taken external_id is a 409', async () => {
      const kind = await createKind();
      const base = { owner_account_id: aliceId, generic_resource_id: kind.id, external_id: randomId('ext'), display_name: 'Thing' };
      const cases: [Record<string, unknown>, number, string][] = [
        [{ owner_account_id: 'alice' }, 400, 'owner_account_id'],
        [{ external_id: '' }, 400, 'external_id'],
        [{ display_name: 'x'.repeat(256) }, 400, 'display_name'],
        [{ status: 'deleted' }, 400, 'status'],
        [{ scopes: ['admin'] }, 400, 'scopes'],
        [{ owner_account_id: randomUUID() }, 404, 'owner_account_id'],
        [{ generic_resource_id: randomUUID() }, 404, 'generic_resource_id'],
      ];
      for (const [overrides, status, field] of cases) {
        const res = await admin.request('POST', '/generic-resource-aliases', { body: { ...base, ...overrides } });
        expect({ overrides, status: res.status, fields: fieldsOf(res.body) }).toEqual({ overrides, status, fields: [field] });
      }
      const alias = await createAlias(kind.id, aliceId, { external_id: 'taken' });
      const duplicate = await admin.request('POST', '/generic-resource-aliases', { body: { ...base, external_id: 'taken' } });
      expect(duplicate.status).toBe(409);
      expect(fieldsOf(duplicate.body)).toEqual(['external_id']);
      // The same external id for another owner is another resource.
      await createAlias(kind.id, bobId, { external_id: 'taken' });
      const other = await createAlias(kind.id, aliceId);
      expect((await admin.request('PATCH', `/generic-resource-aliases/${other.id}`, { body: { external_id: 'taken' } })).status).toBe(409);
      // Owner and kind are fixed.
      const moved = await admin.request('PATCH', `/generic-resource-aliases/${alias.id}`, { body: { owner_account_id: bobId } });
      expect(moved.status).toBe(400);
      expect(fieldsOf(moved.body)).toEqual(['owner_account_id']);

      const unknown = randomUUID();
      expect((await admin.request('GET', `/generic-resource-aliases/${unknown}`)).status).toBe(404);
      expect((await admin.request('PATCH', `/generic-resource-aliases/${unknown}`, { body: { display_name: 'x' } })).status).toBe(404);
      expect((await admin.request('DELETE', `/generic-resource-aliases/${unknown}`)).status).toBe(404);
    });

    it('status gone ends the alias’s active delegations (expired, audited) and the delegate loses it; back to active does not revive them', async () => {
      const kind = await createKind();
      const alias = await createAlias(kind.id, aliceId);
      const delegation = await delegate(aliceId, alias.id, bobId, ['read']);
      expect((await fetch(`${stack.issuer}/resources/${alias.id}`, bearer(bob.tokens.access_token))).status).toBe(200);
      const gone = await admin.request('PATCH', `/generic-resource-aliases/${alias.id}`, { body: { status: 'gone' } });
      expect(gone.status).toBe(200);
      expect(gone.body.status).toBe('gone');
      const after = await admin.request('GET', `/generic-resource-authorizations/${delegation.id}`);
      expect(after.body).toMatchObject({ status: 'expired', revoked_by: ADMIN_ACTOR });
      expect((await auditOf(delegation.id)).map((a) => a.action)).toEqual(['delegation.created', 'delegation.ended_alias_gone']);
      expect((await fetch(`${stack.issuer}/resources/${alias.id}`, bearer(bob.tokens.access_token))).status).toBe(404);
      const delegated = (await json(await fetch(`${stack.issuer}/resources`, bearer(bob.tokens.access_token)))).delegated as { resources: { id: string }[] }[];
      expect(delegated.flatMap((d) => d.resources.map((r) => r.id))).not.toContain(alias.id);

      expect((await admin.request('PATCH', `/generic-resource-aliases/${alias.id}`, { body: { status: 'active' } })).body.status).toBe('active');
      expect((await admin.request('GET', `/generic-resource-authorizations/${delegation.id}`)).body.status).toBe('expired');
    });

    it('deleting an alias cascades deliberately: its scopes and every delegation of it go, each delegation audited with a snapshot', async () => {
      const kind = await createKind();
      const alias = await createAlias(kind.id, aliceId);
      const active = await delegate(aliceId, alias.id, bobId, ['read', 'write']);
      expect((await admin.request('DELETE', `/generic-resource-aliases/${alias.id}`)).status).toBe(204);
      expect((await admin.request('GET', `/generic-resource-authorizations/${active.id}`)).status).toBe(404);
      const orphans = await stack.dataSource.query(
        `SELECT (SELECT count(*)::int FROM generic_resource_authorization WHERE alias_id = $1) AS delegations,
                (SELECT count(*)::int FROM generic_resource_authorization_scope WHERE authorization_id = $2) AS granted,
                (SELECT count(*)::int FROM generic_resource_alias_scope WHERE alias_id = $1) AS scopes`,
        [alias.id, active.id],
      );
      expect(orphans).toEqual([{ delegations: 0, granted: 0, scopes: 0 }]);
      const audit = await auditOf(active.id);
      expect(audit.map((a) => a.action)).toEqual(['delegation.created', 'delegation.deleted']);
      expect(audit[1]).toMatchObject({
        actor_type: 'admin',
        actor_id: ADMIN_ACTOR,
        details: { reason: 'alias_deleted', before: { status: 'active', alias_id: alias.id, delegate_account_id: bobId, scopes: ['read', 'write'] } },
      });
      expect((await auditOf(alias.id)).at(-1)).toMatchObject({ action: 'generic_resource_alias.deleted', details: { delegations_deleted: 1 } });
    });
  });

  describe('/generic-resource-alias-scopes', () => {
    it('adds, reads, lists, replaces and removes an alias scope; the scope must be one of the kind’s; audited', async () => {
      const kind = await createKind({ scopes: ['read', 'write', 'admin'] });
      const alias = await createAlias(kind.id, aliceId, { scopes: ['read'] });
      const created = await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: alias.id, scope: 'write' } });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({ id: expect.any(String), alias_id: alias.id, scope: 'write' });
      const id = created.body.id as string;
      expect((await admin.request('GET', `/generic-resource-alias-scopes/${id}`)).body).toEqual(created.body);
      const listed = await admin.request('GET', `/generic-resource-alias-scopes?alias_id=${alias.id}`);
      expect(listed.body.items.map((s: { scope: string }) => s.scope).sort()).toEqual(['read', 'write']);
      expect((await admin.request('GET', `/generic-resource-aliases/${alias.id}`)).body.scopes).toEqual(['read', 'write']);

      const replaced = await admin.request('PATCH', `/generic-resource-alias-scopes/${id}`, { body: { scope: 'admin' } });
      expect(replaced.status).toBe(200);
      expect(replaced.body).toEqual({ id, alias_id: alias.id, scope: 'admin' });

      expect((await admin.request('DELETE', `/generic-resource-alias-scopes/${id}`)).status).toBe(204);
      expect((await admin.request('GET', `/generic-resource-alias-scopes/${id}`)).status).toBe(404);
      expect((await admin.request('GET', `/generic-resource-aliases/${alias.id}`)).body.scopes).toEqual(['read']);

      const audit = await auditOf(id);
      expect(audit.map((a) => a.action)).toEqual([
        'generic_resource_alias_scope.created',
        'generic_resource_alias_scope.updated',
        'generic_resource_alias_scope.deleted',
      ]);
      for (const row of audit) expect(row).toMatchObject({ actor_type: 'admin', actor_id: ADMIN_ACTOR });
    });

    it('a scope the kind does not offer is a 400 naming `scope`; a scope the alias has is a 409; unknown ids are 404', async () => {
      const kind = await createKind();
      const alias = await createAlias(kind.id, aliceId, { scopes: ['read'] });
      const notOffered = await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: alias.id, scope: 'admin' } });
      expect(notOffered.status).toBe(400);
      expect(fieldsOf(notOffered.body)).toEqual(['scope']);
      const malformed = await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: 'x', scope: 'read' } });
      expect(fieldsOf(malformed.body)).toEqual(['alias_id']);
      const duplicate = await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: alias.id, scope: 'read' } });
      expect(duplicate.status).toBe(409);
      const noAlias = await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: randomUUID(), scope: 'read' } });
      expect(noAlias.status).toBe(404);
      expect(fieldsOf(noAlias.body)).toEqual(['alias_id']);
      const [read] = (await admin.request('GET', `/generic-resource-alias-scopes?alias_id=${alias.id}`)).body.items;
      const badRename = await admin.request('PATCH', `/generic-resource-alias-scopes/${read.id}`, { body: { scope: 'admin' } });
      expect(badRename.status).toBe(400);
      expect(fieldsOf(badRename.body)).toEqual(['scope']);
      const unknown = randomUUID();
      expect((await admin.request('GET', `/generic-resource-alias-scopes/${unknown}`)).status).toBe(404);
      expect((await admin.request('PATCH', `/generic-resource-alias-scopes/${unknown}`, { body: { scope: 'read' } })).status).toBe(404);
      expect((await admin.request('DELETE', `/generic-resource-alias-scopes/${unknown}`)).status).toBe(404);
    });

    it('removing an alias scope cascades to its delegations: taken from each, and one left with no scope is revoked', async () => {
      const kind = await createKind();
      const alias = await createAlias(kind.id, aliceId);
      const both = await delegate(aliceId, alias.id, bobId, ['read', 'write']);
      const carolId = (await loginAs(stack, 'carol')).tokens.claims()!.sub;
      const writeOnly = await delegate(aliceId, alias.id, carolId, ['write']);
      const [write] = (await admin.request('GET', `/generic-resource-alias-scopes?alias_id=${alias.id}&scope=write`)).body.items;
      expect((await admin.request('DELETE', `/generic-resource-alias-scopes/${write.id}`)).status).toBe(204);

      expect((await admin.request('GET', `/generic-resource-authorizations/${both.id}`)).body).toMatchObject({ status: 'active', scopes: ['read'] });
      expect((await admin.request('GET', `/generic-resource-authorizations/${writeOnly.id}`)).body).toMatchObject({
        status: 'revoked',
        scopes: [],
        revoked_by: ADMIN_ACTOR,
      });
      expect((await auditOf(both.id)).map((a) => a.action)).toEqual(['delegation.created', 'delegation.updated']);
      // The last two share one transaction (and so one occurred_at): ordered by action.
    expect((await auditOf(writeOnly.id)).map((a) => a.action)).toEqual(['delegation.created', 'delegation.revoked', 'delegation.updated']);

      // Giving the scope back does not silently give it back to the delegations.
      expect((await admin.request('POST', '/generic-resource-alias-scopes', { body: { alias_id: alias.id, scope: 'write' } })).status).toBe(201);
      expect((await admin.request('GET', `/generic-resource-authorizations/${both.id}`)).body.scopes).toEqual(['read']);
    });
  });

  it('Swagger documents every catalogue route with a summary and a description', async () => {
    const doc = await admin.request('GET', '/docs-json', { token: null });
    expect(doc.status).toBe(200);
    for (const path of ['/generic-resources', '/generic-resource-aliases', '/generic-resource-alias-scopes']) {
      for (const p of [path, `${path}/{id}`]) {
        expect(Object.keys(doc.body.paths)).toContain(p);
        for (const operation of Object.values(doc.body.paths[p]) as { summary?: string; description?: string }[]) {
          expect(operation.summary).toBeTruthy();
        }
      }
      for (const method of ['get', 'post']) expect(doc.body.paths[path][method]).toBeDefined();
      for (const method of ['get', 'patch', 'delete']) expect(doc.body.paths[`${path}/{id}`][method]).toBeDefined();
      expect(doc.body.paths[`${path}/{id}`].delete.description).toBeTruthy();
    }
  });
});
