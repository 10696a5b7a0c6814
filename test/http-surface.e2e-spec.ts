import type { NestExpressApplication } from '@nestjs/platform-express';
import { createAdminApp } from '../apps/admin/src/bootstrap';
import { json } from './support/http';
import { looksLikeStackTrace } from './support/login-steps';
import { freePort } from './support/ports';
import { startStack, TestStack } from './support/stack';
import { randomId, TEST_ADMIN_TOKEN } from './support/test-config';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** helmet's defaults, and no framework fingerprint. */
function expectSecurityHeaders(res: Response): void {
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
  expect(res.headers.get('content-security-policy')).toMatch(/frame-ancestors 'self'/);
  expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
  expect(res.headers.get('x-powered-by')).toBeNull();
  // The test issuer is plain http: no HSTS, and no upgrade-insecure-requests (it would break /docs).
  expect(res.headers.get('strict-transport-security')).toBeNull();
  expect(res.headers.get('content-security-policy')).not.toMatch(/upgrade-insecure-requests/);
}

type OpenApi = {
  openapi: string;
  paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
  components?: { securitySchemes?: Record<string, { type: string; scheme?: string; description?: string }> };
};

describe('HTTP surface of the api and admin apps', () => {
  let stack: TestStack;
  let admin: NestExpressApplication;
  let adminUrl: string;

  beforeAll(async () => {
    stack = await startStack();
    admin = await createAdminApp(stack.config);
    const port = await freePort();
    await admin.listen(port, '127.0.0.1');
    adminUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  describe('api app', () => {
    it.each([
      ['a Nest route', '/health/live', 200],
      ['an OP route (discovery)', '/.well-known/openid-configuration', 200],
      ['an OP route (JWKS)', '/oidc/jwks', 200],
      ['a Nest 404', '/no-such-route', 404],
      ['an OP 404', '/oidc/no-such-route', 404],
      ['a bearer error', '/userinfo', 401],
      ['an interaction error page', '/interaction/callback', 400],
      ['the Swagger UI', '/docs', 200],
    ])('security headers on %s (%s)', async (_name, path, status) => {
      const res = await fetch(`${stack.issuer}${path}`);
      expect(res.status).toBe(status);
      expectSecurityHeaders(res);
      await res.arrayBuffer();
    });

    it('liveness answers 200, readiness 200 with the database check', async () => {
      const live = await fetch(`${stack.issuer}/health/live`);
      expect(live.status).toBe(200);
      expect(await json(live)).toEqual({ status: 'ok' });
      const ready = await fetch(`${stack.issuer}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await json(ready)).toEqual({ status: 'ok', checks: { database: { ok: true, latencyMs: expect.any(Number) } } });
    });

    it('an unknown route answers a JSON 404 with the request id and no stack', async () => {
      const requestId = randomId('req');
      const res = await fetch(`${stack.issuer}/no-such-route/deeper?x=1`, { headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await res.text();
      expect(looksLikeStackTrace(text)).toBe(false);
      expect(JSON.parse(text)).toMatchObject({ statusCode: 404, request_id: requestId });
    });

    it('malformed JSON is a JSON 400 and an oversized body a JSON 413 (not a 500), without a stack', async () => {
      const malformed = await fetch(`${stack.issuer}/userinfo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"not json',
      });
      expect(malformed.status).toBe(400);
      expect(malformed.headers.get('content-type')).toMatch(/^application\/json/);
      expect(looksLikeStackTrace(await malformed.text())).toBe(false);

      const huge = await fetch(`${stack.issuer}/userinfo`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `access_token=${'a'.repeat(2 * 1024 * 1024)}`,
      });
      expect(huge.status).toBe(413);
      expect(huge.headers.get('content-type')).toMatch(/^application\/json/);
      const text = await huge.text();
      expect(looksLikeStackTrace(text)).toBe(false);
      expect(JSON.parse(text)).toMatchObject({ error: 'payload_too_large', request_id: expect.any(String) });
    });

    it('X-Request-Id: a well-formed one is echoed (Nest and OP routes); a malformed or missing one is replaced', async () => {
      for (const path of ['/health/live', '/.well-known/openid-configuration', '/userinfo', '/no-such-route']) {
        const requestId = randomId('req');
        const res = await fetch(`${stack.issuer}${path}`, { headers: { 'x-request-id': requestId } });
        expect(res.headers.get('x-request-id')).toBe(requestId);
        await res.arrayBuffer();
      }
      for (const bad of ['has spaces', 'x'.repeat(129), '<script>']) {
        const res = await fetch(`${stack.issuer}/health/live`, { headers: { 'x-request-id': bad } });
        expect(res.headers.get('x-request-id')).toMatch(UUID);
        await res.arrayBuffer();
      }
      const none = await fetch(`${stack.issuer}/health/live`);
      expect(none.headers.get('x-request-id')).toMatch(UUID);
      await none.arrayBuffer();
    });

    it('/docs serves the Swagger UI with its assets', async () => {
      const res = await fetch(`${stack.issuer}/docs`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      expect(html).toContain('swagger-ui');
      const assets = [...html.matchAll(/(?:src|href)=["']([^"']+\.(?:js|css))["']/g)].map((m) => new URL(m[1], `${stack.issuer}/docs`).href);
      expect(assets.length).toBeGreaterThanOrEqual(3);
      for (const asset of assets) {
        const a = await fetch(asset);
        expect([asset, a.status]).toEqual([asset, 200]);
        await a.arrayBuffer();
      }
    });

    it('/docs-json is an OpenAPI document listing /userinfo (GET, POST) behind the bearer scheme, and no interaction routes', async () => {
      const res = await fetch(`${stack.issuer}/docs-json`);
      expect(res.status).toBe(200);
      const doc = (await json(res)) as OpenApi;
      expect(doc.openapi).toMatch(/^3\./);
      expect(doc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      for (const method of ['get', 'post']) {
        expect(doc.paths['/userinfo']?.[method]?.security).toEqual([{ bearer: [] }]);
      }
      expect(doc.paths['/health/live']?.get?.security).toBeUndefined();
      expect(doc.paths['/health/ready']?.get).toBeDefined();
      expect(Object.keys(doc.paths).filter((p) => p.startsWith('/interaction'))).toEqual([]);
    });
  });

  describe('admin app', () => {
    it('liveness, readiness, /docs and /docs-json are reachable without a token, with security headers', async () => {
      for (const path of ['/health/live', '/health/ready', '/docs', '/docs-json']) {
        const res = await fetch(`${adminUrl}${path}`);
        expect([path, res.status]).toEqual([path, 200]);
        expectSecurityHeaders(res);
        await res.arrayBuffer();
      }
      const ready = await fetch(`${adminUrl}/health/ready`);
      expect(await json(ready)).toMatchObject({ status: 'ok', checks: { database: { ok: true } } });
    });

    it('health stays reachable with a wrong admin token (public routes ignore credentials)', async () => {
      const res = await fetch(`${adminUrl}/health/live`, { headers: { authorization: 'Bearer wrong' } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    });

    it('echoes the X-Request-Id', async () => {
      const requestId = randomId('req');
      const res = await fetch(`${adminUrl}/health/live`, { headers: { 'x-request-id': requestId } });
      expect(res.headers.get('x-request-id')).toBe(requestId);
      await res.arrayBuffer();
    });

    it('the two OpenAPI documents are disjoint apart from health: admin routes are not on the api port and vice versa', async () => {
      const apiDoc = (await json(await fetch(`${stack.issuer}/docs-json`))) as OpenApi;
      const adminDoc = (await json(await fetch(`${adminUrl}/docs-json`))) as OpenApi;
      expect(adminDoc.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
      expect(adminDoc.components?.securitySchemes?.bearer?.description).toMatch(/ADMIN_TOKENS/);
      const isHealth = (p: string) => p.startsWith('/health/');
      const adminOnly = Object.keys(adminDoc.paths).filter((p) => !isHealth(p));
      const apiOnly = Object.keys(apiDoc.paths).filter((p) => !isHealth(p));
      expect(apiOnly).toContain('/userinfo');
      for (const p of adminOnly) expect(apiDoc.paths[p]).toBeUndefined();
      for (const p of apiOnly) expect(adminDoc.paths[p]).toBeUndefined();

      // Nor are they served there: the api's routes answer 404 on the admin port.
      for (const path of ['/userinfo', '/.well-known/openid-configuration', '/oidc/jwks', '/interaction/callback']) {
        const res = await fetch(`${adminUrl}${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
        expect([path, res.status]).toEqual([path, 404]);
        await res.arrayBuffer();
      }
      // ...and no admin-only path is served on the api port: 404, or — where the path happens to fit an
      // api route template, like /delegations/at-risk and the api's /delegations/{id} — that api
      // route's own refusal (its bearer guard), never the admin answer.
      const apiTemplates = apiOnly.map((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`));
      for (const p of adminOnly.filter((path) => !path.includes('{'))) {
        const res = await fetch(`${stack.issuer}${p}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
        const expected = apiTemplates.some((t) => t.test(p)) ? 401 : 404;
        expect([p, res.status]).toEqual([p, expected]);
        await res.arrayBuffer();
      }
    });

    it('an unknown admin route answers a JSON 404 whether or not a token is sent (the guard only runs on matched routes)', async () => {
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${TEST_ADMIN_TOKEN}` }] as Record<string, string>[]) {
        const res = await fetch(`${adminUrl}/no-such-admin-route`, { headers });
        expect(res.status).toBe(404);
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        expect(looksLikeStackTrace(await res.text())).toBe(false);
      }
    });
  });
});
