/**
 * `npm start`: the whole product on embedded defaults, in one process, for trying it out.
 *
 * - no DATABASE_URL: an embedded PostgreSQL (PGlite) with its files under EMBEDDED_DATA_DIR (.data);
 * - no UPSTREAM_ISSUER: the development upstream provider and resource API (apps/dev-upstream);
 * - no TOKEN_ENCRYPTION_KEYS / ADMIN_TOKENS: generated once and kept in .data/dev-secrets.json;
 * - migrations run at start (set DATABASE_MIGRATIONS_RUN=false to skip);
 * - a demo Wallet client `demo-wallet` / `demo-wallet-secret` is registered.
 * Every environment variable overrides its embedded default. Production runs each app as its own
 * process (`npm run start:api`, `npm run start:admin`) against DATABASE_URL.
 */
import 'reflect-metadata';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { ClientRegistry } from '@rsa/auth';
import { ConfigValidationError, loadConfig } from '@rsa/config';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '@rsa/database';
import { CatalogueService, DEMO_ACCOUNT_RESOURCE } from '@rsa/resources';
import { DEV_USERS, startDevUpstream, type DevUpstream } from '@rsa/dev-upstream';
import { createAdminApp } from '../apps/admin/src/bootstrap';
import { createApiApp } from '../apps/api/src/bootstrap';

export const DEMO_WALLET = {
  client_id: 'demo-wallet',
  client_secret: 'demo-wallet-secret',
  client_name: 'Demo Wallet',
  redirect_uris: ['http://localhost:8080/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
};

interface DevSecrets {
  tokenEncryptionKey: string;
  adminToken: string;
  upstreamClientSecret: string;
}

/** Development secrets, generated once per data folder so restarts can read what was stored. */
function loadOrCreateDevSecrets(dataDir: string): DevSecrets {
  const file = join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
  mkdirSync(dataDir, { recursive: true });
  const secrets: DevSecrets = {
    tokenEncryptionKey: randomBytes(32).toString('base64'),
    adminToken: `dev-admin-${randomBytes(24).toString('base64url')}`,
    upstreamClientSecret: randomBytes(24).toString('base64url'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  chmodSync(file, 0o600);
  return secrets;
}

const portOf = (value: string | undefined, fallback: number) => (value && /^\d+$/.test(value) ? Number(value) : fallback);

async function main(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env };
  const dataDir = resolve(env.EMBEDDED_DATA_DIR ?? '.data');
  const secrets = loadOrCreateDevSecrets(dataDir);
  const apiPort = portOf(env.API_PORT, 3000);
  const upstreamPort = portOf(env.DEV_UPSTREAM_PORT, 3002);
  env.RSA_ISSUER ??= `http://localhost:${apiPort}`;
  env.TOKEN_ENCRYPTION_KEYS ??= `dev:${secrets.tokenEncryptionKey}`;
  env.ADMIN_TOKENS ??= secrets.adminToken;
  env.DATABASE_MIGRATIONS_RUN ??= 'true';
  env.LOG_LEVEL ??= 'warn';
  env.NODE_ENV ??= 'development';

  const stoppers: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  };
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.log(`\n${signal}: stopping…`);
      void stopAll().then(() => process.exit(0));
    });
  }

  try {
    let embedded: EmbeddedPostgres | undefined;
    if (!env.DATABASE_URL) {
      embedded = await startEmbeddedPostgres({ dataDir: join(dataDir, 'pgdata') });
      stoppers.push(() => embedded!.stop());
      env.DATABASE_URL = embedded.url;
      env.DATABASE_POOL_SIZE ??= '5';
    }

    let upstream: DevUpstream | undefined;
    if (!env.UPSTREAM_ISSUER) {
      env.UPSTREAM_CLIENT_ID ??= 'rsa';
      env.UPSTREAM_CLIENT_SECRET ??= secrets.upstreamClientSecret;
      upstream = await startDevUpstream({
        port: upstreamPort,
        issuer: env.DEV_UPSTREAM_ISSUER ?? `http://localhost:${upstreamPort}`,
        clients: [
          {
            client_id: env.UPSTREAM_CLIENT_ID,
            client_secret: env.UPSTREAM_CLIENT_SECRET,
            redirect_uris: [`${env.RSA_ISSUER}/interaction/callback`],
            post_logout_redirect_uris: [env.RSA_ISSUER],
          },
        ],
        accessTokenTtlSeconds: portOf(env.DEV_UPSTREAM_ACCESS_TOKEN_TTL, 300),
      });
      stoppers.push(() => upstream!.close());
      env.UPSTREAM_ISSUER = upstream.issuer;
      env.UPSTREAM_RESOURCE_BASE_URL ??= upstream.resourceBaseUrl;
    }

    const config = loadConfig(env);
    const api = await createApiApp(config);
    stoppers.push(() => api.close());
    await api.listen(config.ports.api);
    const admin: INestApplication = await createAdminApp(config);
    stoppers.push(() => admin.close());
    await admin.listen(config.ports.admin);

    await api.get(ClientRegistry).upsert({
      ...DEMO_WALLET,
      scope: `openid profile email offline_access ${config.scopes.related} ${config.scopes.delegations}`,
    });
    // The dev upstream's bank-style accounts, discovered at each user's login.
    if (upstream) await api.get(CatalogueService).upsert(DEMO_ACCOUNT_RESOURCE);

    printBanner({
      issuer: config.issuer,
      adminUrl: `http://localhost:${config.ports.admin}`,
      adminToken: config.adminTokens[0],
      adminTokenFromEnv: Boolean(process.env.ADMIN_TOKENS),
      upstream,
      database: embedded ? `embedded PGlite, files in ${join(dataDir, 'pgdata')}` : 'DATABASE_URL',
      scope: `openid profile email offline_access ${config.scopes.related} ${config.scopes.delegations}`,
    });
  } catch (error) {
    console.error(error instanceof ConfigValidationError ? error.message : `startup failed: ${(error as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

function printBanner(info: {
  issuer: string;
  adminUrl: string;
  adminToken: string;
  adminTokenFromEnv: boolean;
  upstream?: DevUpstream;
  database: string;
  scope: string;
}): void {
  // A fixed PKCE pair so the printed URL can be pasted into a browser and the code exchanged with curl.
  const verifier = 'demo-verifier-0123456789-0123456789-0123456789-abcdef';
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${info.issuer}/oidc/auth`);
  authorize.search = new URLSearchParams({
    client_id: DEMO_WALLET.client_id,
    response_type: 'code',
    scope: `${info.scope}`,
    redirect_uri: DEMO_WALLET.redirect_uris[0],
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'demo-state',
    prompt: 'consent',
  }).toString();
  const lines = [
    '',
    'Resource Server Adapter is running (development defaults)',
    '',
    `  Public API / OpenID Provider  ${info.issuer}`,
    `    discovery                   ${info.issuer}/.well-known/openid-configuration`,
    `    Swagger UI                  ${info.issuer}/docs`,
    `  Admin API                     ${info.adminUrl}`,
    `    Swagger UI                  ${info.adminUrl}/docs`,
    `    admin token                 ${info.adminTokenFromEnv ? '(the first token of ADMIN_TOKENS)' : info.adminToken}`,
    ...(info.upstream
      ? [
          `  Dev upstream (DEVELOPMENT ONLY) ${info.upstream.issuer}`,
          `    resource API                ${info.upstream.resourceBaseUrl}`,
          `    demo users                  ${DEV_USERS.map((u) => `${u.username}/${u.password}`).join(', ')}`,
        ]
      : []),
    `  Database                      ${info.database}`,
    `  Demo Wallet client            ${DEMO_WALLET.client_id} / ${DEMO_WALLET.client_secret}, redirect ${DEMO_WALLET.redirect_uris[0]}`,
    '',
    '  Try it: open this URL, sign in as alice/alice, and copy `code` from the address bar',
    '  (the browser then fails to load localhost:8080, which is expected):',
    `    ${authorize.href}`,
    '  then exchange the code:',
    `    curl -s -u ${DEMO_WALLET.client_id}:${DEMO_WALLET.client_secret} -d grant_type=authorization_code -d code=CODE \\`,
    `      -d redirect_uri=${DEMO_WALLET.redirect_uris[0]} -d code_verifier=${verifier} ${info.issuer}/oidc/token`,
    `  and call:  curl -s -H "Authorization: Bearer ACCESS_TOKEN" ${info.issuer}/userinfo`,
    '',
    '  Ctrl-C stops everything.',
    '',
  ];
  console.log(lines.join('\n'));
}

void main();
