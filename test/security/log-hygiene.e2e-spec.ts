import { format } from 'node:util';
import { Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { startAdmin, type AdminInstance } from '../support/admin';
import { devAccounts, newRmUser, type RmUser } from '../support/resource-users';
import { startStack, WALLET_REDIRECT_URI, type TestStack } from '../support/stack';
import { TEST_ADMIN_TOKEN, TEST_ENCRYPTION_KEY } from '../support/test-config';
import { decryptColumn, setAccessTokenExpiry, tokenRow } from '../support/token-fixtures';

/**
 * Security case 15: a representative run — login, userinfo, refresh, delegation, the related claim,
 * the resource proxy, an owner's upstream refresh (on demand and forced by an admin), client
 * creation and secret rotation, failed admin authentication, bad bearer tokens and a token
 * revocation — with every log line captured at the most verbose level (Nest's logger writes to
 * process.stdout/stderr; console methods too). No credential value may appear in them.
 */
describe('log hygiene (security case 15)', () => {
  const captured: string[] = [];
  const secrets = new Map<string, string>();
  const restores: (() => void)[] = [];
  let stack: TestStack;
  let admin: AdminInstance;
  let owner: RmUser;
  let delegate: RmUser;

  const remember = (label: string, value: string | undefined | null) => {
    if (value) secrets.set(`${label}#${secrets.size}`, value);
  };
  const rememberUpstream = async (label: string, accountId: string) => {
    const row = await tokenRow(stack, accountId);
    for (const column of ['access_token', 'refresh_token', 'id_token'] as const) {
      if (row[`${column}_enc`]) remember(`${label} upstream ${column}`, decryptColumn(stack, row, column));
    }
  };

  beforeAll(async () => {
    for (const stream of [process.stdout, process.stderr]) {
      const original = stream.write;
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        captured.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }) as typeof stream.write;
      restores.push(() => (stream.write = original));
    }
    for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      const spy = jest.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        captured.push(format(...args));
      });
      restores.push(() => spy.mockRestore());
    }
    stack = await startStack({ env: { LOG_LEVEL: 'verbose' } });
    admin = await startAdmin(stack);
    remember('admin token', TEST_ADMIN_TOKEN);
    remember('wallet client secret', stack.wallet.clientSecret);
    remember('upstream client secret', stack.config.upstream.clientSecret);
    remember('token encryption key', TEST_ENCRYPTION_KEY);
  }, 60_000);

  afterAll(async () => {
    await admin?.close();
    await stack?.close();
    for (const restore of restores.reverse()) restore();
  });

  const canary = `log-capture-canary-${Date.now()}`;

  it('runs the representative flow', async () => {
    // Proof the capture sees the product's logger at its most verbose level.
    new Logger('LogHygiene').verbose(canary);
    // Login (Wallet flow through the dev upstream) of an owner with resources and of a delegate.
    const accounts = devAccounts(1, 'logs');
    owner = await newRmUser(stack, 'logs-owner', { accounts });
    delegate = await newRmUser(stack, 'logs-delegate');
    for (const [label, user] of [['owner', owner], ['delegate', delegate]] as const) {
      remember(`${label} access token`, user.session.tokens.access_token);
      remember(`${label} refresh token`, user.session.tokens.refresh_token);
      remember(`${label} id token`, user.session.tokens.id_token);
      await rememberUpstream(label, user.sub);
    }

    // Userinfo and resources; a delegation; the related claim; the proxy.
    expect((await owner.get('/userinfo')).status).toBe(200);
    const owned = ((await (await owner.get('/resources')).json()) as { owned: { id: string }[] }).owned;
    expect(owned.length).toBeGreaterThan(0);
    expect((await owner.send('POST', '/delegations', { aliases: [owned[0].id], scopes: ['read'], delegate: { sub: delegate.sub } })).status).toBe(201);
    expect((await delegate.get('/userinfo')).status).toBe(200);
    expect((await delegate.get('/resources')).status).toBe(200);
    expect((await delegate.get(`/resources/${owned[0].id}/data/`)).status).toBeLessThan(500);
    expect((await delegate.get(`/resources/${owned[0].id}/data/transactions`)).status).toBeLessThan(500);

    // The owner's upstream access token expires: the delegate's request refreshes it on demand.
    await setAccessTokenExpiry(stack, [owner.sub], -60);
    expect((await delegate.get('/userinfo')).status).toBe(200);
    await rememberUpstream('owner (after on-demand refresh)', owner.sub);

    // Refresh of the RSA tokens at the RSA's token endpoint, then a replay of the old refresh token.
    const refreshed = await oidc.refreshTokenGrant(delegate.session.configuration, delegate.session.tokens.refresh_token!);
    remember('delegate refreshed access token', refreshed.access_token);
    remember('delegate refreshed refresh token', refreshed.refresh_token);
    remember('delegate refreshed id token', refreshed.id_token);
    expect((await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status).toBe(200);
    // Replaying the rotated-out refresh token fails (and revokes the grant: its tokens stop working).
    await expect(oidc.refreshTokenGrant(delegate.session.configuration, delegate.session.tokens.refresh_token!)).rejects.toThrow();
    expect((await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status).toBeLessThan(500);

    // Bad bearer tokens: a forged one, one in the query string, the refresh token used as a bearer.
    const forged = `forged-${'x'.repeat(40)}`;
    remember('forged bearer token', forged);
    expect((await fetch(`${stack.issuer}/resources`, { headers: { authorization: `Bearer ${forged}` } })).status).toBe(401);
    expect([400, 401]).toContain((await fetch(`${stack.issuer}/resources?access_token=${encodeURIComponent(owner.token)}`)).status);
    expect((await fetch(`${stack.issuer}/resources`, { headers: { authorization: `Bearer ${refreshed.refresh_token}` } })).status).toBe(401);

    // Admin: reads, failed authentications, a confidential client with a generated secret and its rotation.
    expect((await admin.request('GET', '/token-health/summary')).status).toBeLessThan(500);
    const wrongAdminToken = `wrong-admin-${'y'.repeat(32)}`;
    remember('wrong admin token', wrongAdminToken);
    expect((await admin.request('GET', '/accounts', { token: wrongAdminToken })).status).toBe(401);
    expect((await admin.request('GET', '/accounts', { headers: { authorization: `Basic ${Buffer.from(`admin:${wrongAdminToken}`).toString('base64')}` }, token: null })).status).toBe(401);
    const created = await admin.request('POST', '/clients', {
      body: { client_name: 'Log hygiene Wallet', redirect_uris: [WALLET_REDIRECT_URI], scope: 'openid profile' },
    });
    expect(created.status).toBe(201);
    remember('created client secret', created.body.client_secret);
    const rotated = await admin.request('POST', `/clients/${created.body.client_id}/secret`);
    expect(rotated.status).toBe(200);
    remember('rotated client secret', rotated.body.client_secret);
    // A client_credentials-style call with the secret at the token endpoint (wrong grant, right secret).
    await fetch(`${stack.issuer}/oidc/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${created.body.client_id}:${rotated.body.client_secret}`).toString('base64')}`,
      },
      body: 'grant_type=refresh_token&refresh_token=not-a-token',
    });

    // Forced upstream refresh by an admin, account detail, then revocation of the delegate's tokens.
    const forced = await admin.request('POST', `/accounts/${owner.sub}/tokens/refresh`);
    expect(forced.status).toBeLessThan(300);
    await rememberUpstream('owner (after forced refresh)', owner.sub);
    expect((await admin.request('GET', `/accounts/${owner.sub}/tokens`)).status).toBe(200);
    expect((await admin.request('GET', '/delegations/at-risk')).status).toBe(200);
    await rememberUpstream('delegate (before revocation)', delegate.sub);
    expect((await admin.request('DELETE', `/accounts/${delegate.sub}/tokens`)).status).toBeLessThan(300);
    // The delegate's now-revoked upstream tokens make the owner's next request... still fine; the delegate's fails cleanly.
    expect((await owner.get('/userinfo')).status).toBe(200);
    expect((await fetch(`${stack.issuer}/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status).toBeLessThan(500);
  }, 60_000);

  it('captured logs at verbose level, and none of them holds a credential', () => {
    const text = captured.join('');
    // The capture works: the run logged something (Nest's bootstrap lines at least).
    expect(text).toContain(canary);
    expect(text).toContain('Mapped {');
    expect(secrets.size).toBeGreaterThanOrEqual(20);
    const leaks: string[] = [];
    for (const [label, value] of secrets) {
      const needles = [value];
      // A JWT's payload and signature are as secret as the whole; a logged fragment is a leak too.
      if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(value)) needles.push(...value.split('.').slice(1));
      else if (value.length >= 32) needles.push(value.slice(0, 24), value.slice(-24));
      for (const needle of needles) {
        if (needle.length >= 16 && text.includes(needle)) leaks.push(`${label}: …${needle.slice(0, 6)}…`);
      }
    }
    expect(leaks).toEqual([]);
  });
});
