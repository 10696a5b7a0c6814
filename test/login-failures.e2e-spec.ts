import * as oidc from 'openid-client';
import { startDevUpstream, type DevUpstream, type DevUser } from '@rsa/dev-upstream';
import { TestBrowser } from './support/browser';
import { beginAuthorization, form, looksLikeStackTrace, PendingAuthorization, reachUpstreamLogin, walk } from './support/login-steps';
import { startStack, TestStack } from './support/stack';
import { randomId } from './support/test-config';

/**
 * Federated login failures: each ends either in an OAuth error redirect to the Wallet (with its
 * state) or in a plain HTML error page — never a stack trace, never an authorization code.
 */
describe('Federated login failures', () => {
  let stack: TestStack;
  /** A second stack whose upstream is stopped before any login (discovery never succeeded). */
  let coldStack: TestStack;
  let restartedUpstream: DevUpstream | undefined;

  const callbackUrl = () => `${stack.issuer}/interaction/callback`;

  function newUser(target: TestStack): DevUser {
    const username = randomId('user');
    const user: DevUser = {
      sub: randomId('sub'),
      username,
      password: username,
      name: `User ${username}`,
      given_name: 'User',
      family_name: username,
      email: `${username}@example.test`,
      email_verified: true,
    };
    target.upstream.users.push(user);
    return user;
  }

  /** The Wallet's view of an error redirect: openid-client refuses it with the OAuth error. */
  async function expectErrorRedirect(target: TestStack, pending: PendingAuthorization, location: URL, error: string): Promise<void> {
    expect(location.origin + location.pathname).toBe(target.wallet.redirectUri);
    expect(location.searchParams.get('error')).toBe(error);
    expect(location.searchParams.get('state')).toBe(pending.state);
    expect(location.searchParams.get('iss')).toBe(target.issuer);
    expect(location.searchParams.has('code')).toBe(false);
    expect(location.searchParams.get('error_description') ?? '').not.toMatch(/\bat \S+ \(|\.ts:\d+/);
    await expect(
      oidc.authorizationCodeGrant(pending.configuration, location, { pkceCodeVerifier: pending.codeVerifier, expectedState: pending.state }),
    ).rejects.toMatchObject({ error });
  }

  function expectHtmlErrorPage(res: { status: number; headers: Headers }, body: string, status: number, error: string): void {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(body).toContain(`<code>${error}</code>`);
    expect(looksLikeStackTrace(body)).toBe(false);
  }

  async function accountExists(target: TestStack, sub: string): Promise<boolean> {
    const rows: unknown[] = await target.dataSource.query('SELECT 1 FROM account WHERE sub = $1', [sub]);
    return rows.length > 0;
  }

  beforeAll(async () => {
    [stack, coldStack] = await Promise.all([startStack(), startStack()]);
  });

  afterAll(async () => {
    await restartedUpstream?.close();
    await coldStack?.close();
    await stack?.close();
  });

  it('the user cancels at the upstream: the Wallet receives access_denied with its state', async () => {
    const pending = await beginAuthorization(stack);
    const page = await reachUpstreamLogin(stack, pending);
    const result = await walk(pending.browser, page.abortAction, stack.wallet.redirectUri, { method: 'POST' });
    expect(result.kind).toBe('redirect');
    if (result.kind !== 'redirect') return;
    await expectErrorRedirect(stack, pending, result.location, 'access_denied');
  });

  it('a wrong password at the upstream shows the form again and issues no code; the right one then succeeds', async () => {
    const user = newUser(stack);
    const codeGrantsBefore = stack.upstream.stats.authorizationCodeGrants;
    const pending = await beginAuthorization(stack);
    const page = await reachUpstreamLogin(stack, pending);

    const wrong = await walk(pending.browser, page.loginAction, stack.wallet.redirectUri, form({ username: user.username, password: 'wrong' }));
    expect(wrong.kind).toBe('page');
    if (wrong.kind !== 'page') return;
    expect(wrong.status).toBe(401);
    expect(wrong.body).toContain('Invalid username or password.');
    expect(wrong.body).toContain(page.loginAction.slice(new URL(page.loginAction).origin.length));
    expect(looksLikeStackTrace(wrong.body)).toBe(false);
    expect(stack.upstream.stats.authorizationCodeGrants).toBe(codeGrantsBefore);
    expect(await accountExists(stack, user.sub)).toBe(false);

    const right = await walk(pending.browser, page.loginAction, stack.wallet.redirectUri, form({ username: user.username, password: user.password }));
    expect(right.kind).toBe('redirect');
    if (right.kind !== 'redirect') return;
    expect(right.location.searchParams.get('state')).toBe(pending.state);
    const tokens = await oidc.authorizationCodeGrant(pending.configuration, right.location, {
      pkceCodeVerifier: pending.codeVerifier,
      expectedState: pending.state,
    });
    expect(tokens.access_token).toEqual(expect.any(String));
    expect(await accountExists(stack, user.sub)).toBe(true);
  });

  it('an upstream server_error is relayed to the Wallet as temporarily_unavailable, with its state', async () => {
    const pending = await beginAuthorization(stack);
    // Stop at the upstream's authorization endpoint to learn the state the RSA sent there.
    const toUpstream = await walk(pending.browser, pending.url.href, `${stack.upstream.issuer}/auth`);
    expect(toUpstream.kind).toBe('redirect');
    if (toUpstream.kind !== 'redirect') return;
    const upstreamState = toUpstream.location.searchParams.get('state')!;
    const callback = new URL(callbackUrl());
    callback.search = new URLSearchParams({ error: 'server_error', state: upstreamState, iss: stack.upstream.issuer }).toString();
    const result = await walk(pending.browser, callback.href, stack.wallet.redirectUri);
    expect(result.kind).toBe('redirect');
    if (result.kind !== 'redirect') return;
    await expectErrorRedirect(stack, pending, result.location, 'temporarily_unavailable');
  });

  describe('a callback that does not belong to the login in progress: 400 HTML page', () => {
    it('a forged upstream error whose state does not match is not relayed to the Wallet', async () => {
      const pending = await beginAuthorization(stack);
      await reachUpstreamLogin(stack, pending);
      const forged = `${callbackUrl()}?error=access_denied&error_description=${encodeURIComponent('call +1 555 0100')}&state=forged`;
      const result = await walk(pending.browser, forged, stack.wallet.redirectUri);
      expect(result.kind).toBe('page');
      if (result.kind !== 'page') return;
      expectHtmlErrorPage(result, result.body, 400, 'invalid_request');
      expect(result.body).not.toContain('555 0100');
    });

    it('the state does not match the sealed login cookie; the login in progress survives it', async () => {
      const pending = await beginAuthorization(stack);
      const page = await reachUpstreamLogin(stack, pending); // sets the sealed cookie in this browser
      const res = await pending.browser.request(`${callbackUrl()}?code=x&state=wrong`);
      const body = await res.text();
      expectHtmlErrorPage(res, body, 400, 'invalid_request');
      // A forged navigation must not cancel the victim's sign-in: the sealed cookie is kept...
      expect(res.headers.getSetCookie().some((c) => /^_rsa_upstream_login=/.test(c))).toBe(false);
      // ...and the real login still completes.
      const user = stack.upstream.users[0];
      const done = await walk(pending.browser, page.loginAction, stack.wallet.redirectUri, form({ username: user.username, password: user.password }));
      expect(done.kind).toBe('redirect');
      if (done.kind === 'redirect') expect(done.location.searchParams.get('code')).toBeTruthy();
    });

    it('no login cookie at all', async () => {
      const res = await fetch(`${callbackUrl()}?code=x&state=y`);
      expectHtmlErrorPage(res, await res.text(), 400, 'invalid_request');
    });

    it.each([
      ['garbage', 'not-a-sealed-state'],
      ['invalid percent-encoding', '%E0%A4%A'],
      ['an empty value', ''],
    ])('a login cookie that was tampered with (%s)', async (_name, value) => {
      for (const query of ['code=x&state=y', 'error=access_denied&state=y']) {
        const res = await fetch(`${callbackUrl()}?${query}`, { headers: { cookie: `_rsa_upstream_login=${value}` } });
        expectHtmlErrorPage(res, await res.text(), 400, 'invalid_request');
      }
    });

    it('an upstream error response without a login cookie', async () => {
      const res = await fetch(`${callbackUrl()}?error=access_denied&state=y`);
      expectHtmlErrorPage(res, await res.text(), 400, 'invalid_request');
    });

    it('an interaction URL that is unknown or not bound to this browser', async () => {
      const pending = await beginAuthorization(stack);
      const page = await reachUpstreamLogin(stack, pending); // a real interaction exists for this browser
      expect(page.status).toBe(200);
      for (const [url, browser] of [
        [`${stack.issuer}/interaction/${randomId('uid')}`, pending.browser],
        [`${stack.issuer}/interaction/${randomId('uid')}`, new TestBrowser()],
      ] as const) {
        const res = await browser.request(url);
        expectHtmlErrorPage(res, await res.text(), 400, 'invalid_request');
      }
    });

    it('no query at all', async () => {
      const res = await fetch(callbackUrl());
      expectHtmlErrorPage(res, await res.text(), 400, 'invalid_request');
    });
  });

  describe('the upstream is down', () => {
    it('before any login (discovery fails): the Wallet receives temporarily_unavailable; logins work again once it is back', async () => {
      const { port } = coldStack.upstream;
      await coldStack.upstream.close();
      const pending = await beginAuthorization(coldStack);
      const result = await walk(pending.browser, pending.url.href, coldStack.wallet.redirectUri);
      expect(result.kind).toBe('redirect');
      if (result.kind !== 'redirect') return;
      await expectErrorRedirect(coldStack, pending, result.location, 'temporarily_unavailable');

      // The failed discovery is not cached: the same RSA recovers when the upstream answers again.
      restartedUpstream = await startDevUpstream({
        port,
        host: '127.0.0.1',
        clients: [
          {
            client_id: coldStack.config.upstream.clientId,
            client_secret: coldStack.config.upstream.clientSecret,
            redirect_uris: [`${coldStack.issuer}/interaction/callback`],
          },
        ],
      });
      const retry = await beginAuthorization(coldStack, { browser: new TestBrowser() });
      const code = await retry.browser.authorize(retry.url.href, coldStack.wallet.redirectUri, { username: 'bob' });
      expect(code.searchParams.get('code')).toEqual(expect.any(String));
      expect(code.searchParams.get('state')).toBe(retry.state);
    });

    // Runs last for `stack`: it stops that stack's upstream.
    it('between the upstream login and the callback (token exchange fails): the Wallet receives temporarily_unavailable', async () => {
      const user = newUser(stack);
      const pending = await beginAuthorization(stack);
      const page = await reachUpstreamLogin(stack, pending);
      const toCallback = await walk(pending.browser, page.loginAction, callbackUrl(), form({ username: user.username, password: user.password }));
      expect(toCallback.kind).toBe('redirect');
      if (toCallback.kind !== 'redirect') return;
      expect(toCallback.location.searchParams.get('code')).toEqual(expect.any(String));

      await stack.upstream.close();
      const result = await walk(pending.browser, toCallback.location.href, stack.wallet.redirectUri);
      expect(result.kind).toBe('redirect');
      if (result.kind !== 'redirect') return;
      await expectErrorRedirect(stack, pending, result.location, 'temporarily_unavailable');
      expect(await accountExists(stack, user.sub)).toBe(false);
    });
  });
});
