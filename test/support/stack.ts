import type { NestExpressApplication } from '@nestjs/platform-express';
import { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { ClientRegistry, OIDC_PROVIDER } from '@rsa/auth';
import { loadConfig, RsaConfig } from '@rsa/config';
import { startDevUpstream, type DevUpstream } from '@rsa/dev-upstream';
import { CatalogueService, DEMO_ACCOUNT_RESOURCE } from '@rsa/resources';
import { createApiApp } from '../../apps/api/src/bootstrap';
import { freePort } from './ports';
import { recordSecret, recordTokensOf } from './secret-registry';
import { randomId, TEST_ADMIN_TOKEN, TEST_KEY_RING } from './test-config';

export const WALLET_REDIRECT_URI = 'http://127.0.0.1:8080/callback';

export interface TestWallet {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface TestStack {
  issuer: string;
  config: RsaConfig;
  upstream: DevUpstream;
  api: NestExpressApplication;
  dataSource: DataSource;
  wallet: TestWallet;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Extra or overriding environment variables for the RSA. */
  env?: Record<string, string>;
  upstreamAccessTokenTtlSeconds?: number;
  /** Reuse an upstream (e.g. two RSA instances federating to one upstream). */
  upstream?: DevUpstream;
  /** The issuer the dev upstream announces, e.g. a fault-injecting proxy's URL in front of it. */
  upstreamIssuer?: string;
}

/**
 * A real stack on loopback: the dev upstream (oidc-provider) and the RSA api app, on the test
 * database, with a fresh Wallet client registered. Everything over real HTTP.
 */
export async function startStack(options: StackOptions = {}): Promise<TestStack> {
  const apiPort = await freePort();
  const issuer = `http://127.0.0.1:${apiPort}`;
  const upstreamClient = { client_id: randomId('rsa'), client_secret: randomId('secret') };
  const ownUpstream = !options.upstream;
  const upstream =
    options.upstream ??
    (await startDevUpstream({
      port: 0,
      host: '127.0.0.1',
      issuer: options.upstreamIssuer,
      clients: [{ ...upstreamClient, redirect_uris: [`${issuer}/interaction/callback`] }],
      accessTokenTtlSeconds: options.upstreamAccessTokenTtlSeconds ?? 300,
    }));
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: process.env.DATABASE_URL,
    DATABASE_POOL_SIZE: '5',
    RSA_ISSUER: issuer,
    UPSTREAM_ISSUER: upstream.issuer,
    UPSTREAM_CLIENT_ID: upstreamClient.client_id,
    UPSTREAM_CLIENT_SECRET: upstreamClient.client_secret,
    UPSTREAM_RESOURCE_BASE_URL: upstream.resourceBaseUrl,
    UPSTREAM_TIMEOUT_MS: '3000',
    TOKEN_ENCRYPTION_KEYS: TEST_KEY_RING,
    ADMIN_TOKENS: TEST_ADMIN_TOKEN,
    LOG_LEVEL: 'warn',
    // The background job would refresh owners at moments no test chose; suites run it with runOnce().
    PROACTIVE_REFRESH_ENABLED: 'false',
    // Every suite signs in and calls the token endpoint from 127.0.0.1 on one shared database; the
    // limits are tested (enabled) in test/security/rate-limits.e2e-spec.ts.
    RATE_LIMIT_ENABLED: 'false',
    ...options.env,
  });
  recordSecret(upstreamClient.client_secret);
  if (ownUpstream) recordTokensOf(upstream.provider as never);
  const api = await createApiApp(config);
  recordTokensOf(api.get(OIDC_PROVIDER));
  await api.listen(apiPort, '127.0.0.1');
  const wallet: TestWallet = { clientId: randomId('wallet'), clientSecret: randomId('wallet-secret'), redirectUri: WALLET_REDIRECT_URI };
  recordSecret(wallet.clientSecret);
  await api.get(ClientRegistry).upsert({
    client_id: wallet.clientId,
    client_secret: wallet.clientSecret,
    client_name: 'Test Wallet',
    redirect_uris: [wallet.redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: `openid profile email offline_access ${config.scopes.related} ${config.scopes.delegations}`,
  });
  await api.get(CatalogueService).upsert(DEMO_ACCOUNT_RESOURCE);
  return {
    issuer,
    config,
    upstream,
    api,
    dataSource: api.get<DataSource>(getDataSourceToken()),
    wallet,
    async close() {
      await api.close();
      if (ownUpstream) await upstream.close();
    },
  };
}
