import { randomUUID } from 'node:crypto';
import { Controller, Get, Module, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { startAdmin, type AdminInstance } from '../support/admin';
import { json } from '../support/http';
import { devAccounts, newRmUser, type RmUser } from '../support/resource-users';
import { startStack, type TestStack } from '../support/stack';
import { ALL_METHODS, fillPath, nestRoutes, type NestRoute } from './route-inventory';

/**
 * Case 10 (docs/security.md): object-level authorisation on every route that takes an id, in both
 * apps. The id-taking routes are read from Nest's router; each must have a case below, else the
 * suite fails with "add a case for …". A caller without rights must get exactly what a caller gets
 * for an id that does not exist — same status, same body (request ids aside) — so existence never leaks.
 *
 * Not repeated here: the delegate/impostor views of pending delegations (delegation-rules.e2e-spec.ts
 * "pending delegations by email"), scope-per-method on the proxy (resource-proxy.e2e-spec.ts).
 */

type Probe = { status: number; body: unknown };
const withoutRequestId = (body: unknown): unknown => {
  if (!body || typeof body !== 'object') return body;
  const { request_id: _ignored, ...rest } = body as Record<string, unknown>;
  return rest;
};

/** Parameters that are not objects of a user and why they have no object-level check. */
const API_PARAM_ROUTES_WITHOUT_OWNER: Record<string, string> = {
  'GET /interaction/:uid': 'an OP login interaction: bound to the browser by oidc-provider’s interaction cookie, not to an account',
};

/** Id-taking routes with no case in `cases`: the message the suite fails with. */
const missingCases = (routes: NestRoute[], cases: Record<string, unknown>, table: string) =>
  routes.filter((r) => r.params.length && !cases[r.key]).map((r) => `add a case for ${r.key} (${r.controller.name}.${r.handlerName}) in ${table}`);

/** A would-be new id-taking route, only used to show the suite notices it. */
@Controller('widgets')
class WidgetsController {
  @Get(':id')
  get(@Param('id') id: string) {
    return id;
  }
}
@Module({ controllers: [WidgetsController] })
class WidgetsModule {}

describe('Security 10: object-level authorisation on every id-taking route', () => {
  let stack: TestStack;
  let admin: AdminInstance;
  let alice: RmUser; // owner
  let bob: RmUser; // delegate of alias[0] (read)
  let carol: RmUser; // no rights at all
  let aliasIds: string[];
  let delegationId: string;

  beforeAll(async () => {
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0', USERINFO_CACHE_TTL_SECONDS: '0' } });
    admin = await startAdmin(stack);
    [alice, bob, carol] = await Promise.all([
      newRmUser(stack, 'ola-alice', { accounts: devAccounts(2) }),
      newRmUser(stack, 'ola-bob'),
      newRmUser(stack, 'ola-carol', { accounts: devAccounts(1) }),
    ]);
    const owned = (await json(await alice.get('/resources'))).owned as { id: string }[];
    aliasIds = owned.map((r) => r.id).sort();
    expect(aliasIds).toHaveLength(2);
    const created = await alice.send('POST', '/delegations', { aliases: [aliasIds[0]], scopes: ['read'], delegate: { sub: bob.sub } });
    expect(created.status).toBe(201);
    delegationId = (await json(created))[0].id;
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  async function probe(user: RmUser, method: string, path: string, body?: unknown): Promise<Probe> {
    const res = await user.send(method, path, body);
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // keep the text
    }
    return { status: res.status, body: withoutRequestId(parsed) };
  }

  /**
   * For each api id-taking route: who is denied which real id, and the request. `path` fills the
   * route with the id; every denied probe is compared with the same request on random uuids.
   */
  interface ApiCase {
    denied: () => { who: RmUser; id: string; label: string }[];
    body?: unknown;
    extraParams?: Record<string, string>;
  }
  const apiCases = (): Record<string, ApiCase> => {
    const strangerOnAlias = () => [
      { who: carol, id: aliasIds[0], label: 'carol on alice’s delegated alias' },
      { who: carol, id: aliasIds[1], label: 'carol on alice’s undelegated alias' },
      { who: bob, id: aliasIds[1], label: 'bob (delegate of another alias) on alice’s undelegated alias' },
    ];
    const onDelegation = (includeDelegate: boolean) => () => [
      { who: carol, id: delegationId, label: 'carol on alice→bob delegation' },
      ...(includeDelegate ? [{ who: bob, id: delegationId, label: 'bob (the delegate) changing the delegation he received' }] : []),
    ];
    return {
      'GET /resources/:id': { denied: strangerOnAlias },
      'ALL /resources/:id/data': { denied: strangerOnAlias },
      'ALL /resources/:id/data/*path': { denied: strangerOnAlias, extraParams: { path: 'transactions' } },
      'GET /delegations/:id': { denied: onDelegation(false) },
      'PATCH /delegations/:id': { denied: onDelegation(true), body: { scopes: ['read'] } },
      'DELETE /delegations/:id': { denied: onDelegation(false) },
    };
  };

  it('api: a caller without rights gets exactly the answer for a non-existent id, on every id-taking route and method', async () => {
    const cases = apiCases();
    const routes = nestRoutes(stack.api).filter((r) => r.params.length && !(r.key in API_PARAM_ROUTES_WITHOUT_OWNER));
    expect(missingCases(routes, cases, 'apiCases()')).toEqual([]);

    const mismatches: string[] = [];
    let compared = 0;
    for (const route of routes) {
      const c = cases[route.key];
      for (const method of route.method === 'ALL' ? ALL_METHODS : [route.method]) {
        for (const denied of c.denied()) {
          const path = (id: string) => fillPath(route.path, { id, ...c.extraParams });
          const real = await probe(denied.who, method, path(denied.id), c.body);
          const random = await probe(denied.who, method, path(randomUUID()), c.body);
          compared++;
          if (real.status < 400) mismatches.push(`${method} ${route.path}, ${denied.label}: allowed (${real.status})`);
          else if (JSON.stringify(real) !== JSON.stringify(random)) {
            mismatches.push(`${method} ${route.path}, ${denied.label}: ${JSON.stringify(real)} ≠ non-existent ${JSON.stringify(random)}`);
          }
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(compared).toBeGreaterThanOrEqual(30);
  });

  it('self-check: a new id-taking route without a case fails the suite with "add a case for …"', async () => {
    const app = await NestFactory.create(WidgetsModule, { logger: false, abortOnError: false });
    try {
      expect(missingCases(nestRoutes(app), apiCases(), 'apiCases()')).toEqual(['add a case for GET /widgets/:id (WidgetsController.get) in apiCases()']);
    } finally {
      await app.close();
    }
  });

  it('api: the denied calls changed nothing and the rightful callers still get in', async () => {
    expect((await alice.get(`/delegations/${delegationId}`)).status).toBe(200);
    expect(await json(await alice.get(`/delegations/${delegationId}`))).toMatchObject({ status: 'active', scopes: ['read'] });
    expect((await bob.get(`/resources/${aliasIds[0]}`)).status).toBe(200);
    expect((await bob.get(`/resources/${aliasIds[0]}/data/`)).status).toBe(200);
    expect((await alice.get(`/resources/${aliasIds[1]}`)).status).toBe(200);
  });

  /** For each admin id-taking route: a real id (for the no-token comparison) and a body that passes validation. */
  interface AdminCase {
    realId: () => Promise<string>;
    randomId?: () => string;
    body?: unknown;
  }
  const firstId = async (sql: string, params: unknown[] = []) => {
    const rows: { id: string }[] = await stack.dataSource.query(sql, params);
    if (!rows[0]) throw new Error(`no fixture row for: ${sql}`);
    return rows[0].id;
  };
  const adminCases = (): Record<string, AdminCase> => {
    const genericResource = () => firstId(`SELECT id FROM generic_resource WHERE identifier = 'account'`);
    const alias = async () => aliasIds[0];
    const aliasScope = () => firstId(`SELECT id FROM generic_resource_alias_scope WHERE alias_id = $1`, [aliasIds[0]]);
    const authorization = async () => delegationId;
    const authorizationScope = () => firstId(`SELECT id FROM generic_resource_authorization_scope WHERE authorization_id = $1`, [delegationId]);
    const client = async () => stack.wallet.clientId;
    const account = async () => alice.sub;
    const auditEvent = () => firstId(`SELECT id FROM audit_event WHERE target_id = $1`, [delegationId]);
    const randomClient = () => `no-such-client-${randomUUID()}`;
    return {
      'GET /generic-resources/:id': { realId: genericResource },
      'PATCH /generic-resources/:id': { realId: genericResource, body: { name: 'Renamed' } },
      'DELETE /generic-resources/:id': { realId: genericResource },
      'GET /generic-resource-aliases/:id': { realId: alias },
      'PATCH /generic-resource-aliases/:id': { realId: alias, body: { display_name: 'Renamed' } },
      'DELETE /generic-resource-aliases/:id': { realId: alias },
      'GET /generic-resource-alias-scopes/:id': { realId: aliasScope },
      'PATCH /generic-resource-alias-scopes/:id': { realId: aliasScope, body: { scope: 'read' } },
      'DELETE /generic-resource-alias-scopes/:id': { realId: aliasScope },
      'GET /generic-resource-authorizations/:id': { realId: authorization },
      'PATCH /generic-resource-authorizations/:id': { realId: authorization, body: { scopes: ['read'] } },
      'DELETE /generic-resource-authorizations/:id': { realId: authorization },
      'GET /generic-resource-authorization-scopes/:id': { realId: authorizationScope },
      'PATCH /generic-resource-authorization-scopes/:id': { realId: authorizationScope, body: { scope: 'read' } },
      'DELETE /generic-resource-authorization-scopes/:id': { realId: authorizationScope },
      'GET /clients/:id': { realId: client, randomId: randomClient },
      'PATCH /clients/:id': { realId: client, randomId: randomClient, body: { client_name: 'Renamed' } },
      'POST /clients/:id/secret': { realId: client, randomId: randomClient },
      'DELETE /clients/:id': { realId: client, randomId: randomClient },
      'GET /accounts/:id': { realId: account },
      'DELETE /accounts/:id': { realId: account },
      'GET /audit-events/:id': { realId: auditEvent },
      'GET /accounts/:id/tokens': { realId: account },
      'POST /accounts/:id/tokens/refresh': { realId: account },
      'DELETE /accounts/:id/tokens': { realId: account },
    };
  };

  it('admin: without a token every id-taking route is the same 401 for a real and a random id; with one, a random id is a 404 of one shape', async () => {
    const cases = adminCases();
    const routes: NestRoute[] = nestRoutes(admin.app).filter((r) => r.params.length);
    expect(missingCases(routes, cases, 'adminCases()')).toEqual([]);

    const failures: string[] = [];
    const notFoundShapes = new Set<string>();
    for (const route of routes) {
      const c = cases[route.key];
      const realPath = fillPath(route.path, { id: await c.realId() });
      const randomPath = fillPath(route.path, { id: (c.randomId ?? randomUUID)() });
      for (const token of [null, 'wrong-admin-token']) {
        const real = await admin.request(route.method, realPath, { token, body: c.body });
        const random = await admin.request(route.method, randomPath, { token, body: c.body });
        if (real.status !== 401 || JSON.stringify(withoutRequestId(real.body)) !== JSON.stringify(withoutRequestId(random.body)) || random.status !== 401) {
          failures.push(`${route.key} token=${token}: real ${real.status} ${JSON.stringify(real.body)} vs random ${random.status} ${JSON.stringify(random.body)}`);
        }
      }
      const missingOne = await admin.request(route.method, randomPath, { body: c.body });
      if (missingOne.status !== 404) failures.push(`${route.key} with the admin token on a random id: ${missingOne.status} ${JSON.stringify(missingOne.body)}`);
      else {
        // One shape: { error: 'NOT_FOUND', message, request_id } — token-health routes add details that
        // only echo the id asked for (nothing about other objects).
        const { error, message, details, request_id: _rid, ...rest } = missingOne.body ?? {};
        const echoesOnlyTheId = details === undefined || JSON.stringify(Object.values(details)) === JSON.stringify([randomPath.split('/')[2]]);
        notFoundShapes.add(JSON.stringify({ error, message: typeof message, rest, echoesOnlyTheId }));
      }
    }
    expect(failures).toEqual([]);
    expect([...notFoundShapes]).toEqual([JSON.stringify({ error: 'NOT_FOUND', message: 'string', rest: {}, echoesOnlyTheId: true })]);
  });

  it('admin: the refused calls changed nothing (every real object is still there)', async () => {
    const cases = adminCases();
    for (const key of Object.keys(cases).filter((k) => k.startsWith('GET '))) {
      const path = fillPath(key.slice(4), { id: await cases[key].realId() });
      const res = await admin.request('GET', path);
      expect([key, res.status]).toEqual([key, 200]);
    }
    expect((await bob.get(`/resources/${aliasIds[0]}`)).status).toBe(200);
  });
});
