import { createHash, randomBytes } from 'node:crypto';
import { Controller, DynamicModule, Get, Module, Post, UseGuards } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import * as oidc from 'openid-client';
import { AuthModule, ClientRegistry, CurrentPrincipal, RequireScopes, RsaBearerGuard, type RsaPrincipal } from '@rsa/auth';
import { AllExceptionsFilter } from '@rsa/common';
import { RsaConfig, RsaConfigModule } from '@rsa/config';
import { DatabaseModule } from '@rsa/database';
import type { DevUser } from '@rsa/dev-upstream';
import { json } from './support/http';
import { freePort } from './support/ports';
import { startStack, TestStack, WALLET_REDIRECT_URI } from './support/stack';
import { randomId } from './support/test-config';
import { loginAs, WalletSession } from './support/wallet';

/**
 * A route guarded like the future Resource Management API (`delegations` scope, configurable name),
 * in a test-only app built from the same modules as apps/api: the real guard, strategy and OP.
 */
@Controller('scoped')
@UseGuards(RsaBearerGuard)
class DelegationsScopedController {
  @Get()
  @RequireScopes((config) => config.scopes.delegations)
  get(@CurrentPrincipal() principal: RsaPrincipal) {
    return { accountId: principal.accountId, scopes: [...principal.scopes].sort() };
  }

  @Post()
  @RequireScopes('openid', (config) => config.scopes.delegations)
  post(@CurrentPrincipal() principal: RsaPrincipal) {
    return { accountId: principal.accountId };
  }
}

@Module({})
class ScopedTestModule {
  static forRoot(config: RsaConfig): DynamicModule {
    return {
      module: ScopedTestModule,
      imports: [RsaConfigModule.forRoot({ config }), DatabaseModule.forRoot({ applicationName: 'rsa-test-scoped' }), AuthModule],
      controllers: [DelegationsScopedController],
      providers: [{ provide: APP_FILTER, useValue: new AllExceptionsFilter() }],
    };
  }
}

const BARE_CHALLENGE = 'Bearer realm="rsa"';
const tokenDigest = (token: string) => createHash('sha256').update(token).digest('base64url');

describe('Bearer authentication on /userinfo (RFC 6750)', () => {
  let stack: TestStack;
  let scopedApp: NestExpressApplication;
  let scopedUrl: string;
  /** One session shared by the tests that only need "some valid token" (fresh tokens come from refreshes). */
  let shared: WalletSession;
  let sharedRefreshToken: string;

  const userinfo = () => `${stack.issuer}/userinfo`;

  /** A new upstream user, so every login in this file is a distinct account. */
  function newUser(): DevUser {
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
    stack.upstream.users.push(user);
    return user;
  }

  /** A fresh, valid access token of the shared session (refresh grant; the refresh token rotates). */
  async function freshAccessToken(): Promise<string> {
    const refreshed = await oidc.refreshTokenGrant(shared.configuration, sharedRefreshToken);
    sharedRefreshToken = refreshed.refresh_token!;
    return refreshed.access_token;
  }

  async function expectBearerError(
    res: Response,
    status: number,
    error: 'invalid_request' | 'invalid_token' | 'insufficient_scope',
  ): Promise<Record<string, unknown>> {
    expect(res.status).toBe(status);
    const challenge = res.headers.get('www-authenticate');
    expect(challenge).toMatch(new RegExp(`^Bearer realm="rsa", error="${error}"(, error_description="[^"]*")?(, scope="[^"]*")?$`));
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await json(res);
    expect(body.error).toBe(error);
    expect(JSON.stringify(body)).not.toMatch(/\bat \S+ \(|\.ts:\d+/);
    return body;
  }

  beforeAll(async () => {
    stack = await startStack();
    scopedApp = await NestFactory.create<NestExpressApplication>(ScopedTestModule.forRoot(stack.config), { logger: ['error'] });
    const port = await freePort();
    await scopedApp.listen(port, '127.0.0.1');
    scopedUrl = `http://127.0.0.1:${port}/scoped`;
    shared = await loginAs(stack, newUser().username);
    sharedRefreshToken = shared.tokens.refresh_token!;
  });

  afterAll(async () => {
    await scopedApp?.close();
    await stack?.close();
  });

  describe('no credentials', () => {
    it.each(['GET', 'POST'])('%s without an Authorization header: 401 with a bare challenge and no error code', async (method) => {
      const res = await fetch(userinfo(), { method });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(BARE_CHALLENGE);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await json(res);
      expect(['invalid_request', 'invalid_token', 'insufficient_scope']).not.toContain(body.error);
    });

    it.each(['GET', 'POST'])('%s with Basic credentials is treated as no bearer token at all', async (method) => {
      const res = await fetch(userinfo(), {
        method,
        headers: { authorization: `Basic ${Buffer.from(`${stack.wallet.clientId}:${stack.wallet.clientSecret}`).toString('base64')}` },
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(BARE_CHALLENGE);
      expect(res.headers.get('cache-control')).toBe('no-store');
      await res.arrayBuffer();
    });

    it('a POST whose form body has no access_token is treated as no token', async () => {
      const res = await fetch(userinfo(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'foo=bar',
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe(BARE_CHALLENGE);
      await res.arrayBuffer();
    });
  });

  describe('malformed requests: 400 invalid_request', () => {
    it.each([
      ['GET', 'Bearer'],
      ['GET', 'Bearer a b'],
      ['GET', 'Bearer ###'],
      ['POST', 'Bearer'],
      ['POST', 'Bearer a b'],
      ['POST', 'Bearer ###'],
    ])('%s with "Authorization: %s"', async (method, authorization) => {
      const res = await fetch(userinfo(), { method, headers: { authorization } });
      await expectBearerError(res, 400, 'invalid_request');
    });

    it('a token in both the Authorization header and the form body', async () => {
      const token = await freshAccessToken();
      const res = await fetch(userinfo(), {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: token }).toString(),
      });
      const body = await expectBearerError(res, 400, 'invalid_request');
      expect(body.error_description).toMatch(/more than one method/);
    });

    it.each(['GET', 'POST'])('%s with the token in the URI query (refused even though the token is valid)', async (method) => {
      const token = await freshAccessToken();
      const res = await fetch(`${userinfo()}?access_token=${encodeURIComponent(token)}`, { method });
      const body = await expectBearerError(res, 400, 'invalid_request');
      expect(body.error_description).toMatch(/query/);
    });

    it('a repeated access_token form parameter', async () => {
      const res = await fetch(userinfo(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'access_token=abc&access_token=def',
      });
      await expectBearerError(res, 400, 'invalid_request');
    });
  });

  describe('valid tokens', () => {
    it('a token in the Authorization header (scheme name in any case) gets the claims', async () => {
      const token = await freshAccessToken();
      const res = await fetch(userinfo(), { headers: { authorization: `bearer ${token}` } });
      expect(res.status).toBe(200);
      expect((await json(res)).sub).toBe(shared.tokens.claims()!.sub);
    });

    it('a token sent as the form-encoded body parameter access_token on POST gets the claims', async () => {
      const token = await freshAccessToken();
      const res = await fetch(userinfo(), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ access_token: token }).toString(),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect((await json(res)).sub).toBe(shared.tokens.claims()!.sub);
    });
  });

  describe('tokens that are not (or no longer) valid: 401 invalid_token', () => {
    it('an unknown random token', async () => {
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${randomBytes(32).toString('base64url')}` } });
      await expectBearerError(res, 401, 'invalid_token');
    });

    it('a refresh token or an ID token presented as an access token', async () => {
      for (const token of [sharedRefreshToken, shared.tokens.id_token!]) {
        const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } });
        await expectBearerError(res, 401, 'invalid_token');
      }
      // The shared refresh token still works: presenting it at /userinfo did not consume it.
      await expect(freshAccessToken()).resolves.toEqual(expect.any(String));
    });

    it('an expired token (row and payload expiry moved into the past)', async () => {
      const token = await freshAccessToken();
      expect((await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      const past = Math.floor(Date.now() / 1000) - 60;
      const [, affected] = await stack.dataSource.query(
        `UPDATE oidc_payload SET expires_at = now() - interval '1 minute', payload = jsonb_set(payload, '{exp}', to_jsonb($1::bigint))
         WHERE model = 'AccessToken' AND id = $2`,
        [past, tokenDigest(token)],
      );
      expect(affected).toBe(1);
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } });
      await expectBearerError(res, 401, 'invalid_token');
    });

    it('a token whose payload says it expired even though its row has not been purged yet', async () => {
      const token = await freshAccessToken();
      const past = Math.floor(Date.now() / 1000) - 60;
      const [, affected] = await stack.dataSource.query(
        `UPDATE oidc_payload SET payload = jsonb_set(payload, '{exp}', to_jsonb($1::bigint)) WHERE model = 'AccessToken' AND id = $2`,
        [past, tokenDigest(token)],
      );
      expect(affected).toBe(1);
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } });
      await expectBearerError(res, 401, 'invalid_token');
    });

    it('a token revoked at the revocation endpoint', async () => {
      const session = await loginAs(stack, newUser().username);
      const token = session.tokens.access_token;
      expect((await fetch(userinfo(), { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      await oidc.tokenRevocation(session.configuration, token);
      for (const method of ['GET', 'POST']) {
        const res = await fetch(userinfo(), { method, headers: { authorization: `Bearer ${token}` } });
        await expectBearerError(res, 401, 'invalid_token');
      }
    });

    it('a token whose client was deleted from oauth_client', async () => {
      const wallet = { clientId: randomId('doomed-wallet'), clientSecret: randomId('secret'), redirectUri: WALLET_REDIRECT_URI };
      await stack.api.get(ClientRegistry).upsert({
        client_id: wallet.clientId,
        client_secret: wallet.clientSecret,
        redirect_uris: [wallet.redirectUri],
        scope: 'openid profile email offline_access',
      });
      const session = await loginAs({ ...stack, wallet }, newUser().username, { scope: 'openid profile' });
      const token = session.tokens.access_token;
      expect((await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

      await stack.dataSource.query('DELETE FROM oauth_client WHERE client_id = $1', [wallet.clientId]);
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } });
      await expectBearerError(res, 401, 'invalid_token');
    });
    it('a token whose account was deleted (even while its claims are still cached)', async () => {
      const session = await loginAs(stack, newUser().username, { scope: 'openid email' });
      const token = session.tokens.access_token;
      expect((await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);

      await stack.dataSource.query('DELETE FROM account WHERE id = $1', [session.tokens.claims()!.sub]);
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${token}` } });
      await expectBearerError(res, 401, 'invalid_token');
    });
  });

  describe('insufficient scope: 403 insufficient_scope naming the missing scope', () => {
    it('/userinfo with a token granted without openid (plain OAuth 2.0 request)', async () => {
      const session = await loginAs(stack, newUser().username, { scope: 'profile email' });
      expect(session.tokens.id_token).toBeUndefined();
      const res = await fetch(userinfo(), { headers: { authorization: `Bearer ${session.tokens.access_token}` } });
      const body = await expectBearerError(res, 403, 'insufficient_scope');
      expect(res.headers.get('www-authenticate')).toContain('scope="openid"');
      expect(body.scope).toBe('openid');
    });

    it('a route requiring the configurable delegations scope, with and without it', async () => {
      const without = await freshAccessToken(); // the shared session has no delegations scope
      const denied = await fetch(scopedUrl, { headers: { authorization: `Bearer ${without}` } });
      await expectBearerError(denied, 403, 'insufficient_scope');
      expect(denied.headers.get('www-authenticate')).toContain(`scope="${stack.config.scopes.delegations}"`);

      const both = await fetch(scopedUrl, { method: 'POST', headers: { authorization: `Bearer ${without}` } });
      await expectBearerError(both, 403, 'insufficient_scope');
      expect(both.headers.get('www-authenticate')).toContain(`scope="openid ${stack.config.scopes.delegations}"`);

      const session = await loginAs(stack, newUser().username, { scope: `openid ${stack.config.scopes.delegations}` });
      const allowed = await fetch(scopedUrl, { headers: { authorization: `Bearer ${session.tokens.access_token}` } });
      expect(allowed.status).toBe(200);
      expect(await json(allowed)).toEqual({ accountId: session.tokens.claims()!.sub, scopes: ['delegations', 'openid'].sort() });
      const posted = await fetch(scopedUrl, { method: 'POST', headers: { authorization: `Bearer ${session.tokens.access_token}` } });
      expect(posted.status).toBe(201);
    });

    it('the scope check comes after authentication: a bad token on a scoped route is invalid_token, none is a bare 401', async () => {
      const bad = await fetch(scopedUrl, { headers: { authorization: 'Bearer not-a-real-token' } });
      await expectBearerError(bad, 401, 'invalid_token');
      const none = await fetch(scopedUrl);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe(BARE_CHALLENGE);
      await none.arrayBuffer();
    });
  });
});
