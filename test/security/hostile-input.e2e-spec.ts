import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { startAdmin, type AdminInstance } from '../support/admin';
import { json } from '../support/http';
import { devAccounts, newRmUser, type RmUser } from '../support/resource-users';
import { startStack, type TestStack } from '../support/stack';
import { randomId, TEST_ADMIN_TOKEN } from '../support/test-config';
import { fillPath, nestRoutes, type NestRoute } from './route-inventory';

/**
 * Case 13 (docs/security.md): hostile input on every write route of both apps, the routes read from
 * Nest's router. A write route this file does not know fails the suite with "add a case for …".
 *   - fast-check bodies, query strings, content types (and Idempotency-Key on admin) never give a 5xx;
 *   - `__proto__`, `constructor` and `isAdmin` next to a valid body are a 400 and pollute nothing;
 *   - bodies over the parser limit (100 kB) are a 413;
 *   - strings of 10 000 characters and arrays of 1 000 items in any field are a 400;
 *   - `limit` on every list: 1–100 accepted, anything else (100000, 0, -1, 1.5, abc) a 400 naming `limit`.
 * Deeper rules of the delegation DTOs (nested prototype keys, non-object bodies) are in
 * test/delegation-rules.e2e-spec.ts "validation names the field"; the admin collections' own rules in
 * test/admin-catalogue.e2e-spec.ts and test/admin-delegations.e2e-spec.ts.
 */

const RUNS = 30;
const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'ALL']);

type Json = Record<string, unknown>;
interface WriteCase {
  /** Path parameter values: a function so each run can draw a real or a random id. */
  params?: () => Record<string, string>;
  /** A body that passes validation (fresh each call), for routes that take @Body(). */
  valid?: () => Json;
  /** Methods to use for an @All() route. */
  methods?: string[];
}
interface Target {
  app: 'api' | 'admin';
  route: NestRoute;
  case: WriteCase;
}

describe('Security 13: hostile input on every write route', () => {
  let stack: TestStack;
  let admin: AdminInstance;
  let alice: RmUser;
  let bob: RmUser;
  let aliasIds: string[];
  let delegationId: string;
  /** Objects created for this file only, that the fuzzer may change. */
  const own: Record<'kind' | 'alias' | 'aliasScope' | 'authorization' | 'authorizationScope' | 'client', string> = {} as never;
  let targets: Target[];

  const sendRaw = (target: Target, method: string, path: string, body: string | undefined, headers: Record<string, string> = {}) => {
    const base = target.app === 'api' ? stack.issuer : admin.url;
    const token = target.app === 'api' ? alice.token : TEST_ADMIN_TOKEN;
    return fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...headers }, body: method === 'GET' || method === 'HEAD' ? undefined : body });
  };
  const methodsOf = (t: Target) => (t.route.method === 'ALL' ? (t.case.methods ?? ['POST']) : [t.route.method]);
  const pathOf = (t: Target) => fillPath(t.route.path, t.case.params?.() ?? {});

  const cases = (): Record<string, WriteCase> => {
    const random = () => ({ id: randomUUID() });
    const ownOr = (id: () => string) => () => ({ id: Math.random() < 0.5 ? id() : randomUUID() });
    const email = () => `${randomId('hostile')}@hostile.example`;
    return {
      // api (as alice, the owner)
      'POST /userinfo': {},
      'POST /delegations': { valid: () => ({ aliases: [aliasIds[1]], scopes: ['read'], delegate: { email: email() } }) },
      'PATCH /delegations/:id': { params: ownOr(() => delegationId), valid: () => ({ scopes: ['read'] }) },
      'DELETE /delegations/:id': { params: random },
      'ALL /resources/:id/data': { params: () => ({ id: aliasIds[0] }), methods: ['POST', 'PUT', 'PATCH', 'DELETE'] },
      'ALL /resources/:id/data/*path': { params: () => ({ id: aliasIds[0], path: 'transactions' }), methods: ['POST', 'PUT', 'PATCH', 'DELETE'] },
      // admin
      'POST /generic-resources': { valid: () => ({ identifier: randomId('hostile'), name: 'Hostile kind', path_template: '/things/{id}', scopes: ['read', 'write'] }) },
      'PATCH /generic-resources/:id': { params: ownOr(() => own.kind), valid: () => ({ name: 'Renamed kind' }) },
      'DELETE /generic-resources/:id': { params: random },
      'POST /generic-resource-aliases': {
        valid: () => ({ owner_account_id: alice.sub, generic_resource_id: own.kind, external_id: randomId('ext'), display_name: 'Hostile alias' }),
      },
      'PATCH /generic-resource-aliases/:id': { params: ownOr(() => own.alias), valid: () => ({ display_name: 'Renamed alias' }) },
      'DELETE /generic-resource-aliases/:id': { params: random },
      'POST /generic-resource-alias-scopes': { valid: () => ({ alias_id: own.alias, scope: 'write' }) },
      'PATCH /generic-resource-alias-scopes/:id': { params: ownOr(() => own.aliasScope), valid: () => ({ scope: 'read' }) },
      'DELETE /generic-resource-alias-scopes/:id': { params: random },
      'POST /generic-resource-authorizations': { valid: () => ({ owner_account_id: alice.sub, alias_id: own.alias, scopes: ['read'], delegate_email: email() }) },
      'PATCH /generic-resource-authorizations/:id': { params: ownOr(() => own.authorization), valid: () => ({ scopes: ['read'] }) },
      'DELETE /generic-resource-authorizations/:id': { params: random },
      'POST /generic-resource-authorization-scopes': { valid: () => ({ authorization_id: own.authorization, scope: 'write' }) },
      'PATCH /generic-resource-authorization-scopes/:id': { params: ownOr(() => own.authorizationScope), valid: () => ({ scope: 'read' }) },
      'DELETE /generic-resource-authorization-scopes/:id': { params: random },
      'POST /clients': { valid: () => ({ redirect_uris: ['https://hostile.example/cb'], scope: 'openid' }) },
      'PATCH /clients/:id': { params: () => ({ id: Math.random() < 0.5 ? own.client : `no-such-${randomUUID()}` }), valid: () => ({ client_name: 'Renamed client' }) },
      'POST /clients/:id/secret': { params: () => ({ id: `no-such-${randomUUID()}` }) },
      'DELETE /clients/:id': { params: () => ({ id: `no-such-${randomUUID()}` }) },
      'DELETE /accounts/:id': { params: random },
      'POST /accounts/:id/tokens/refresh': { params: random },
      'DELETE /accounts/:id/tokens': { params: random },
    };
  };

  beforeAll(async () => {
    // ~1 000 admin requests: far over RATE_LIMIT_ADMIN_MAX, which is not what this file tests (rate-limits.e2e-spec.ts does).
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0', RATE_LIMIT_ENABLED: 'false' } });
    admin = await startAdmin(stack);
    [alice, bob] = await Promise.all([newRmUser(stack, 'hostile-alice', { accounts: devAccounts(2) }), newRmUser(stack, 'hostile-bob')]);
    aliasIds = ((await json(await alice.get('/resources'))).owned as { id: string }[]).map((r) => r.id).sort();
    const created = await alice.send('POST', '/delegations', { aliases: [aliasIds[0]], scopes: ['read'], delegate: { sub: bob.sub } });
    delegationId = (await json(created))[0].id;

    const post = async (path: string, body: Json) => {
      const res = await admin.request('POST', path, { body });
      if (res.status !== 201) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    };
    own.kind = (await post('/generic-resources', cases()['POST /generic-resources'].valid!())).id;
    own.alias = (await post('/generic-resource-aliases', { ...cases()['POST /generic-resource-aliases'].valid!(), scopes: ['read', 'write'] })).id;
    own.aliasScope = (await stack.dataSource.query(`SELECT id FROM generic_resource_alias_scope WHERE alias_id = $1 LIMIT 1`, [own.alias]))[0].id;
    own.authorization = (await post('/generic-resource-authorizations', { owner_account_id: alice.sub, alias_id: own.alias, scopes: ['read', 'write'], delegate_account_id: bob.sub })).id;
    own.authorizationScope = (await stack.dataSource.query(`SELECT id FROM generic_resource_authorization_scope WHERE authorization_id = $1 LIMIT 1`, [own.authorization]))[0].id;
    own.client = (await post('/clients', cases()['POST /clients'].valid!())).client_id;

    const table = cases();
    targets = [
      ...nestRoutes(stack.api).map((route) => ({ app: 'api' as const, route })),
      ...nestRoutes(admin.app).map((route) => ({ app: 'admin' as const, route })),
    ]
      .filter((t) => WRITE.has(t.route.method))
      .map((t) => ({ ...t, case: table[t.route.key] }));
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  it('knows every write route of both apps, and a valid body for each that takes one', () => {
    const table = cases();
    const problems = targets.flatMap((t) =>
      !t.case
        ? [`add a case for ${t.app} ${t.route.key} (${t.route.controller.name}.${t.route.handlerName}) in cases()`]
        : t.route.hasBody && !t.case.valid
          ? [`add a valid body for ${t.app} ${t.route.key} in cases()`]
          : [],
    );
    expect(problems).toEqual([]);
    expect(Object.keys(table).filter((k) => !targets.some((t) => t.route.key === k))).toEqual([]);
    expect(targets.length).toBeGreaterThanOrEqual(25);
  });

  describe('fast-check: generated bodies and query strings never give a 5xx', () => {
    const hostileValue = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.string({ maxLength: 300 }),
      fc.constantFrom(null, true, 0, -1, 1e308, '', '../../etc/passwd', '%00', '{}', '[]', 'NaN', '2026-02-30T25:61:00Z', '\u0000', '\ud800'),
      fc.array(fc.string({ maxLength: 40 }), { maxLength: 30 }),
    );
    const hostileKey = fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('__proto__', 'constructor', 'prototype', 'isAdmin', 'toString', 'hasOwnProperty'));
    /** `valid` with one key (maybe a new or prototype one) set to a hostile value, as raw JSON so `__proto__` stays a key. */
    const mutate = (valid: Json, key: string, value: unknown) => {
      const entries = Object.entries(valid).filter(([k]) => k !== key);
      return `{${[...entries, [key, value] as const].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v ?? null)}`).join(',')}}`;
    };
    const bodyArb = (c: WriteCase) =>
      fc.oneof(
        fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
        fc.string({ maxLength: 200 }),
        c.valid ? fc.tuple(fc.constantFrom(...Object.keys(c.valid())), hostileValue).map(([k, v]) => mutate(c.valid!(), k, v)) : fc.constant('{}'),
        c.valid ? fc.tuple(hostileKey, hostileValue).map(([k, v]) => mutate(c.valid!(), k, v)) : fc.constant('[]'),
      );
    const queryArb = fc.oneof(
      fc
        .dictionary(fc.constantFrom('limit', 'cursor', 'direction', 'owner', 'type', '__proto__', 'constructor', 'isAdmin', 'a[b]', 'limit[]'), fc.oneof(fc.string({ maxLength: 50 }), fc.integer().map(String)), {
          maxKeys: 4,
        })
        .map((d) => (Object.keys(d).length ? `?${new URLSearchParams(d)}` : '')),
      fc.constantFrom('?a[__proto__][isAdmin]=1', '?limit=1e9', '?%ff%fe', '?limit=1&limit=2', '?constructor[prototype][x]=1', `?x=${'y'.repeat(4000)}`),
    );
    const headerArb = fc.record({
      contentType: fc.constantFrom('application/json', 'application/json; charset=utf-16', 'application/x-www-form-urlencoded', 'text/plain', 'application/merge-patch+json'),
      idempotencyKey: fc.option(fc.stringMatching(/^[\x21-\x7e]{0,300}$/), { nil: undefined }),
    });

    it('on every write route', async () => {
      /** The first failing request per route (shrinking would add more of the same). */
      const failures: string[] = [];
      for (const target of targets) {
        let failed = false;
        await fc.assert(
          // An @All() route draws its method too: one property per route keeps the file bounded.
          fc.asyncProperty(fc.constantFrom(...methodsOf(target)), bodyArb(target.case), queryArb, headerArb, async (method, body, query, headers) => {
            const h: Record<string, string> = { 'content-type': headers.contentType };
            if (target.app === 'admin' && headers.idempotencyKey !== undefined) h['idempotency-key'] = headers.idempotencyKey;
            const path = pathOf(target);
            const res = await sendRaw(target, method, `${path}${query}`, body, h);
            const text = await res.text();
            if (res.status >= 500) {
              if (!failed) failures.push(`${target.app} ${method} ${path}${query.slice(0, 80)} body=${body.slice(0, 200)} headers=${JSON.stringify(h)} → ${res.status} ${text.slice(0, 200)}`);
              failed = true;
              return false;
            }
            return true;
          }),
          { numRuns: RUNS },
        ).catch(() => undefined); // the first failure per route is in `failures`, reported below with its request
      }
      expect(failures).toEqual([]);
      // Nothing leaked onto the prototypes of this process (the apps run in it).
      expect(({} as Json).isAdmin).toBeUndefined();
      expect(({} as Json).x).toBeUndefined();
    }, 120_000);
  });

  it('__proto__, constructor and isAdmin next to a valid body are a 400 on every route that takes a body; the valid body alone is not', async () => {
    const failures: string[] = [];
    const extras: [string, string][] = [
      ['__proto__', '{"isAdmin":true}'],
      ['constructor', '{"prototype":{"isAdmin":true}}'],
      ['isAdmin', 'true'],
    ];
    for (const target of targets.filter((t) => t.route.hasBody)) {
      for (const [key, value] of extras) {
        const valid = JSON.stringify(target.case.valid!());
        const body = `${valid.slice(0, -1)},${JSON.stringify(key)}:${value}}`;
        const path = pathOf(target);
        const res = await sendRaw(target, target.route.method, path, body, { 'content-type': 'application/json' });
        const answer = await res.json().catch(() => undefined);
        if (res.status !== 400) failures.push(`${target.app} ${target.route.method} ${path} with ${key}: ${res.status} ${JSON.stringify(answer)}`);
      }
      const control = await sendRaw(target, target.route.method, pathOf(target), JSON.stringify(target.case.valid!()), { 'content-type': 'application/json' });
      if (control.status === 400 || control.status >= 500) failures.push(`${target.app} ${target.route.key}: the valid body itself is a ${control.status} ${await control.text()}`);
      else await control.arrayBuffer();
    }
    expect(failures).toEqual([]);
    expect(({} as Json).isAdmin).toBeUndefined();
  });

  it('a body over the limit (200 kB of JSON) is a 413 on every write route and method', async () => {
    const big = JSON.stringify({ padding: 'x'.repeat(200 * 1024) });
    const failures: string[] = [];
    for (const target of targets) {
      for (const method of target.route.method === 'ALL' ? ['POST', 'PUT', 'PATCH', 'DELETE'] : [target.route.method]) {
        const path = fillPath(target.route.path, { ...target.case.params?.(), id: randomUUID() });
        const res = await sendRaw(target, method, path, big, { 'content-type': 'application/json' });
        const text = await res.text();
        if (res.status !== 413) failures.push(`${target.app} ${method} ${target.route.path}: ${res.status} ${text.slice(0, 120)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('a 10 000-character string, a NUL, a lone surrogate or a 1 000-item array in any field is a 400 naming that field', async () => {
    /**
     * Every variant of `body` with one leaf string made huge, given a NUL or a lone surrogate (which
     * PostgreSQL cannot store), or one array made long; the path of the field.
     */
    const variants = (body: unknown, path: string[] = []): { field: string; kind: string; body: unknown }[] => {
      const out: { field: string; kind: string; body: unknown }[] = [];
      const set = (root: unknown, at: string[], value: unknown): unknown => {
        if (!at.length) return value;
        const copy: Json = { ...(root as Json) };
        copy[at[0]] = set(copy[at[0]], at.slice(1), value);
        return copy;
      };
      const visit = (node: unknown, at: string[]) => {
        if (typeof node === 'string') {
          out.push({ field: at.join('.'), kind: 'huge', body: set(body, at, 'x'.repeat(10_000)) });
          out.push({ field: at.join('.'), kind: 'NUL in', body: set(body, at, 'a\u0000b') });
          out.push({ field: at.join('.'), kind: 'lone surrogate in', body: set(body, at, 'a\ud800b') });
        } else if (Array.isArray(node)) out.push({ field: at.join('.'), kind: 'long', body: set(body, at, Array.from({ length: 1000 }, () => node[0] ?? 'x')) });
        else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) visit(v, [...at, k]);
      };
      visit(body, path);
      return out;
    };
    const failures: string[] = [];
    let checked = 0;
    for (const target of targets.filter((t) => t.route.hasBody)) {
      for (const variant of variants(target.case.valid!())) {
        const res = await sendRaw(target, target.route.method, pathOf(target), JSON.stringify(variant.body), { 'content-type': 'application/json' });
        const answer = await res.json().catch(() => undefined);
        checked++;
        const named = JSON.stringify(answer ?? {}).includes(`"${variant.field.split('.')[0]}`);
        if (res.status !== 400 || !named) failures.push(`${target.app} ${target.route.method} ${target.route.path} ${variant.kind} ${variant.field}: ${res.status} ${JSON.stringify(answer).slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(60);
  });

  describe('page sizes', () => {
    /** Query parameters a list needs besides `limit`. */
    const REQUIRED_QUERY: Record<string, string> = { 'GET /delegations': 'direction=granted' };

    it('every list takes limit 1–100 and refuses anything else with a 400 naming limit (never clamps silently to something else)', async () => {
      const lists = [
        ...nestRoutes(stack.api).map((route) => ({ app: 'api' as const, route })),
        ...nestRoutes(admin.app).map((route) => ({ app: 'admin' as const, route })),
      ].filter((t) => t.route.method === 'GET' && t.route.hasQuery && !t.route.params.length);
      expect(lists.length).toBeGreaterThanOrEqual(10);
      const failures: string[] = [];
      const paginated: string[] = [];
      for (const list of lists) {
        const target: Target = { ...list, case: {} };
        const extra = REQUIRED_QUERY[list.route.key] ? `&${REQUIRED_QUERY[list.route.key]}` : '';
        const get = async (limit: string) => {
          const res = await sendRaw(target, 'GET', `${list.route.path}?limit=${limit}${extra}`, undefined);
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          return { status: res.status, body: (await res.json().catch(() => undefined)) as any };
        };
        const probe = await get('100000');
        const messages = JSON.stringify(probe.body?.fields ?? []);
        if (probe.status !== 400 || !messages.includes('"limit"')) {
          failures.push(`${list.app} ${list.route.key}?limit=100000: ${probe.status} ${JSON.stringify(probe.body).slice(0, 200)}`);
          continue;
        }
        if (/should not exist/.test(messages)) continue; // not a paginated list: limit is an unknown parameter
        paginated.push(`${list.app} ${list.route.key}`);
        for (const bad of ['0', '-1', '101', '1.5', 'abc', '1e3']) {
          const r = await get(bad);
          if (r.status !== 400) failures.push(`${list.app} ${list.route.key}?limit=${bad}: ${r.status}`);
        }
        for (const ok of ['1', '100']) {
          const r = await get(ok);
          if (r.status !== 200) failures.push(`${list.app} ${list.route.key}?limit=${ok}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        }
      }
      expect(failures).toEqual([]);
      expect(paginated.length).toBeGreaterThanOrEqual(10);
    });
  });
});
