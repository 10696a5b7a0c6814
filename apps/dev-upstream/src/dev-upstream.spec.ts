import {
  allowInsecureRequests,
  authorizationCodeGrant,
  buildAuthorizationUrl,
  calculatePKCECodeChallenge,
  ClientSecretBasic,
  ClientSecretPost,
  discovery,
  fetchUserInfo,
  randomPKCECodeVerifier,
  randomState,
  refreshTokenGrant,
  tokenIntrospection,
  tokenRevocation,
  type Configuration,
} from 'openid-client';

import { DEV_USERS, startDevUpstream, type DevUpstream } from './dev-upstream';

const CLIENT_ID = 'rsa-test';
const CLIENT_SECRET = 'rsa-test-secret';
const REDIRECT_URI = 'http://localhost:3000/interaction/callback';
const ALICE = DEV_USERS.find((u) => u.username === 'alice')!;

/** A minimal cookie jar: name + path keyed, path-prefix matching, deletion on expiry. */
class CookieJar {
  private readonly cookies = new Map<string, { name: string; value: string; path: string }>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = (key: string): string | undefined =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const path = attr('path') ?? '/';
      const expires = attr('expires');
      const expired = value === '' || (expires !== undefined && Date.parse(expires) <= Date.now());
      if (expired) this.cookies.delete(`${name};${path}`);
      else this.cookies.set(`${name};${path}`, { name, value, path });
    }
  }

  header(url: URL): string {
    return [...this.cookies.values()]
      .filter((c) => url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

interface Browser {
  jar: CookieJar;
  request(url: URL | string, init?: RequestInit): Promise<Response>;
}

function newBrowser(): Browser {
  const jar = new CookieJar();
  return {
    jar,
    async request(url, init = {}) {
      const target = new URL(url);
      const headers = new Headers(init.headers);
      const cookie = jar.header(target);
      if (cookie) headers.set('cookie', cookie);
      const response = await fetch(target, { ...init, headers, redirect: 'manual' });
      jar.store(response);
      return response;
    },
  };
}

describe('dev upstream', () => {
  let upstream: DevUpstream;
  let config: Configuration;

  beforeAll(async () => {
    upstream = await startDevUpstream({
      host: '127.0.0.1',
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI] }],
    });
    config = await discovery(new URL(upstream.issuer), CLIENT_ID, undefined, ClientSecretBasic(CLIENT_SECRET), {
      execute: [allowInsecureRequests],
    });
  });

  afterAll(async () => {
    await upstream?.close();
  });

  beforeEach(() => upstream.resetStats());

  /** Starts an authorization request; returns the browser, PKCE verifier, state and first response. */
  async function authorize(params: Record<string, string> = {}, browser = newBrowser()) {
    const codeVerifier = randomPKCECodeVerifier();
    const state = randomState();
    const url = buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email offline_access',
      prompt: 'consent',
      code_challenge: await calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      ...params,
    });
    const first = await browser.request(url);
    return { browser, codeVerifier, state, first };
  }

  /** Follows redirects until the client's redirect URI or a non-redirect response. */
  async function follow(browser: Browser, response: Response): Promise<{ response: Response; callback?: URL }> {
    let current = response;
    let base = new URL(upstream.issuer);
    for (let hops = 0; hops < 10; hops += 1) {
      const location = current.headers.get('location');
      if (current.status < 300 || current.status >= 400 || !location) return { response: current };
      const next = new URL(location, base);
      if (next.href.startsWith(REDIRECT_URI)) return { response: current, callback: next };
      base = next;
      current = await browser.request(next);
    }
    throw new Error('too many redirects');
  }

  function postForm(browser: Browser, path: string, form: Record<string, string>): Promise<Response> {
    return browser.request(new URL(path, upstream.issuer), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** The login form's action path as rendered in the page. */
  function formAction(html: string, suffix: 'login' | 'abort'): string {
    const match = new RegExp(`action="(/interaction/[^"]+/${suffix})"`).exec(html);
    if (!match) throw new Error(`no ${suffix} form in page`);
    return match[1];
  }

  /** Full login (fresh browser) as `username`; returns the token endpoint response. */
  async function login(username = 'alice', password = username, browser = newBrowser()) {
    const { codeVerifier, state, first } = await authorize({}, browser);
    const loginPage = await follow(browser, first);
    expect(loginPage.response.status).toBe(200);
    const html = await loginPage.response.text();
    const posted = await postForm(browser, formAction(html, 'login'), { username, password });
    const { callback } = await follow(browser, posted);
    if (!callback) throw new Error(`login did not reach the redirect URI (status ${posted.status})`);
    return authorizationCodeGrant(config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state });
  }

  async function expectInvalidGrant(promise: Promise<unknown>): Promise<void> {
    await expect(promise).rejects.toMatchObject({ error: 'invalid_grant' });
  }

  function api(path: string, accessToken?: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (accessToken) headers.set('authorization', `Bearer ${accessToken}`);
    return fetch(`${upstream.resourceBaseUrl}${path}`, { ...init, headers });
  }

  it('publishes discovery with the exact issuer, code-only response types and the needed endpoints', async () => {
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(upstream.issuer);
    expect(upstream.issuer).toBe(`http://127.0.0.1:${upstream.port}`);
    expect(upstream.resourceBaseUrl).toBe(`${upstream.issuer}/api`);
    expect(metadata.response_types_supported).toEqual(['code']);
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.scopes_supported).toEqual(
      expect.arrayContaining(['openid', 'profile', 'email', 'offline_access', 'accounts']),
    );
    expect(metadata.userinfo_endpoint).toBe(`${upstream.issuer}/me`);
    expect(metadata.revocation_endpoint).toBe(`${upstream.issuer}/token/revocation`);
    expect(metadata.introspection_endpoint).toBe(`${upstream.issuer}/token/introspection`);
  });

  it('logs alice in and issues an id token, access token and refresh token', async () => {
    const tokens = await login('alice');
    expect(tokens.claims()?.sub).toBe(ALICE.sub);
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(tokens.refresh_token).toEqual(expect.any(String));
    expect(tokens.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    expect(upstream.stats.authorizationCodeGrants).toBe(1);

    const userinfo = await fetchUserInfo(config, tokens.access_token, ALICE.sub);
    expect(userinfo).toMatchObject({ sub: ALICE.sub, email: 'alice@example.com', email_verified: true, name: ALICE.name });
    expect(upstream.stats.userinfoCalls).toBe(1);
  });

  it('serves only the token owner\'s accounts from the resource API', async () => {
    const { access_token } = await login('alice');

    const list = await api('/accounts', access_token);
    expect(list.status).toBe(200);
    const { items } = (await list.json()) as { items: { id: string }[] };
    expect(items.map((a) => a.id).sort()).toEqual(['alice-checking', 'alice-savings']);
    expect(items[0]).toEqual({
      id: expect.any(String),
      name: expect.any(String),
      currency: expect.any(String),
      balance: expect.any(Number),
    });

    expect((await api('/accounts/alice-checking', access_token)).status).toBe(200);
    const foreign = await api('/accounts/bob-checking', access_token);
    expect(foreign.status).toBe(404);
    expect(await foreign.json()).toEqual({ error: 'not_found' });
    expect((await api('/accounts/bob-checking/transactions', access_token)).status).toBe(404);

    const tx = await api('/accounts/alice-checking/transactions', access_token);
    expect(tx.status).toBe(200);
    const txBody = (await tx.json()) as { items: { id: string; accountId: string }[] };
    expect(txBody.items.length).toBeGreaterThan(0);
    expect(txBody.items.every((t) => t.accountId === 'alice-checking')).toBe(true);
    // deterministic
    expect(await (await api('/accounts/alice-checking/transactions', access_token)).json()).toEqual(txBody);

    const transfer = await api('/accounts/alice-checking/transfers', access_token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'bob-checking', amount: 12.5 }),
    });
    expect(transfer.status).toBe(201);
    expect(await transfer.json()).toMatchObject({ from: 'alice-checking', to: 'bob-checking', amount: 12.5 });

    const badTransfer = await api('/accounts/alice-checking/transfers', access_token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'bob-checking', amount: -1 }),
    });
    expect(badTransfer.status).toBe(400);
    expect(await badTransfer.json()).toMatchObject({ error: 'invalid_request' });

    const malformed = await api('/accounts/alice-checking/transfers', access_token, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{not json',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/json/);

    const unknown = await api('/nope', access_token);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ error: 'not_found' });

    expect(upstream.stats.resourceCalls).toBe(10);
  });

  it('rejects missing and invalid bearer tokens with a WWW-Authenticate challenge', async () => {
    const missing = await api('/accounts');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="dev-upstream"');
    expect(await missing.json()).toEqual({ error: 'invalid_token' });

    const invalid = await api('/accounts', 'not-a-real-token');
    expect(invalid.status).toBe(401);
    expect(invalid.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(await invalid.json()).toEqual({ error: 'invalid_token' });
  });

  it('rotates refresh tokens, and replaying a rotated one revokes the grant', async () => {
    const first = await login('alice');
    const refreshed = await refreshTokenGrant(config, first.refresh_token!);
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    expect(refreshed.access_token).not.toBe(first.access_token);
    expect(upstream.stats).toMatchObject({ refreshGrants: 1, refreshAttempts: 1 });

    await expectInvalidGrant(refreshTokenGrant(config, first.refresh_token!));
    expect(upstream.stats).toMatchObject({ refreshGrants: 1, refreshAttempts: 2 });

    // The reuse revoked the whole grant: the newest refresh token and access token are dead too.
    await expectInvalidGrant(refreshTokenGrant(config, refreshed.refresh_token!));
    expect((await api('/accounts', refreshed.access_token)).status).toBe(401);
    expect(upstream.stats).toMatchObject({ refreshGrants: 1, refreshAttempts: 3 });
  });

  it('re-renders the login form on a wrong password without issuing anything, then accepts the right one', async () => {
    const { browser, codeVerifier, state, first } = await authorize();
    const page = await follow(browser, first);
    const action = formAction(await page.response.text(), 'login');

    const wrong = await postForm(browser, action, { username: 'alice', password: 'bob' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    const html = await wrong.text();
    expect(html).toContain('Invalid username or password.');
    expect(html).toContain('name="password"');
    expect(html).not.toMatch(/at .+\.(js|ts):\d+/); // no stack trace

    const unknownUser = await postForm(browser, action, { username: 'mallory', password: 'mallory' });
    expect(unknownUser.status).toBe(401);
    expect(upstream.stats.authorizationCodeGrants).toBe(0);

    // The same interaction still completes with the right password.
    const right = await postForm(browser, action, { username: 'alice', password: 'alice' });
    const { callback } = await follow(browser, right);
    expect(callback?.searchParams.get('code')).toEqual(expect.any(String));
    const tokens = await authorizationCodeGrant(config, callback!, { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.claims()?.sub).toBe(ALICE.sub);
  });

  it('returns error=access_denied to the redirect URI when the user cancels', async () => {
    const { browser, state, first } = await authorize();
    const page = await follow(browser, first);
    const aborted = await browser.request(new URL(formAction(await page.response.text(), 'abort'), upstream.issuer), {
      method: 'POST',
    });
    const { callback } = await follow(browser, aborted);
    expect(callback?.searchParams.get('error')).toBe('access_denied');
    expect(callback?.searchParams.get('error_description')).toBe('End-User aborted interaction');
    expect(callback?.searchParams.get('state')).toBe(state);
    expect(callback?.searchParams.get('code')).toBeNull();
  });

  it('revokeGrantsOf(sub) makes the next refresh fail with invalid_grant and kills access tokens', async () => {
    const aliceBrowser = newBrowser();
    const alice = await login('alice', 'alice', aliceBrowser);
    const bob = await login('bob');

    expect(await upstream.revokeGrantsOf(ALICE.sub)).toBeGreaterThanOrEqual(1);
    await expectInvalidGrant(refreshTokenGrant(config, alice.refresh_token!));
    expect((await api('/accounts', alice.access_token)).status).toBe(401);

    // Other users are untouched.
    expect((await refreshTokenGrant(config, bob.refresh_token!)).refresh_token).toEqual(expect.any(String));

    // Alice's upstream session survives; re-authorizing only needs (automatic) consent, which
    // creates a new grant in place of the revoked one.
    const { codeVerifier, state, first } = await authorize({}, aliceBrowser);
    const { callback } = await follow(aliceBrowser, first);
    expect(callback).toBeDefined();
    const again = await authorizationCodeGrant(config, callback!, { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(again.claims()?.sub).toBe(ALICE.sub);
    expect((await refreshTokenGrant(config, again.refresh_token!)).refresh_token).toEqual(expect.any(String));
  });

  it('supports RFC 7009 revocation and introspection', async () => {
    const tokens = await login('carol');
    expect((await tokenIntrospection(config, tokens.access_token)).active).toBe(true);
    await tokenRevocation(config, tokens.refresh_token!);
    expect(upstream.stats.revocations).toBe(1);
    await expectInvalidGrant(refreshTokenGrant(config, tokens.refresh_token!));
    expect((await tokenIntrospection(config, tokens.access_token)).active).toBe(false);
  });

  it('accepts client_secret_post as well as client_secret_basic', async () => {
    const postConfig = await discovery(new URL(upstream.issuer), CLIENT_ID, undefined, ClientSecretPost(CLIENT_SECRET), {
      execute: [allowInsecureRequests],
    });
    const tokens = await login('alice');
    const refreshed = await refreshTokenGrant(postConfig, tokens.refresh_token!);
    expect(refreshed.refresh_token).toEqual(expect.any(String));
    expect(upstream.stats.refreshGrants).toBe(1);
  });

  it('requires PKCE', async () => {
    const browser = newBrowser();
    const url = buildAuthorizationUrl(config, { redirect_uri: REDIRECT_URI, scope: 'openid', state: 'xyz' });
    const { callback } = await follow(browser, await browser.request(url));
    expect(callback?.searchParams.get('error')).toBe('invalid_request');
  });

  it('drops offline_access (no refresh token) when prompt=consent is not sent', async () => {
    const { browser, codeVerifier, state, first } = await authorize({ prompt: 'login' });
    const page = await follow(browser, first);
    const posted = await postForm(browser, formAction(await page.response.text(), 'login'), {
      username: 'alice',
      password: 'alice',
    });
    const { callback } = await follow(browser, posted);
    const tokens = await authorizationCodeGrant(config, callback!, { pkceCodeVerifier: codeVerifier, expectedState: state });
    expect(tokens.refresh_token).toBeUndefined();
  });

  it('HTML-escapes what it echoes and uses its own cookie names', async () => {
    const { browser, first } = await authorize({ login_hint: '"><script>alert(1)</script>' });
    expect(first.headers.getSetCookie().some((c) => c.startsWith('_up_interaction='))).toBe(true);
    const page = await follow(browser, first);
    const html = await page.response.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&quot;&gt;&lt;script&gt;');
    expect(html).toContain('Dev upstream — development only');
  });

  it('keeps instances isolated, and close() is prompt and idempotent', async () => {
    const other = await startDevUpstream({
      host: '127.0.0.1',
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [REDIRECT_URI] }],
    });
    try {
      expect(other.issuer).not.toBe(upstream.issuer);
      const tokens = await login('alice');
      const foreign = await fetch(`${other.resourceBaseUrl}/accounts`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      expect(foreign.status).toBe(401);
      expect(other.stats.resourceCalls).toBe(1);
      expect(upstream.stats.resourceCalls).toBe(0);
    } finally {
      await other.close();
      await other.close();
    }
    await expect(fetch(`${other.issuer}/jwks`)).rejects.toThrow();
  });

  it('shows a friendly page for an unknown or expired interaction', async () => {
    const response = await fetch(`${upstream.issuer}/interaction/does-not-exist`);
    expect(response.status).toBe(400);
    const html = await response.text();
    expect(html).toContain('expired or is no longer valid');
    expect(html).not.toMatch(/at .+\.(js|ts):\d+/);
  });
});
