import { FactoryProvider, Logger } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { Provider, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { DataSource } from 'typeorm';
import { RsaConfig } from '@rsa/config';
import { AccountEntity } from '@rsa/database';
import { ClientRegistry } from './client-registry.service';
import { OidcKeyStore } from './oidc-keys.service';
import { createTypeormAdapter } from './typeorm-adapter';

export const OIDC_PROVIDER = Symbol('OIDC_PROVIDER');

/** Where the OP's own endpoints live; discovery stays at the issuer root (OIDC Discovery §4). */
export const OP_ROUTE_PREFIX = '/oidc';
export const OP_ROUTES = {
  authorization: `${OP_ROUTE_PREFIX}/auth`,
  token: `${OP_ROUTE_PREFIX}/token`,
  jwks: `${OP_ROUTE_PREFIX}/jwks`,
  revocation: `${OP_ROUTE_PREFIX}/token/revocation`,
  introspection: `${OP_ROUTE_PREFIX}/token/introspection`,
  end_session: `${OP_ROUTE_PREFIX}/session/end`,
  userinfo: `${OP_ROUTE_PREFIX}/me`,
  pushed_authorization_request: `${OP_ROUTE_PREFIX}/request`,
  code_verification: `${OP_ROUTE_PREFIX}/device`,
  device_authorization: `${OP_ROUTE_PREFIX}/device/auth`,
  registration: `${OP_ROUTE_PREFIX}/reg`,
  backchannel_authentication: `${OP_ROUTE_PREFIX}/backchannel`,
  challenge: `${OP_ROUTE_PREFIX}/challenge`,
};

/** True for request paths the OP answers; everything else goes to Nest. */
export function isOpPath(path: string): boolean {
  return path === '/.well-known/openid-configuration' || path.startsWith(`${OP_ROUTE_PREFIX}/`);
}

const escapeHtml = (value: unknown) =>
  String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A plain error page for the browser: the OAuth error code and description, never a stack trace. */
export function renderErrorPage(title: string, error: string, description?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#f3f3f3;padding:.1rem .3rem}</style>
</head><body><h1>${escapeHtml(title)}</h1><p><code>${escapeHtml(error)}</code></p>${description ? `<p>${escapeHtml(description)}</p>` : ''}
<p>Go back to the application you came from and try again.</p></body></html>`;
}

/**
 * The RSA's OpenID Provider (oidc-provider): authorization code + PKCE, refresh tokens, revocation,
 * introspection, JWKS and RP-initiated logout. Login is delegated to the upstream provider through
 * the interaction routes of apps/api; the built-in userinfo is off because apps/api serves
 * `/userinfo` itself (claims from the upstream, and later the `related` claim).
 */
export const oidcProviderFactory: FactoryProvider<Provider> = {
  provide: OIDC_PROVIDER,
  inject: [RsaConfig, getDataSourceToken(), ClientRegistry, OidcKeyStore],
  useFactory: async (config: RsaConfig, dataSource: DataSource, clients: ClientRegistry, keyStore: OidcKeyStore) => {
    const keys = await keyStore.loadOrCreate();
    const accounts = dataSource.getRepository(AccountEntity);
    const { related, delegations } = config.scopes;

    const configuration: Configuration = {
      adapter: createTypeormAdapter(dataSource, clients),
      clients: [],
      jwks: { keys: keys.signing as never[] },
      cookies: {
        // Own names: the dev upstream runs on the same host, and cookies ignore ports.
        names: { session: '_rsa_session', interaction: '_rsa_interaction', resume: '_rsa_resume' },
        keys: keys.cookies,
        long: { signed: true, httpOnly: true, sameSite: 'lax' },
        short: { signed: true, httpOnly: true, sameSite: 'lax' },
      },
      scopes: ['openid', 'offline_access', 'profile', 'email', related, delegations],
      claims: {
        openid: ['sub'],
        profile: ['name', 'given_name', 'family_name'],
        email: ['email', 'email_verified'],
      },
      async findAccount(_ctx, id) {
        const account = await accounts.findOne({ where: { id } });
        if (!account) return undefined;
        return {
          accountId: account.id,
          async claims() {
            return {
              sub: account.id,
              name: account.name ?? undefined,
              given_name: account.givenName ?? undefined,
              family_name: account.familyName ?? undefined,
              email: account.email ?? undefined,
              email_verified: account.emailVerified,
            };
          },
        };
      },
      features: {
        devInteractions: { enabled: false },
        // A client may revoke or introspect only the tokens issued to it (RFC 7009 §2.1, RFC 7662 §4).
        revocation: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
        introspection: { enabled: true, allowedPolicy: (_ctx, client, token) => token.clientId === client.clientId },
        userinfo: { enabled: false },
        rpInitiatedLogout: { enabled: true },
      },
      discovery: { userinfo_endpoint: `${config.issuer}/userinfo` },
      interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
      pkce: { required: () => true },
      responseTypes: ['code'],
      routes: OP_ROUTES,
      clientBasedCORS: () => false,
      rotateRefreshToken: true,
      issueRefreshToken: async (_ctx, client, code) =>
        client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
      ttl: {
        AccessToken: config.op.accessTokenTtlSeconds,
        AuthorizationCode: 60,
        IdToken: 3600,
        Interaction: 600,
        Session: 14 * 24 * 3600,
        Grant: config.op.refreshTokenTtlSeconds,
        RefreshToken: config.op.refreshTokenTtlSeconds,
      },
      async renderError(ctx: KoaContextWithOIDC, out) {
        ctx.type = 'html';
        ctx.body = renderErrorPage('Sign-in error', String(out.error), out.error_description as string | undefined);
      },
    };

    const provider = new Provider(config.issuer, configuration);
    provider.proxy = config.trustProxy;
    const logger = new Logger('OidcProvider');
    // Log the error code only: descriptions can echo request parameters.
    provider.on('server_error', (_ctx, error) => logger.error(`server_error: ${error.message}`));
    provider.on('grant.error', (_ctx, error) => logger.warn(`token endpoint error: ${(error as { error?: string }).error ?? error.name}`));
    return provider;
  },
};
