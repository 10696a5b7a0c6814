/**
 * ============================================================================================
 *  DEVELOPMENT-ONLY upstream OpenID Connect provider (+ a tiny "bank" resource API).
 *
 *  Used by `npm start` (demo) and by the test-suite as the identity provider the RSA federates
 *  login to. Hard-coded users whose password is their user name, in-memory storage, signing and
 *  cookie keys generated at start. NEVER deploy this anywhere real.
 * ============================================================================================
 */
import { generateKeyPair, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';

import express, { type NextFunction, type Request, type Response } from 'express';
import {
  errors,
  Provider,
  type Account,
  type ClientMetadata,
  type Configuration,
  type Interaction,
  type JWK,
  type KoaContextWithOIDC,
  type OIDCContext,
} from 'oidc-provider';

import { DevMemoryStore, devMemoryAdapterFactory } from './memory-adapter';
import { createResourceApi, DEV_ACCOUNTS, type DevAccount } from './resource-api';
import { errorPage, loginPage, logoutPage, messagePage } from './views';

export interface DevUpstreamClient {
  client_id: string;
  client_secret: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  /**
   * Registered token endpoint auth method (default `client_secret_basic`). oidc-provider 9 accepts
   * `client_secret_basic` and `client_secret_post` interchangeably for either registration.
   */
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post';
}

export interface DevUpstreamOptions {
  /** 0 or undefined = random free port */
  port?: number;
  /** interface to bind; default: all interfaces */
  host?: string;
  /** default `http://127.0.0.1:<actual port>`; trailing slashes are removed */
  issuer?: string;
  clients: DevUpstreamClient[];
  /** default 300 (short on purpose so refresh paths get exercised) */
  accessTokenTtlSeconds?: number;
  /** default 14 days */
  refreshTokenTtlSeconds?: number;
  /** optional; token values are never logged */
  logger?: (line: string) => void;
}

export interface DevUser {
  sub: string;
  username: string;
  password: string;
  name: string;
  given_name: string;
  family_name: string;
  email: string;
  email_verified: boolean;
}

export interface DevUpstreamStats {
  /** successful refresh_token grants at the token endpoint */
  refreshGrants: number;
  /** every refresh_token grant request, successful or not */
  refreshAttempts: number;
  /** successful authorization_code grants */
  authorizationCodeGrants: number;
  /** requests that reached the userinfo endpoint (any outcome) */
  userinfoCalls: number;
  /** the most userinfo requests in progress at the same time (to observe a client's fan-out) */
  userinfoMaxInFlight: number;
  /** requests under /api (any outcome) */
  resourceCalls: number;
  /** accepted (HTTP 200) requests to the revocation endpoint */
  revocations: number;
}

export interface DevUpstream {
  issuer: string;
  port: number;
  /** `${issuer}/api` */
  resourceBaseUrl: string;
  provider: Provider;
  /** this instance's users (copies of DEV_USERS); users pushed here can log in too */
  users: DevUser[];
  /** live counters; `resetStats()` zeroes them in place */
  stats: DevUpstreamStats;
  resetStats(): void;
  /** Userinfo requests in progress right now. */
  readonly userinfoInFlight: number;
  /** Holds every userinfo response this long (0: none) so concurrent requests visibly overlap. */
  setUserinfoDelayMs(ms: number): void;
  /**
   * Replaces the resource API accounts of `sub` on this instance only (tests: accounts that vanish,
   * are renamed or come back); `null` restores the DEV_ACCOUNTS default.
   */
  setAccountsOf(sub: string, accounts: DevAccount[] | null): void;
  /** Revokes every grant of `sub` (with its codes, access and refresh tokens); returns how many grants. */
  revokeGrantsOf(sub: string): Promise<number>;
  /** Closes the HTTP server and all sockets. */
  close(): Promise<void>;
}

export const DEV_USERS: DevUser[] = [
  {
    sub: 'alice-0001',
    username: 'alice',
    password: 'alice',
    name: 'Alice Anderson',
    given_name: 'Alice',
    family_name: 'Anderson',
    email: 'alice@example.com',
    email_verified: true,
  },
  {
    sub: 'bob-0002',
    username: 'bob',
    password: 'bob',
    name: 'Bob Brown',
    given_name: 'Bob',
    family_name: 'Brown',
    email: 'bob@example.com',
    email_verified: true,
  },
  {
    sub: 'carol-0003',
    username: 'carol',
    password: 'carol',
    name: 'Carol Clark',
    given_name: 'Carol',
    family_name: 'Clark',
    email: 'carol@example.com',
    email_verified: true,
  },
];

const DEFAULT_ACCESS_TOKEN_TTL = 300;
const DEFAULT_REFRESH_TOKEN_TTL = 14 * 24 * 60 * 60;
const SESSION_TTL = 24 * 60 * 60;

const ROUTES = {
  authorization: '/auth',
  token: '/token',
  userinfo: '/me',
  jwks: '/jwks',
  revocation: '/token/revocation',
  introspection: '/token/introspection',
  end_session: '/session/end',
} as const;

const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * One RS256 signing key per process: generating RSA keys costs ~100 ms and tests start several
 * upstreams. (Cookie keys, in contrast, are random per start.)
 */
let signingKey: Promise<JWK> | undefined;
function devSigningKey(): Promise<JWK> {
  signingKey ??= generateKeyPairAsync('rsa', { modulusLength: 2048 }).then(({ privateKey }) => ({
    ...(privateKey.export({ format: 'jwk' }) as JWK),
    kid: `dev-upstream-${randomUUID()}`,
    use: 'sig',
    alg: 'RS256',
  }));
  return signingKey;
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer, got ${value}`);
  }
}

function listen(server: Server, port: number, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const onListening = (): void => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    };
    if (host) server.listen(port, host, onListening);
    else server.listen(port, onListening);
  });
}

export async function startDevUpstream(options: DevUpstreamOptions): Promise<DevUpstream> {
  const log = options.logger ?? ((): void => undefined);
  const accessTokenTtl = options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL;
  const refreshTokenTtl = options.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL;
  assertPositiveInteger('accessTokenTtlSeconds', accessTokenTtl);
  assertPositiveInteger('refreshTokenTtlSeconds', refreshTokenTtl);
  if (options.clients.length === 0) throw new TypeError('at least one client is required');

  // Bind first: the default issuer contains the port, and the Provider's issuer must equal the
  // public URL exactly. The request handler is attached once the Provider exists.
  const server = createServer();
  const port = await listen(server, options.port ?? 0, options.host);

  try {
    const issuer = (options.issuer ?? `http://127.0.0.1:${port}`).replace(/\/+$/, '');
    new URL(issuer); // throws on a malformed issuer

    const users: DevUser[] = DEV_USERS.map((u) => ({ ...u }));
    const findUser = (sub: string): DevUser | undefined => users.find((u) => u.sub === sub);
    const accountOverrides = new Map<string, DevAccount[]>();

    const stats: DevUpstreamStats = {
      refreshGrants: 0,
      refreshAttempts: 0,
      authorizationCodeGrants: 0,
      userinfoCalls: 0,
      userinfoMaxInFlight: 0,
      resourceCalls: 0,
      revocations: 0,
    };

    const store = new DevMemoryStore();
    const provider = new Provider(issuer, {
      ...buildConfiguration(options.clients, await devSigningKey(), { accessTokenTtl, refreshTokenTtl }),
      adapter: devMemoryAdapterFactory(store),
      findAccount: (_ctx, sub): Account | undefined => {
        const user = findUser(sub);
        if (!user) return undefined;
        // oidc-provider filters these by granted scope/claims.
        return {
          accountId: user.sub,
          claims: () => ({
            sub: user.sub,
            name: user.name,
            given_name: user.given_name,
            family_name: user.family_name,
            email: user.email,
            email_verified: user.email_verified,
          }),
        };
      },
    });

    const userinfoLoad: UserinfoLoad = { inFlight: 0, delayMs: 0 };
    instrument(provider, stats, userinfoLoad, log);

    const app = express();
    app.disable('x-powered-by');

    app.use(
      '/api',
      createResourceApi({
        provider,
        accountExists: (sub) => findUser(sub) !== undefined,
        accountsOf: (sub) => accountOverrides.get(sub) ?? DEV_ACCOUNTS[sub] ?? [],
        onCall: () => {
          stats.resourceCalls += 1;
        },
        log,
      }),
    );

    mountInteractions(app, provider, users, log);

    // Last: oidc-provider parses its own bodies, so nothing above may consume them for its routes.
    app.use(provider.callback());

    server.on('request', app);

    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive sockets (fetch keeps them open) would otherwise hold close() for seconds.
        server.closeAllConnections();
      }));

    log(`dev upstream listening on port ${port}, issuer ${issuer}`);

    return {
      issuer,
      port,
      resourceBaseUrl: `${issuer}/api`,
      provider,
      users,
      stats,
      resetStats: () => {
        for (const key of Object.keys(stats) as (keyof DevUpstreamStats)[]) stats[key] = 0;
      },
      get userinfoInFlight() {
        return userinfoLoad.inFlight;
      },
      setUserinfoDelayMs: (ms: number) => {
        if (!Number.isFinite(ms) || ms < 0) throw new TypeError(`userinfo delay must be a non-negative number, got ${ms}`);
        userinfoLoad.delayMs = ms;
      },
      setAccountsOf: (sub: string, accounts: DevAccount[] | null) => {
        if (accounts) accountOverrides.set(sub, accounts.map((a) => ({ ...a })));
        else accountOverrides.delete(sub);
      },
      revokeGrantsOf: async (sub: string) => {
        const grantIds = store.idsWhere('Grant', (p) => p.accountId === sub);
        for (const grantId of grantIds) {
          await Promise.all([
            provider.AuthorizationCode.revokeByGrantId(grantId),
            provider.AccessToken.revokeByGrantId(grantId),
            provider.RefreshToken.revokeByGrantId(grantId),
          ]);
          await (await provider.Grant.find(grantId))?.destroy();
        }
        log(`revoked ${grantIds.length} grant(s) of ${sub}`);
        return grantIds.length;
      },
      close,
    };
  } catch (err) {
    server.close();
    throw err;
  }
}

function buildConfiguration(
  clients: DevUpstreamClient[],
  signingJwk: JWK,
  ttl: { accessTokenTtl: number; refreshTokenTtl: number },
): Configuration {
  const clientMetadata: ClientMetadata[] = clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
  }));

  return {
    clients: clientMetadata,
    jwks: { keys: [signingJwk] },
    // Distinct names: cookies ignore ports, and the RSA's own provider runs on the same host.
    cookies: {
      names: { session: '_up_session', interaction: '_up_interaction', resume: '_up_resume' },
      keys: [randomBytes(32).toString('base64url')],
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: ['openid', 'profile', 'email', 'offline_access', 'accounts'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name'],
      email: ['email', 'email_verified'],
    },
    // Rotate on every use, like strict real providers. Replaying a rotated refresh token makes
    // oidc-provider revoke the whole grant (`invalid_grant` from then on).
    rotateRefreshToken: true,
    // Refresh tokens go to clients allowed the refresh_token grant when offline_access was granted
    // (oidc-provider's default, spelled out). offline_access survives the authorization request only
    // with prompt=consent, and our consent step grants everything that was asked for.
    issueRefreshToken: (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    ttl: {
      AccessToken: ttl.accessTokenTtl,
      AuthorizationCode: 60,
      RefreshToken: ttl.refreshTokenTtl,
      IdToken: 3600,
      Interaction: 600,
      Session: SESSION_TTL,
      Grant: ttl.refreshTokenTtl,
    },
    routes: { ...ROUTES },
    features: {
      devInteractions: { enabled: false },
      revocation: {
        enabled: true,
        allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: (ctx, client, token) => token.clientId === client.clientId,
      },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: (ctx, form) => {
          ctx.type = 'html';
          ctx.body = logoutPage(form);
        },
        postLogoutSuccessSource: (ctx) => {
          ctx.type = 'html';
          ctx.body = messagePage('Signed out', 'You have been signed out of the dev upstream.');
        },
      },
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Server-side clients only: no browser CORS at all.
    clientBasedCORS: () => false,
    renderError: (ctx, out) => {
      ctx.type = 'html';
      const description = out.error_description ? `: ${String(out.error_description)}` : '';
      ctx.body = errorPage(`${String(out.error)}${description}`);
    },
  };
}

/** Userinfo requests in progress, and the artificial delay each one gets (tests observe fan-out). */
interface UserinfoLoad {
  inFlight: number;
  delayMs: number;
}

/** Counts grants, userinfo calls (and how many overlap) and revocations (see DevUpstreamStats). */
function instrument(provider: Provider, stats: DevUpstreamStats, userinfoLoad: UserinfoLoad, log: (line: string) => void): void {
  const grantTypeOf = (ctx: KoaContextWithOIDC): unknown =>
    (ctx.oidc as OIDCContext | undefined)?.params?.grant_type;

  provider.on('grant.success', (ctx) => {
    const grantType = grantTypeOf(ctx);
    if (grantType === 'refresh_token') {
      stats.refreshGrants += 1;
      stats.refreshAttempts += 1;
    } else if (grantType === 'authorization_code') {
      stats.authorizationCodeGrants += 1;
    }
    log(`token endpoint: ${String(grantType)} grant succeeded for ${ctx.oidc.client?.clientId ?? '?'}`);
  });

  const onTokenError = (ctx: KoaContextWithOIDC, err: Error): void => {
    const grantType = grantTypeOf(ctx);
    if (grantType === 'refresh_token') stats.refreshAttempts += 1;
    const code = err instanceof errors.OIDCProviderError ? err.error : 'server_error';
    log(`token endpoint: ${String(grantType)} grant failed: ${code}`);
  };
  provider.on('grant.error', onTokenError);
  provider.on('server_error', (ctx, err) => {
    if ((ctx.oidc as OIDCContext | undefined)?.route === 'token') onTokenError(ctx, err);
    else log(`server_error on ${ctx.path}: ${err.message}`);
  });

  // A Koa middleware runs before the response is written, so counters are up to date by the time
  // a client sees the response (a 'finish' listener on the Node response would race the client).
  provider.use(async (ctx: KoaContextWithOIDC, next) => {
    // The route is known only after routing; the path tells a userinfo request before it is served.
    if (ctx.path === ROUTES.userinfo) {
      userinfoLoad.inFlight += 1;
      stats.userinfoMaxInFlight = Math.max(stats.userinfoMaxInFlight, userinfoLoad.inFlight);
      try {
        if (userinfoLoad.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, userinfoLoad.delayMs));
        await next();
      } finally {
        userinfoLoad.inFlight -= 1;
      }
    } else {
      await next();
    }
    const route = (ctx.oidc as OIDCContext | undefined)?.route;
    if (route === 'userinfo') stats.userinfoCalls += 1;
    else if (route === 'revocation' && ctx.status === 200) stats.revocations += 1;
  });
}

function mountInteractions(
  app: express.Express,
  provider: Provider,
  users: DevUser[],
  log: (line: string) => void,
): void {
  const renderLogin = (
    res: Response,
    interaction: Interaction,
    extra: { username?: string; error?: string } = {},
  ): void => {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    );
    res.type('html').send(
      loginPage({
        uid: interaction.uid,
        clientId: String(interaction.params.client_id ?? ''),
        username:
          extra.username ?? (typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint : ''),
        error: extra.error,
        usernames: users.map((u) => u.username),
      }),
    );
  };

  /** The interaction bound to this browser (cookie), which must be the one in the URL. */
  const loadInteraction = async (req: Request<{ uid: string }>, res: Response): Promise<Interaction> => {
    const interaction = await provider.interactionDetails(req, res);
    if (interaction.uid !== req.params.uid) {
      throw new errors.SessionNotFound('interaction uid mismatch');
    }
    return interaction;
  };

  app.get('/interaction/:uid', async (req: Request<{ uid: string }>, res: Response) => {
    const interaction = await loadInteraction(req, res);
    switch (interaction.prompt.name) {
      case 'login':
        renderLogin(res, interaction);
        return;
      case 'consent': {
        // First-party dev client: grant everything requested, without a page.
        const grantId = await grantEverythingRequested(provider, interaction);
        log(`consent granted automatically for ${String(interaction.params.client_id)}`);
        await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
        return;
      }
      default:
        res.status(400).type('html').send(errorPage(`Unsupported interaction prompt.`));
    }
  });

  const urlencoded = express.urlencoded({ extended: false, limit: '8kb' });

  app.post('/interaction/:uid/login', urlencoded, async (req: Request<{ uid: string }>, res: Response) => {
    const interaction = await loadInteraction(req, res);
    if (interaction.prompt.name !== 'login') {
      res.status(400).type('html').send(errorPage('This sign-in step is not expecting a login.'));
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username.trim() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const user = users.find((u) => u.username === username);
    if (!user || password !== user.password) {
      log(`login failed for username "${username}"`);
      res.status(401);
      renderLogin(res, interaction, { username, error: 'Invalid username or password.' });
      return;
    }
    log(`login succeeded for ${user.username} (${user.sub})`);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub } },
      { mergeWithLastSubmission: false },
    );
  });

  app.post('/interaction/:uid/abort', async (req: Request<{ uid: string }>, res: Response) => {
    await loadInteraction(req, res);
    log('interaction aborted by the end-user');
    await provider.interactionFinished(
      req,
      res,
      { error: 'access_denied', error_description: 'End-User aborted interaction' },
      { mergeWithLastSubmission: false },
    );
  });

  // Interaction errors: a friendly page, never a stack trace.
  app.use('/interaction', (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof errors.SessionNotFound || err instanceof errors.InvalidRequest) {
      res
        .status(400)
        .type('html')
        .send(errorPage('This sign-in request has expired or is no longer valid. Please start again from the application.'));
      return;
    }
    log(`interaction error: ${err instanceof Error ? err.message : String(err)}`);
    res.status(500).type('html').send(errorPage('Unexpected error in the dev upstream.'));
  });
}

/** Creates or extends the interaction's Grant with everything the prompt says is missing. */
async function grantEverythingRequested(provider: Provider, interaction: Interaction): Promise<string> {
  const accountId = interaction.session?.accountId;
  const clientId = interaction.params.client_id;
  if (!accountId || typeof clientId !== 'string') {
    throw new errors.SessionNotFound('consent without a logged-in session');
  }

  // The grant may have been revoked meanwhile (revokeGrantsOf); start a new one then.
  let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new provider.Grant({ accountId, clientId });
  }

  const details = interaction.prompt.details as {
    missingOIDCScope?: string[];
    missingOIDCClaims?: string[];
    missingResourceScopes?: Record<string, string[]>;
  };
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return grant.save();
}
