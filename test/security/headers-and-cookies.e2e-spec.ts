import { bearer } from '../support/http';
import { startAdmin } from '../support/admin';
import { startStack, TestStack } from '../support/stack';
import { TEST_ADMIN_TOKEN } from '../support/test-config';
import { loginAs } from '../support/wallet';
import { beginAuthorization } from '../support/login-steps';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';

type Check = { name: string; res: Response; noStore: boolean };

/** Case 16: security headers on every kind of response, `no-store` where it matters. Case 17: cookies. */
describe('Security 16–17: headers on every response, OP cookies', () => {
  let stack: TestStack;
  let admin: Awaited<ReturnType<typeof startAdmin>>;

  beforeAll(async () => {
    stack = await startStack();
    admin = await startAdmin(stack);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  it('nosniff, frame protection and no X-Powered-By on successes and errors of both apps; no-store on userinfo, token, resources and token health', async () => {
    const session = await loginAs(stack, 'alice', { scope: 'openid profile email offline_access fpx_rot delegations' });
    const at = session.tokens.access_token;
    const refreshed = () =>
      fetch(`${stack.issuer}/oidc/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${stack.wallet.clientId}:${stack.wallet.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: session.tokens.refresh_token! }).toString(),
      });
    const adminGet = (path: string, token = TEST_ADMIN_TOKEN) => fetch(`${admin.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const checks: Check[] = [
      { name: 'api /userinfo 200', res: await fetch(`${stack.issuer}/userinfo`, bearer(at)), noStore: true },
      { name: 'api /resources 200', res: await fetch(`${stack.issuer}/resources`, bearer(at)), noStore: true },
      { name: 'api /oidc/token 200', res: await refreshed(), noStore: true },
      { name: 'api /oidc/token 400', res: await fetch(`${stack.issuer}/oidc/token`, { method: 'POST' }), noStore: true },
      { name: 'api /userinfo 401', res: await fetch(`${stack.issuer}/userinfo`), noStore: true },
      { name: 'api 404', res: await fetch(`${stack.issuer}/no-such-route`), noStore: true },
      { name: 'api discovery', res: await fetch(`${stack.issuer}/.well-known/openid-configuration`), noStore: false },
      { name: 'api health', res: await fetch(`${stack.issuer}/health/live`), noStore: true },
      { name: 'admin /token-health 200', res: await adminGet('/token-health'), noStore: true },
      { name: 'admin /token-health/accounts 200', res: await adminGet('/token-health/accounts?limit=1'), noStore: true },
      { name: 'admin 401', res: await adminGet('/token-health', 'wrong'), noStore: true },
      { name: 'admin 404', res: await adminGet('/no-such-route'), noStore: true },
    ];
    for (const { name, res, noStore } of checks) {
      await res.arrayBuffer();
      const h = res.headers;
      expect({ name, nosniff: h.get('x-content-type-options') }).toEqual({ name, nosniff: 'nosniff' });
      expect({ name, poweredBy: h.get('x-powered-by') }).toEqual({ name, poweredBy: null });
      const frameProtected = h.get('x-frame-options') !== null || /frame-ancestors/.test(h.get('content-security-policy') ?? '');
      expect({ name, frameProtected }).toEqual({ name, frameProtected: true });
      if (noStore) expect({ name, cacheControl: h.get('cache-control') }).toEqual({ name, cacheControl: expect.stringContaining('no-store') });
    }
  });

  it('on a plain-http development issuer the OP cookies are HttpOnly and SameSite=Lax (and not Secure, which the browser would drop)', async () => {
    const pending = await beginAuthorization(stack);
    const first = await pending.browser.request(pending.url.href);
    const interaction = new URL(first.headers.get('location')!, stack.issuer).href;
    const cookies = first.headers.getSetCookie();
    const second = await pending.browser.request(interaction);
    cookies.push(...second.headers.getSetCookie());
    const ours = cookies.filter((c) => /^_rsa_/.test(c));
    expect(ours.map((c) => c.split('=')[0]).sort()).toEqual(expect.arrayContaining(['_rsa_interaction', '_rsa_resume', '_rsa_upstream_login']));
    for (const cookie of ours) {
      expect({ cookie, httpOnly: /;\s*httponly/i.test(cookie) }).toEqual({ cookie, httpOnly: true });
      expect({ cookie, sameSite: /;\s*samesite=lax/i.test(cookie) }).toEqual({ cookie, sameSite: true });
      expect({ cookie, secure: /;\s*secure/i.test(cookie) }).toEqual({ cookie, secure: false });
    }
  });

  it('with an https issuer behind a TLS-terminating proxy (TRUST_PROXY) every OP cookie is also Secure', async () => {
    const https = await startStack({ env: { TRUST_PROXY: 'true', RSA_ISSUER: 'https://rsa.example.test' } });
    try {
      const configuration = new oidc.Configuration(
        { issuer: 'https://rsa.example.test', authorization_endpoint: 'https://rsa.example.test/oidc/auth' },
        https.wallet.clientId,
      );
      const url = oidc.buildAuthorizationUrl(configuration, {
        redirect_uri: https.wallet.redirectUri,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
        state: 'x',
      });
      // What the proxy would send on: the public https origin in X-Forwarded-Proto/Host.
      const { port } = https.api.getHttpServer().address() as AddressInfo;
      const listen = new URL(`http://127.0.0.1:${port}`);
      const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'rsa.example.test' };
      const first = await fetch(`${listen.origin}${url.pathname}${url.search}`, { headers: forwarded, redirect: 'manual' });
      expect(first.status).toBe(303);
      const location = new URL(first.headers.get('location')!, 'https://rsa.example.test');
      const jar = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const second = await fetch(`${listen.origin}${location.pathname}`, { headers: { ...forwarded, cookie: jar }, redirect: 'manual' });
      const ours = [...first.headers.getSetCookie(), ...second.headers.getSetCookie()].filter((c) => /^_rsa_/.test(c));
      expect(ours.map((c) => c.split('=')[0])).toEqual(expect.arrayContaining(['_rsa_interaction', '_rsa_resume', '_rsa_upstream_login']));
      for (const cookie of ours) {
        expect({ cookie, secure: /;\s*secure/i.test(cookie), httpOnly: /;\s*httponly/i.test(cookie), sameSite: /;\s*samesite=lax/i.test(cookie) }).toEqual({
          cookie,
          secure: true,
          httpOnly: true,
          sameSite: true,
        });
      }
    } finally {
      await https.close();
    }
  });
});
