import { randomBytes } from 'node:crypto';
import express from 'express';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { buildDataSourceOptions, rateLimitMiddleware, RateLimitStore } from '@rsa/database';
import { createApiApp } from '../../apps/api/src/bootstrap';
import { startAdmin, type AdminInstance } from '../support/admin';
import { freePort } from '../support/ports';
import { startSecondInstance, type ApiInstance } from '../support/second-instance';
import { startStack, type TestStack } from '../support/stack';
import { randomId } from '../support/test-config';

/**
 * Security case 14: per-IP fixed-window limits on login, token and admin routes, 429 with
 * Retry-After and a JSON body, counted in PostgreSQL so the limit holds across instances.
 *
 * The stack trusts one proxy hop, so every test speaks from its own random client address
 * (X-Forwarded-For): tests share the database and its counters, never a bucket.
 */
const MAX = 3;

function randomIp(): string {
  const b = randomBytes(3);
  return `10.${b[0]}.${b[1]}.${b[2] || 1}`;
}

function tokenRequest(base: string, ip: string): Promise<Response> {
  // An unknown client: 401 invalid_client until the limit, then 429.
  return fetch(`${base}/oidc/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'nope', client_id: 'nobody', redirect_uri: 'http://127.0.0.1/cb' }).toString(),
  });
}

function authRequest(stack: TestStack, base: string, ip: string): Promise<Response> {
  const query = new URLSearchParams({
    client_id: stack.wallet.clientId,
    redirect_uri: stack.wallet.redirectUri,
    response_type: 'code',
    scope: 'openid',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  });
  return fetch(`${base}/oidc/auth?${query}`, { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
}

async function expect429(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(3600);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  const body = (await res.json()) as { error: string; retry_after: number; message: unknown };
  expect(body).toMatchObject({ error: 'too_many_requests', retry_after: retryAfter });
  expect(typeof body.message).toBe('string');
}

describe('rate limits (security case 14)', () => {
  let stack: TestStack;
  let second: ApiInstance;
  let admin: AdminInstance;

  beforeAll(async () => {
    stack = await startStack({
      env: {
        RATE_LIMIT_ENABLED: 'true',
        // An hour-long window: a window boundary falling inside one test is next to impossible.
        RATE_LIMIT_WINDOW_SECONDS: '3600',
        RATE_LIMIT_LOGIN_MAX: String(MAX),
        RATE_LIMIT_TOKEN_MAX: String(MAX),
        RATE_LIMIT_ADMIN_MAX: String(MAX),
        TRUST_PROXY: 'true',
      },
    });
    second = await startSecondInstance(stack);
    admin = await startAdmin(stack);
  });

  afterAll(async () => {
    await admin?.close();
    await second?.close();
    await stack?.close();
  });

  it('token endpoint: the fourth call from one address within the window is 429 with Retry-After', async () => {
    const ip = randomIp();
    for (let i = 0; i < MAX; i++) expect((await tokenRequest(stack.issuer, ip)).status).toBe(401);
    await expect429(await tokenRequest(stack.issuer, ip));
    // Another address is unaffected.
    expect((await tokenRequest(stack.issuer, randomIp())).status).toBe(401);
  });

  it('login: /oidc/auth and /interaction/* share one login budget per address', async () => {
    const ip = randomIp();
    expect((await authRequest(stack, stack.issuer, ip)).status).toBe(303);
    expect((await authRequest(stack, stack.issuer, ip)).status).toBe(303);
    const interaction = await fetch(`${stack.issuer}/interaction/unknown-uid`, { redirect: 'manual', headers: { 'x-forwarded-for': ip } });
    expect(interaction.status).not.toBe(429);
    await expect429(await authRequest(stack, stack.issuer, ip));
    await expect429(await fetch(`${stack.issuer}/interaction/callback?state=x&code=y`, { redirect: 'manual', headers: { 'x-forwarded-for': ip } }));
  });

  it('a path spelt differently (case, double or trailing slash) counts in the same bucket', async () => {
    const ip = randomIp();
    for (let i = 0; i < MAX; i++) expect((await tokenRequest(stack.issuer, ip)).status).toBe(401);
    for (const spelling of ['/OIDC/Token', '//oidc/token', '/oidc/token/', '/interaction/X']) {
      const res = await fetch(`${stack.issuer}${spelling}`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'x-forwarded-for': ip, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=refresh_token',
      });
      // /interaction/X is the login bucket (still fresh for this address): not limited.
      if (spelling.startsWith('/interaction')) expect(res.status).not.toBe(429);
      else await expect429(res);
    }
  });

  it('routes outside the limited groups are never limited (discovery, JWKS, userinfo, health)', async () => {
    const ip = randomIp();
    for (let i = 0; i < MAX + 2; i++) {
      for (const path of ['/.well-known/openid-configuration', '/oidc/jwks', '/health/live', '/userinfo']) {
        const res = await fetch(`${stack.issuer}${path}`, { headers: { 'x-forwarded-for': ip } });
        expect(res.status).not.toBe(429);
      }
    }
  });

  it('two instances share the limit: requests split across both are refused after the shared maximum', async () => {
    const ip = randomIp();
    const bases = [stack.issuer, second.url];
    const statuses: number[] = [];
    for (let i = 0; i < MAX + 3; i++) statuses.push((await tokenRequest(bases[i % 2], ip)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429]);
    // Both instances refuse, not just the one that saw the fourth request.
    await expect429(await tokenRequest(stack.issuer, ip));
    await expect429(await tokenRequest(second.url, ip));
    // Same for login.
    const loginIp = randomIp();
    const loginStatuses: number[] = [];
    for (let i = 0; i < MAX + 1; i++) loginStatuses.push((await authRequest(stack, bases[i % 2], loginIp)).status);
    expect(loginStatuses).toEqual([303, 303, 303, 429]);
  });

  it('concurrent requests on both instances never let more than the maximum through', async () => {
    const ip = randomIp();
    const bases = [stack.issuer, second.url];
    const statuses = await Promise.all(Array.from({ length: 12 }, (_, i) => tokenRequest(bases[i % 2], ip).then((r) => r.status)));
    expect(statuses.filter((s) => s !== 429)).toHaveLength(MAX);
    expect(statuses.filter((s) => s === 429)).toHaveLength(12 - MAX);
  });

  it('admin: the fourth call is 429 (failed authentications count too); health stays open', async () => {
    const ip = randomIp();
    const headers = { 'x-forwarded-for': ip };
    expect((await admin.request('GET', '/generic-resources', { headers })).status).toBe(200);
    expect((await admin.request('GET', '/generic-resources', { headers, token: 'wrong-admin-token' })).status).toBe(401);
    expect((await admin.request('GET', '/generic-resources', { headers, token: null })).status).toBe(401);
    const limited = await admin.request('GET', '/generic-resources', { headers });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(limited.body).toMatchObject({ error: 'too_many_requests' });
    // A password-guessing client stays locked out with any token.
    expect((await admin.request('GET', '/accounts', { headers, token: 'another-guess' })).status).toBe(429);
    for (let i = 0; i < MAX + 2; i++) {
      expect((await admin.request('GET', '/health/live', { headers, token: null })).status).toBe(200);
      expect((await admin.request('GET', '/health/ready', { headers, token: null })).status).toBe(200);
    }
  });

  it('the api and admin budgets of one address are separate buckets', async () => {
    const ip = randomIp();
    for (let i = 0; i < MAX; i++) await tokenRequest(stack.issuer, ip);
    await expect429(await tokenRequest(stack.issuer, ip));
    expect((await admin.request('GET', '/generic-resources', { headers: { 'x-forwarded-for': ip } })).status).toBe(200);
  });

  it('without TRUST_PROXY the client address is the socket: a forged X-Forwarded-For does not escape the limit', async () => {
    // 127.0.0.1's token bucket is used by nothing else in this file (every other test forges an
    // address); start it from zero in case an earlier run on this database left a count.
    await stack.dataSource.query(`DELETE FROM rate_limit_bucket WHERE key LIKE 'token:%127.0.0.1'`);
    const port = await freePort();
    const direct = await createApiApp({ ...stack.config, trustProxy: false } as typeof stack.config);
    await direct.listen(port, '127.0.0.1');
    try {
      const statuses: number[] = [];
      for (let i = 0; i < MAX + 1; i++) statuses.push((await tokenRequest(`http://127.0.0.1:${port}`, randomIp())).status);
      expect(statuses).toEqual([401, 401, 401, 429]);
    } finally {
      await direct.close();
    }
  });

  it('store: a new window starts from zero; Retry-After never exceeds the window; old windows are purged', async () => {
    const store = new RateLimitStore(stack.dataSource);
    const key = `test:${randomId('ip')}`;
    const first = await store.hit(key, 1);
    expect(first.count).toBe(1);
    expect(first.resetSeconds).toBeGreaterThan(0);
    expect(first.resetSeconds).toBeLessThanOrEqual(1);
    expect((await store.hit(key, 1)).count).toBe(2);
    await new Promise((r) => setTimeout(r, first.resetSeconds * 1000 + 50));
    expect((await store.hit(key, 1)).count).toBe(1);
    // Back-date a row two windows old: the purge removes it and keeps the current one.
    await stack.dataSource.query(`INSERT INTO rate_limit_bucket (key, window_start, count) VALUES ($1, now() - interval '1 hour', 5)`, [key]);
    expect(await store.purge(60)).toBeGreaterThanOrEqual(1);
    const rows: { window_start: Date }[] = await stack.dataSource.query(`SELECT window_start FROM rate_limit_bucket WHERE key = $1`, [key]);
    expect(rows.length).toBeGreaterThanOrEqual(1);
    for (const row of rows) expect(Date.now() - new Date(row.window_start).getTime()).toBeLessThan(10_000);
  });

  it('fails open: with the database unreachable the request goes through and a warning is logged', async () => {
    const dead = new DataSource(buildDataSourceOptions({ url: process.env.DATABASE_URL!, poolSize: 1 }));
    await dead.initialize();
    await dead.destroy(); // every query now fails
    const app = express();
    app.use(rateLimitMiddleware(new RateLimitStore(dead), { enabled: true, windowSeconds: 60, rules: [{ name: 'token', max: 1, matches: () => true }] }));
    app.get('/x', (_req, res) => res.json({ ok: true }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const warn = jest.spyOn(require('@nestjs/common').Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      for (let i = 0; i < 3; i++) expect((await fetch(`${base}/x`)).status).toBe(200);
      expect(warn).toHaveBeenCalledWith(expect.stringContaining('fail open'));
    } finally {
      warn.mockRestore();
      await new Promise((r) => server.close(r));
    }
  });
});
