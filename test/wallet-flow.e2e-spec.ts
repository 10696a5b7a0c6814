import * as oidc from 'openid-client';
import { json } from './support/http';
import { loginAs } from './support/wallet';
import { startStack, TestStack } from './support/stack';

describe('Wallet flow through the RSA, federated to the upstream', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack?.close());

  it('discovery names the RSA issuer, its own /userinfo and the configured scopes', async () => {
    const res = await fetch(`${stack.issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const metadata = await json(res);
    expect(metadata.issuer).toBe(stack.issuer);
    expect(metadata.userinfo_endpoint).toBe(`${stack.issuer}/userinfo`);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['openid', 'offline_access', 'fpx_rot', 'delegations']));
    expect(metadata.response_types_supported).toEqual(['code']);
    expect(metadata.code_challenge_methods_supported).toContain('S256');
    for (const key of ['revocation_endpoint', 'introspection_endpoint', 'jwks_uri', 'end_session_endpoint']) {
      expect(metadata[key]).toMatch(new RegExp(`^${stack.issuer}/oidc/`));
    }
  });

  it('alice logs in, the Wallet calls /userinfo, refreshes, and a revoked token gets invalid_token', async () => {
    const session = await loginAs(stack, 'alice');
    const alice = stack.upstream.users.find((u) => u.username === 'alice')!;
    expect(session.tokens.refresh_token).toBeDefined();
    const idClaims = session.tokens.claims()!;

    const userinfo = await fetch(`${stack.issuer}/userinfo`, {
      headers: { authorization: `Bearer ${session.tokens.access_token}` },
    });
    expect(userinfo.status).toBe(200);
    expect(userinfo.headers.get('cache-control')).toBe('no-store');
    const claims = await json(userinfo);
    expect(claims).toMatchObject({ sub: idClaims.sub, email: alice.email, email_verified: true, name: alice.name });

    // openid-client's own userinfo call checks the sub against the ID token (OIDC Core §5.3.2).
    await expect(oidc.fetchUserInfo(session.configuration, session.tokens.access_token, idClaims.sub)).resolves.toMatchObject({ email: alice.email });

    const refreshed = await oidc.refreshTokenGrant(session.configuration, session.tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(session.tokens.access_token);
    const again = await fetch(`${stack.issuer}/userinfo`, { method: 'POST', headers: { authorization: `Bearer ${refreshed.access_token}` } });
    expect(again.status).toBe(200);

    await oidc.tokenRevocation(session.configuration, refreshed.access_token);
    const revoked = await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toMatch(/^Bearer realm="rsa", error="invalid_token"/);
    expect((await json(revoked)).error).toBe('invalid_token');
  });
});
