import { startAdmin, type AdminInstance } from './support/admin';
import { rawRequest } from './support/http';
import { startStack, type TestStack } from './support/stack';
import { randomId, TEST_ADMIN_TOKEN } from './support/test-config';
import { loginAs } from './support/wallet';

/** A second configured token: ADMIN_TOKENS is a list so tokens can be rotated without downtime. */
const SECOND_ADMIN_TOKEN = 'second-admin-token-for-rotation-0042';
const UNAUTHORIZED = { error: 'unauthorized', message: 'a valid admin token is required' };

/** The same length as TEST_ADMIN_TOKEN, differing only in the last character. */
const sameLengthWrong = `${TEST_ADMIN_TOKEN.slice(0, -1)}${TEST_ADMIN_TOKEN.endsWith('0') ? '1' : '0'}`;

describe('admin authentication: static tokens, compared in constant time', () => {
  let stack: TestStack;
  let admin: AdminInstance;

  beforeAll(async () => {
    stack = await startStack({ env: { ADMIN_TOKENS: `${TEST_ADMIN_TOKEN},${SECOND_ADMIN_TOKEN}` } });
    admin = await startAdmin(stack);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  const authFailures = (requestId: string): Promise<{ actor_type: string; target_id: string; outcome: string; details: { reason: string } }[]> =>
    stack.dataSource.query(
      `SELECT actor_type, target_id, outcome, details FROM audit_event WHERE action = 'admin.auth_failed' AND request_id = $1`,
      [requestId],
    );

  /** Asserts the stable 401 and its audit event; returns the recorded refusal reason. */
  async function expectRefused(res: { status: number; body: unknown; headers: Headers | Record<string, unknown> }, requestId: string): Promise<string> {
    expect(res.status).toBe(401);
    const body = res.body as Record<string, unknown>;
    expect(body).toEqual({ ...UNAUTHORIZED, request_id: requestId });
    const failures = await authFailures(requestId);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ actor_type: 'anonymous', target_id: 'GET /clients', outcome: 'failure' });
    // The audit event names why, never what was presented.
    expect(JSON.stringify(failures[0])).not.toContain(TEST_ADMIN_TOKEN.slice(0, 12));
    return failures[0].details.reason;
  }

  const refusals: [string, Record<string, string>, string][] = [
    ['no Authorization header', {}, 'missing'],
    ['an empty bearer token', { authorization: 'Bearer ' }, 'malformed'],
    ['a bearer of spaces', { authorization: 'Bearer    ' }, 'malformed'],
    ['a wrong token', { authorization: 'Bearer not-the-admin-token' }, 'unknown_token'],
    ['a wrong token of the same length', { authorization: `Bearer ${sameLengthWrong}` }, 'unknown_token'],
    ['a prefix of the right token', { authorization: `Bearer ${TEST_ADMIN_TOKEN.slice(0, -1)}` }, 'unknown_token'],
    ['the right token with a character more', { authorization: `Bearer ${TEST_ADMIN_TOKEN}x` }, 'unknown_token'],
    ['the right token followed by another word', { authorization: `Bearer ${TEST_ADMIN_TOKEN} extra` }, 'malformed'],
    ['the right token under the Basic scheme', { authorization: `Basic ${Buffer.from(`${TEST_ADMIN_TOKEN}:`).toString('base64')}` }, 'malformed'],
    ['the bare right token without a scheme', { authorization: TEST_ADMIN_TOKEN }, 'malformed'],
  ];

  it.each(refusals)('%s gets 401 with the stable body and an admin.auth_failed event', async (_name, headers, reason) => {
    const requestId = randomId('auth');
    const res = await admin.request('GET', '/clients', { token: null, headers: { ...headers, 'x-request-id': requestId } });
    await expect(expectRefused(res, requestId)).resolves.toBe(reason);
  });

  it('a non-ASCII token (UTF-8 bytes on the wire) gets 401, not a 500', async () => {
    const requestId = randomId('auth');
    // Node's HTTP client sends a latin1 string byte for byte: these are the UTF-8 bytes of the token.
    const utf8 = Buffer.from(`Bearer tökén-${TEST_ADMIN_TOKEN.slice(7)}`, 'utf8').toString('latin1');
    const res = await rawRequest(admin.url, '/clients', { headers: { authorization: utf8, 'x-request-id': requestId } });
    await expect(expectRefused({ ...res, body: JSON.parse(res.body), headers: {} }, requestId)).resolves.toBe('malformed');
  });

  it('an RSA user access token is not an admin token', async () => {
    const session = await loginAs(stack, 'alice');
    const requestId = randomId('auth');
    const res = await admin.request('GET', '/clients', { token: session.tokens.access_token, headers: { 'x-request-id': requestId } });
    await expect(expectRefused(res, requestId)).resolves.toBe('unknown_token');
  });

  it('every configured token works (rotation), and each is a distinct actor in the audit trail', async () => {
    const first = await admin.request('GET', '/clients?limit=1');
    const second = await admin.request('GET', '/clients?limit=1', { token: SECOND_ADMIN_TOKEN });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);

    const created: string[] = [];
    for (const token of [TEST_ADMIN_TOKEN, SECOND_ADMIN_TOKEN]) {
      const res = await admin.request('POST', '/clients', {
        token,
        body: { redirect_uris: ['https://wallet.example/cb'], scope: 'openid', token_endpoint_auth_method: 'none' },
      });
      expect(res.status).toBe(201);
      created.push(res.body.client_id);
    }
    const actors: { actor_id: string }[] = await stack.dataSource.query(
      `SELECT actor_id FROM audit_event WHERE action = 'client.created' AND target_id = ANY($1) ORDER BY occurred_at`,
      [created],
    );
    expect(actors).toHaveLength(2);
    expect(actors[0].actor_id).toMatch(/^admin:[0-9a-f]{8}$/);
    expect(actors[1].actor_id).toMatch(/^admin:[0-9a-f]{8}$/);
    expect(actors[0].actor_id).not.toBe(actors[1].actor_id);
  });

  it('health is reachable without a token; Swagger lists the admin routes', async () => {
    expect((await admin.request('GET', '/health/live', { token: null })).status).toBe(200);
    const doc = await admin.request('GET', '/docs-json', { token: null });
    expect(doc.status).toBe(200);
    for (const path of ['/clients', '/clients/{id}', '/clients/{id}/secret', '/accounts', '/accounts/{id}', '/audit-events', '/audit-events/{id}']) {
      expect(Object.keys(doc.body.paths)).toContain(path);
      for (const operation of Object.values(doc.body.paths[path]) as { summary?: string }[]) expect(operation.summary).toBeTruthy();
    }
  });

  it('admin routes are not on the api port, and api routes are not on the admin port', async () => {
    for (const path of ['/clients', '/accounts', '/audit-events', '/token-health']) {
      const res = await fetch(`${stack.issuer}${path}`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
      expect(res.status).toBe(404);
    }
    for (const path of ['/userinfo', '/resources', '/.well-known/openid-configuration', '/oidc/jwks', '/interaction/callback']) {
      const res = await admin.request('GET', path);
      expect(res.status).toBe(404);
    }
    const token = await admin.request('POST', '/oidc/token', { body: { grant_type: 'client_credentials' } });
    expect(token.status).toBe(404);
  });
});
