import * as oidc from 'openid-client';
import { startAdmin, type AdminInstance } from './support/admin';
import { json } from './support/http';
import { startStack, WALLET_REDIRECT_URI, type TestStack, type TestWallet } from './support/stack';
import { randomId } from './support/test-config';
import { loginAs } from './support/wallet';

const WALLET_SCOPE = 'openid profile email offline_access fpx_rot';

/** The field a 400 names, from either error shape (the validation pipe's `fields`, or a lib's `details.field`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function failingFields(body: any): string[] {
  if (Array.isArray(body?.fields)) return body.fields.map((f: { field: string }) => f.field);
  return body?.details?.field ? [body.details.field] : [];
}

/** The OAuth error of a failed openid-client call: from the JSON body, or from a WWW-Authenticate challenge (a 401 to Basic auth). */
async function oauthError(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (error) {
    const e = error as { error?: string; cause?: { parameters?: { error?: string } }[] };
    return e.error ?? e.cause?.[0]?.parameters?.error;
  }
  throw new Error('expected the call to fail');
}

describe('admin /clients: OAuth clients of the RSA', () => {
  let stack: TestStack;
  let admin: AdminInstance;

  beforeAll(async () => {
    stack = await startStack();
    admin = await startAdmin(stack);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  /** The stack as seen by another Wallet (the test helpers log in with `stack.wallet`). */
  const asWallet = (wallet: TestWallet): TestStack => ({ ...stack, wallet });

  async function createWallet(overrides: Record<string, unknown> = {}) {
    const res = await admin.request('POST', '/clients', {
      body: { client_name: randomId('Wallet'), redirect_uris: [WALLET_REDIRECT_URI], scope: WALLET_SCOPE, ...overrides },
    });
    expect(res.status).toBe(201);
    return res.body as { client_id: string; client_secret: string; client_name: string } & Record<string, unknown>;
  }

  const auditFor = (clientId: string): Promise<{ action: string; actor_type: string; actor_id: string; details: Record<string, unknown> }[]> =>
    stack.dataSource.query(
      `SELECT action, actor_type, actor_id, details FROM audit_event WHERE target_type = 'oauth_client' AND target_id = $1 ORDER BY occurred_at, action`,
      [clientId],
    );

  it('registers a Wallet from scratch: the generated secret is shown once, works at the token endpoint, and is stored only encrypted', async () => {
    const res = await admin.request('POST', '/clients', {
      body: { client_name: 'Production Wallet', redirect_uris: [WALLET_REDIRECT_URI], scope: WALLET_SCOPE },
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const created = res.body;
    expect(created).toMatchObject({
      client_name: 'Production Wallet',
      client_type: 'confidential',
      redirect_uris: [WALLET_REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      scope: WALLET_SCOPE,
      token_endpoint_auth_method: 'client_secret_basic',
      has_secret: true,
    });
    expect(created.client_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // Never again: not by id, not in the list.
    const fetched = await admin.request('GET', `/clients/${created.client_id}`);
    expect(fetched.status).toBe(200);
    expect(fetched.body).not.toHaveProperty('client_secret');
    expect(JSON.stringify(fetched.body)).not.toContain(created.client_secret);
    expect(fetched.body).toEqual({ ...created, client_secret: undefined, created_at: expect.any(String), updated_at: expect.any(String) });
    let cursor: string | null = null;
    let listed = false;
    do {
      const page = await admin.request('GET', `/clients?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(JSON.stringify(page.body)).not.toContain(created.client_secret);
      listed ||= page.body.items.some((c: { client_id: string }) => c.client_id === created.client_id);
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(listed).toBe(true);

    // In the database: encrypted, never in clear (row, metadata, audit trail).
    const [row] = await stack.dataSource.query(`SELECT client_secret_enc, metadata::text AS metadata FROM oauth_client WHERE client_id = $1`, [
      created.client_id,
    ]);
    expect(row.client_secret_enc).toMatch(/^v1\.[^.]+\./);
    expect(row.client_secret_enc).not.toContain(created.client_secret);
    expect(row.metadata).not.toContain(created.client_secret);
    const audit = await auditFor(created.client_id);
    expect(audit).toEqual([expect.objectContaining({ action: 'client.created', actor_type: 'admin', actor_id: expect.stringMatching(/^admin:[0-9a-f]{8}$/) })]);
    expect(JSON.stringify(audit)).not.toContain(created.client_secret);

    // The Wallet flow with the new client, end to end.
    const wallet = { clientId: created.client_id, clientSecret: created.client_secret, redirectUri: WALLET_REDIRECT_URI };
    const session = await loginAs(asWallet(wallet), 'alice');
    expect(session.tokens.refresh_token).toBeDefined();
    const userinfo = await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${session.tokens.access_token}` } });
    expect(userinfo.status).toBe(200);
    expect((await json(userinfo)).email).toBe(stack.upstream.users.find((u) => u.username === 'alice')!.email);
  });

  it('rotating the secret: the new one works at once, the old one is refused, tokens already issued keep working', async () => {
    const created = await createWallet();
    const session = await loginAs(asWallet({ clientId: created.client_id, clientSecret: created.client_secret, redirectUri: WALLET_REDIRECT_URI }), 'bob');

    const rotated = await admin.request('POST', `/clients/${created.client_id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.headers.get('cache-control')).toBe('no-store');
    expect(rotated.body).toEqual({ client_id: created.client_id, client_secret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(rotated.body.client_secret).not.toBe(created.client_secret);

    const withSecret = (secret: string) =>
      oidc.discovery(new URL(stack.issuer), created.client_id, undefined, oidc.ClientSecretBasic(secret), { execute: [oidc.allowInsecureRequests] });
    const old = await withSecret(created.client_secret);
    expect(await oauthError(oidc.refreshTokenGrant(old, session.tokens.refresh_token!))).toBe('invalid_client');
    const renewed = await oidc.refreshTokenGrant(await withSecret(rotated.body.client_secret), session.tokens.refresh_token!);
    expect(renewed.access_token).toBeDefined();
    const userinfo = await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${session.tokens.access_token}` } });
    expect(userinfo.status).toBe(200);

    const fetched = await admin.request('GET', `/clients/${created.client_id}`);
    expect(JSON.stringify(fetched.body)).not.toContain(rotated.body.client_secret);
    const audit = await auditFor(created.client_id);
    expect(audit.map((a) => a.action)).toEqual(['client.created', 'client.secret_rotated']);
    expect(JSON.stringify(audit)).not.toContain(rotated.body.client_secret);
    const [row] = await stack.dataSource.query(`SELECT client_secret_enc FROM oauth_client WHERE client_id = $1`, [created.client_id]);
    expect(row.client_secret_enc).not.toContain(rotated.body.client_secret);
  });

  it("deleting a client revokes what was issued to it: its access token gets 401 at /userinfo, its refresh token is refused", async () => {
    const created = await createWallet();
    const wallet = { clientId: created.client_id, clientSecret: created.client_secret, redirectUri: WALLET_REDIRECT_URI };
    const session = await loginAs(asWallet(wallet), 'alice');
    const bearer = { headers: { authorization: `Bearer ${session.tokens.access_token}` } };
    expect((await fetch(`${stack.issuer}/userinfo`, bearer)).status).toBe(200);
    const [{ n: before }] = await stack.dataSource.query(`SELECT count(*)::int AS n FROM oidc_payload WHERE payload->>'clientId' = $1`, [created.client_id]);
    expect(before).toBeGreaterThan(0);

    const deleted = await admin.request('DELETE', `/clients/${created.client_id}`);
    expect(deleted.status).toBe(204);

    const after = await fetch(`${stack.issuer}/userinfo`, bearer);
    expect(after.status).toBe(401);
    expect((await json(after)).error).toBe('invalid_token');
    const [{ n: left }] = await stack.dataSource.query(`SELECT count(*)::int AS n FROM oidc_payload WHERE payload->>'clientId' = $1`, [created.client_id]);
    expect(left).toBe(0);
    expect(await oauthError(oidc.refreshTokenGrant(session.configuration, session.tokens.refresh_token!))).toBe('invalid_client');
    expect((await admin.request('GET', `/clients/${created.client_id}`)).status).toBe(404);
    expect((await admin.request('DELETE', `/clients/${created.client_id}`)).status).toBe(404);

    const audit = await auditFor(created.client_id);
    expect(audit.map((a) => a.action)).toEqual(['client.created', 'client.deleted']);
    expect(audit[1].details).toMatchObject({ revoked: expect.objectContaining({ AccessToken: 1, Grant: 1, RefreshToken: 1 }) });
  });

  const invalid: [string, Record<string, unknown>, string][] = [
    ['no redirect_uris', { redirect_uris: undefined }, 'redirect_uris'],
    ['an empty redirect_uris', { redirect_uris: [] }, 'redirect_uris'],
    ['a relative redirect URI', { redirect_uris: ['/callback'] }, 'redirect_uris'],
    ['plain http to a public host', { redirect_uris: ['http://wallet.example/callback'] }, 'redirect_uris'],
    ['a redirect URI with a fragment', { redirect_uris: ['https://wallet.example/callback#x'] }, 'redirect_uris'],
    ['a custom-scheme redirect URI', { redirect_uris: ['wallet://callback'] }, 'redirect_uris'],
    ['credentials in a redirect URI', { redirect_uris: ['https://user:pw@wallet.example/callback'] }, 'redirect_uris'],
    ['a plain-http post-logout URI', { post_logout_redirect_uris: ['http://wallet.example/'] }, 'post_logout_redirect_uris'],
    ['an unsupported grant type', { grant_types: ['client_credentials'] }, 'grant_types'],
    ['refresh_token without authorization_code', { grant_types: ['refresh_token'] }, 'grant_types'],
    ['a scope the RSA does not issue', { scope: 'openid admin' }, 'scope'],
    ['an empty scope', { scope: '' }, 'scope'],
    ['no scope', { scope: undefined }, 'scope'],
    ['an unsupported auth method', { token_endpoint_auth_method: 'private_key_jwt' }, 'token_endpoint_auth_method'],
    ['a client_id with a colon', { client_id: 'wallet:prod' }, 'client_id'],
    ['an operator-chosen secret', { client_secret: 'my-own-secret' }, 'client_secret'],
    ['an unknown property', { jwks_uri: 'https://wallet.example/jwks' }, 'jwks_uri'],
  ];

  it.each(invalid)('refuses %s with a 400 naming the field, and stores nothing', async (_name, overrides, field) => {
    const name = randomId('Invalid');
    const res = await admin.request('POST', '/clients', {
      body: { client_name: name, redirect_uris: [WALLET_REDIRECT_URI], scope: WALLET_SCOPE, ...overrides },
    });
    expect(res.status).toBe(400);
    expect(failingFields(res.body)).toContain(field);
    const [{ n }] = await stack.dataSource.query(`SELECT count(*)::int AS n FROM oauth_client WHERE name = $1`, [name]);
    expect(n).toBe(0);
  });

  it('accepts https anywhere and plain http only on the loopback interface (development Wallets)', async () => {
    const uris = ['https://wallet.example/callback', 'http://localhost:8080/cb', 'http://127.0.0.1/cb', 'http://[::1]:9000/cb'];
    const created = await createWallet({ redirect_uris: uris, post_logout_redirect_uris: ['https://wallet.example/'] });
    expect(created.redirect_uris).toEqual(uris);
    expect(created.post_logout_redirect_uris).toEqual(['https://wallet.example/']);
  });

  it('a chosen client_id that exists is a 409; unknown ids are 404 on every route', async () => {
    const clientId = randomId('wallet-dup');
    expect((await createWallet({ client_id: clientId })).client_id).toBe(clientId);
    const again = await admin.request('POST', '/clients', { body: { client_id: clientId, redirect_uris: [WALLET_REDIRECT_URI], scope: 'openid' } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'CONFLICT', details: { field: 'client_id' } });

    const unknown = randomId('no-such-client');
    expect((await admin.request('GET', `/clients/${unknown}`)).status).toBe(404);
    expect((await admin.request('PATCH', `/clients/${unknown}`, { body: { client_name: 'x' } })).status).toBe(404);
    expect((await admin.request('POST', `/clients/${unknown}/secret`)).status).toBe(404);
    expect((await admin.request('DELETE', `/clients/${unknown}`)).status).toBe(404);
  });

  it('updates metadata (only the fields given), keeps the secret, refuses a switch between confidential and public', async () => {
    const created = await createWallet();
    const patched = await admin.request('PATCH', `/clients/${created.client_id}`, {
      body: { client_name: 'Renamed Wallet', redirect_uris: [WALLET_REDIRECT_URI, 'https://wallet.example/cb'], scope: 'openid email' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      client_name: 'Renamed Wallet',
      redirect_uris: [WALLET_REDIRECT_URI, 'https://wallet.example/cb'],
      scope: 'openid email',
      grant_types: ['authorization_code', 'refresh_token'],
      has_secret: true,
    });
    expect(patched.body).not.toHaveProperty('client_secret');
    expect((await admin.request('GET', `/clients/${created.client_id}`)).body).toEqual(patched.body);

    const toPublic = await admin.request('PATCH', `/clients/${created.client_id}`, { body: { token_endpoint_auth_method: 'none' } });
    expect(toPublic.status).toBe(400);
    expect(failingFields(toPublic.body)).toEqual(['token_endpoint_auth_method']);
    const badScope = await admin.request('PATCH', `/clients/${created.client_id}`, { body: { scope: 'openid root' } });
    expect(badScope.status).toBe(400);
    expect(failingFields(badScope.body)).toEqual(['scope']);
    const badUri = await admin.request('PATCH', `/clients/${created.client_id}`, { body: { redirect_uris: ['http://wallet.example/cb'] } });
    expect(failingFields(badUri.body)).toEqual(['redirect_uris']);
    const clientIdChange = await admin.request('PATCH', `/clients/${created.client_id}`, { body: { client_id: 'other' } });
    expect(failingFields(clientIdChange.body)).toEqual(['client_id']);

    const post = await admin.request('PATCH', `/clients/${created.client_id}`, { body: { token_endpoint_auth_method: 'client_secret_post', client_name: null } });
    expect(post.status).toBe(200);
    expect(post.body).toMatchObject({ token_endpoint_auth_method: 'client_secret_post', client_name: null, scope: 'openid email' });

    // The secret survived both updates: client_secret_post authentication with it works.
    const configuration = await oidc.discovery(new URL(stack.issuer), created.client_id, undefined, oidc.ClientSecretPost(created.client_secret), {
      execute: [oidc.allowInsecureRequests],
    });
    const introspection = await oidc.tokenIntrospection(configuration, 'not-a-token');
    expect(introspection.active).toBe(false);

    const audit = await auditFor(created.client_id);
    expect(audit.map((a) => a.action)).toEqual(['client.created', 'client.updated', 'client.updated']);
    expect(audit[1].details).toMatchObject({ changed: ['client_name', 'redirect_uris', 'scope'], scope: 'openid email' });
    expect(audit[2].details).toMatchObject({ changed: expect.arrayContaining(['client_name', 'token_endpoint_auth_method']) });
  });

  it('a public client (PKCE only) gets no secret, and has none to rotate', async () => {
    const res = await admin.request('POST', '/clients', {
      body: { redirect_uris: ['http://localhost:3000/cb'], scope: 'openid', token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ client_type: 'public', has_secret: false, token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] });
    expect(res.body).not.toHaveProperty('client_secret');
    const rotate = await admin.request('POST', `/clients/${res.body.client_id}/secret`);
    expect(rotate.status).toBe(409);
  });

  it('lists by client_id with an opaque cursor; limit is 1–100', async () => {
    const prefix = randomId('page');
    for (const n of [1, 2, 3]) await createWallet({ client_id: `${prefix}-${n}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await admin.request('GET', `/clients?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.body.items.length).toBeLessThanOrEqual(100);
      seen.push(...page.body.items.map((c: { client_id: string }) => c.client_id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 50);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort());
    expect(seen.filter((id) => id.startsWith(prefix))).toEqual([`${prefix}-1`, `${prefix}-2`, `${prefix}-3`]);

    const first = await admin.request('GET', '/clients?limit=2');
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await admin.request('GET', `/clients?limit=2&cursor=${encodeURIComponent(first.body.next_cursor)}`);
    expect(second.body.items[0].client_id > first.body.items[1].client_id).toBe(true);

    for (const query of ['limit=0', 'limit=101', 'limit=abc']) {
      const res = await admin.request('GET', `/clients?${query}`);
      expect(res.status).toBe(400);
      expect(failingFields(res.body)).toEqual(['limit']);
    }
    const badCursor = await admin.request('GET', '/clients?cursor=not-a-cursor');
    expect(badCursor.status).toBe(400);
  });

  it('Idempotency-Key: parallel identical creates make one client and all get the same secret, which the key store keeps only encrypted', async () => {
    const key = randomId('idem');
    const name = randomId('Idempotent Wallet');
    const body = { client_name: name, redirect_uris: [WALLET_REDIRECT_URI], scope: 'openid' };
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => admin.request('POST', '/clients', { body, headers: { 'idempotency-key': key } })),
    );
    for (const res of responses) expect(res.status).toBe(201);
    const ids = new Set(responses.map((r) => r.body.client_id));
    const secrets = new Set(responses.map((r) => r.body.client_secret));
    expect(ids.size).toBe(1);
    expect(secrets.size).toBe(1);
    const [secret] = secrets;
    const [{ n }] = await stack.dataSource.query(`SELECT count(*)::int AS n FROM oauth_client WHERE name = $1`, [name]);
    expect(n).toBe(1);
    const stored: { body: string }[] = await stack.dataSource.query(`SELECT response_body::text AS body FROM idempotency_key WHERE key = $1`, [key]);
    expect(stored).toHaveLength(1);
    expect(stored[0].body).not.toContain(secret);
    expect(stored[0].body).not.toContain(name);

    const other = await admin.request('POST', '/clients', { body: { ...body, scope: 'openid email' }, headers: { 'idempotency-key': key } });
    expect(other.status).toBe(422);
  });
});
