import * as oidc from 'openid-client';
import { ClientRegistry } from '@rsa/auth';
import { BARE_CHALLENGE, expectBearerError, expireAccessToken, tokenDigest, type BearerErrorCode } from '../support/bearer-assertions';
import { addRmUpstreamUser, RM_SCOPE } from '../support/resource-users';
import { startStack, WALLET_REDIRECT_URI, type TestStack } from '../support/stack';
import { randomId } from '../support/test-config';
import { loginAs } from '../support/wallet';

/**
 * Case 12 (docs/security.md): the RFC 6750 matrix on the three bearer-protected entry points of the
 * Resource Management API. One table; every row runs on every endpoint.
 *
 * "Wrong audience" for the RSA's opaque tokens: the RSA is the only resource server of its OP, so
 * every token its OP issues to an end-user for one of its clients is meant for it. Two tokens are
 * not: (a) a resource-bound token — one carrying an `aud` (RFC 8707 resource indicator). The OP does
 * not offer resource indicators for other servers (no getResourceServerInfo), so such a token is
 * made by adding `aud` to a real token's stored payload, as a token minted for another resource
 * would look; (b) a token of a client the RSA no longer knows (deleted client). Both: 401 invalid_token.
 *
 * Further rows on /userinfo only (malformed headers, form-body tokens, ID/refresh token presented,
 * deleted account) are in test/bearer-auth.e2e-spec.ts and not repeated here.
 */

type Expect =
  | { status: 200 }
  | { status: 401; error: null }
  | { status: 400 | 401 | 403; error: BearerErrorCode; scope?: string; description?: RegExp };
interface Row {
  name: string;
  request: (url: string) => Promise<Response>;
  expect: (endpoint: Endpoint) => Expect;
}
interface Endpoint {
  path: string;
  /** The scope the endpoint requires, and the token that lacks it. */
  scope: string;
}

describe('Security 12: RFC 6750 matrix on /userinfo, /resources, /delegations', () => {
  let stack: TestStack;
  const tokens: Record<'valid' | 'expired' | 'revoked' | 'audienceBound' | 'deletedClient', string> = {} as never;
  /** A token with every scope but the one the endpoint requires. */
  const lacking: Record<string, string> = {};

  const endpoints = (): Endpoint[] => [
    { path: '/userinfo', scope: 'openid' },
    { path: '/resources', scope: stack.config.scopes.related },
    { path: `/delegations?direction=granted`, scope: stack.config.scopes.delegations },
  ];
  const login = async (scope: string) => {
    const user = addRmUpstreamUser(stack, 'rfc6750');
    return loginAs(stack, user.username, { scope, password: user.password });
  };

  beforeAll(async () => {
    stack = await startStack();
    const all = RM_SCOPE.split(' ');
    const [valid, expired, revoked, bound] = await Promise.all([login(RM_SCOPE), login(RM_SCOPE), login(RM_SCOPE), login(RM_SCOPE)]);
    tokens.valid = valid.tokens.access_token;
    // Each spoiled token worked before it was spoiled: the rows below test the spoiling, nothing else.
    for (const session of [expired, revoked, bound]) {
      expect((await fetch(`${stack.issuer}/resources`, { headers: { authorization: `Bearer ${session.tokens.access_token}` } })).status).toBe(200);
    }
    tokens.expired = expired.tokens.access_token;
    await expireAccessToken(stack.dataSource, tokens.expired);
    tokens.revoked = revoked.tokens.access_token;
    await oidc.tokenRevocation(revoked.configuration, tokens.revoked);
    tokens.audienceBound = bound.tokens.access_token;
    const [, affected] = await stack.dataSource.query(
      `UPDATE oidc_payload SET payload = jsonb_set(payload, '{aud}', '"https://other-resource-server.example"') WHERE model = 'AccessToken' AND id = $1`,
      [tokenDigest(tokens.audienceBound)],
    );
    expect(affected).toBe(1);

    // A token of a client that was then deleted.
    const wallet = { clientId: randomId('gone-wallet'), clientSecret: randomId('secret'), redirectUri: WALLET_REDIRECT_URI };
    await stack.api.get(ClientRegistry).upsert({
      client_id: wallet.clientId,
      client_secret: wallet.clientSecret,
      redirect_uris: [wallet.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: RM_SCOPE,
    });
    const gone = addRmUpstreamUser(stack, 'rfc6750-gone');
    const goneSession = await loginAs({ ...stack, wallet }, gone.username, { scope: RM_SCOPE, password: gone.password });
    tokens.deletedClient = goneSession.tokens.access_token;
    expect((await fetch(`${stack.issuer}/resources`, { headers: { authorization: `Bearer ${tokens.deletedClient}` } })).status).toBe(200);
    await stack.dataSource.query('DELETE FROM oauth_client WHERE client_id = $1', [wallet.clientId]);

    for (const endpoint of endpoints()) {
      lacking[endpoint.scope] = (await login(all.filter((s) => s !== endpoint.scope).join(' '))).tokens.access_token;
    }
  });
  afterAll(() => stack?.close());

  const withQuery = (url: string, token: string) => `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`;
  const auth = (authorization: string) => ({ headers: { authorization } });

  const rows: Row[] = [
    { name: 'valid token in the header (control)', request: (u) => fetch(u, auth(`Bearer ${tokens.valid}`)), expect: () => ({ status: 200 }) },
    { name: 'no Authorization header', request: (u) => fetch(u), expect: () => ({ status: 401, error: null }) },
    { name: 'empty bearer ("Bearer ")', request: (u) => fetch(u, auth('Bearer ')), expect: () => ({ status: 400, error: 'invalid_request' }) },
    { name: 'Basic credentials instead of a bearer token', request: (u) => fetch(u, auth(`Basic ${Buffer.from('user:pass').toString('base64')}`)), expect: () => ({ status: 401, error: null }) },
    {
      name: 'token in the header AND the query',
      request: (u) => fetch(withQuery(u, tokens.valid), auth(`Bearer ${tokens.valid}`)),
      expect: () => ({ status: 400, error: 'invalid_request' }),
    },
    { name: 'token in the query only (RFC 6750 §2.3 not supported)', request: (u) => fetch(withQuery(u, tokens.valid)), expect: () => ({ status: 400, error: 'invalid_request' }) },
    { name: 'expired token', request: (u) => fetch(u, auth(`Bearer ${tokens.expired}`)), expect: () => ({ status: 401, error: 'invalid_token' }) },
    { name: 'revoked token (RFC 7009 revocation)', request: (u) => fetch(u, auth(`Bearer ${tokens.revoked}`)), expect: () => ({ status: 401, error: 'invalid_token' }) },
    { name: 'wrong audience: resource-bound token (aud of another server)', request: (u) => fetch(u, auth(`Bearer ${tokens.audienceBound}`)), expect: () => ({ status: 401, error: 'invalid_token', description: /not meant for this resource/ }) },
    { name: 'wrong audience: token of a deleted client', request: (u) => fetch(u, auth(`Bearer ${tokens.deletedClient}`)), expect: () => ({ status: 401, error: 'invalid_token' }) },
    {
      name: 'wrong scope: a token without the scope the endpoint requires',
      request: (u) => fetch(u, auth(`Bearer ${lacking[endpoints().find((e) => u.endsWith(e.path))!.scope]}`)),
      expect: (e) => ({ status: 403, error: 'insufficient_scope', scope: e.scope }),
    },
  ];

  // Jest needs the table before beforeAll runs: the endpoints' paths are fixed, the scopes come from the config.
  const table = ['/userinfo', '/resources', '/delegations?direction=granted'].flatMap((path) => rows.map((row) => [path, row.name]));

  it.each(table)('%s — %s', async (path, rowName) => {
    const endpoint = endpoints().find((e) => e.path === path)!;
    const row = rows.find((r) => r.name === rowName)!;
    const res = await row.request(`${stack.issuer}${endpoint.path}`);
    const expected = row.expect(endpoint);
    if (expected.status === 200) {
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      return;
    }
    if (expected.error === null) {
      expect(res.status).toBe(expected.status);
      expect(res.headers.get('www-authenticate')).toBe(BARE_CHALLENGE);
      expect(res.headers.get('cache-control')).toBe('no-store');
      await res.arrayBuffer();
      return;
    }
    const body = await expectBearerError(res, expected.status, expected.error);
    if ('scope' in expected && expected.scope) {
      expect(res.headers.get('www-authenticate')).toContain(`scope="${expected.scope}"`);
      expect(body.scope).toBe(expected.scope);
    }
    if ('description' in expected && expected.description) expect(body.error_description).toMatch(expected.description);
  });
});
