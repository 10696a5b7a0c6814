import { ConfigValidationError, EnvironmentVariables, validateEnvironment } from './env.schema';

export interface KeyRingEntry {
  kid: string;
  key: Buffer;
}

/**
 * Typed configuration shared by every app. Built once from the environment (or from an explicit
 * record in tests) and provided through `RsaConfigModule`.
 */
export class RsaConfig {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly database: { url?: string; poolSize: number; migrationsRun: boolean; embeddedDataDir: string };
  readonly ports: { api: number; admin: number; devUpstream: number };
  readonly issuer: string;
  readonly upstream: {
    issuer: string;
    clientId: string;
    clientSecret: string;
    tokenAuthMethod: 'client_secret_basic' | 'client_secret_post';
    scopes: string;
    resourceBaseUrl: string;
    timeoutMs: number;
    refreshSkewSeconds: number;
  };
  readonly tokenEncryptionKeys: KeyRingEntry[];
  readonly adminTokens: string[];
  readonly scopes: { related: string; delegations: string };
  readonly userinfoCacheTtlSeconds: number;
  readonly resourceManagement: {
    enabled: boolean;
    relatedCacheTtlSeconds: number;
    relatedConcurrency: number;
    /** HTTP method → alias scope a delegate needs to use the resource proxy with that method. */
    methodScopes: Record<string, string>;
    discoveryStaleSeconds: number;
    proxyMaxResponseBytes: number;
  };
  readonly op: { accessTokenTtlSeconds: number; refreshTokenTtlSeconds: number };
  /** Background refresh of the upstream tokens of owners with active delegations (apps/api). */
  readonly proactiveRefresh: { enabled: boolean; intervalSeconds: number; windowSeconds: number; maxPerRun: number };
  /** Retries of a refresh after a timeout or a 5xx/429 (never after invalid_grant), with exponential backoff. */
  readonly refreshRetry: { maxRetries: number; backoffMs: number };
  /** Largest body accepted from the upstream's token, userinfo and discovery endpoints. */
  readonly upstreamMaxResponseBytes: number;
  /** Per-client-IP limits over a fixed window, shared by all instances through PostgreSQL. */
  readonly rateLimit: { enabled: boolean; windowSeconds: number; loginMax: number; tokenMax: number; adminMax: number };
  readonly trustProxy: boolean;
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug' | 'verbose';

  constructor(env: EnvironmentVariables) {
    this.nodeEnv = (env.NODE_ENV as RsaConfig['nodeEnv']) ?? 'development';
    this.database = {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE ?? 10,
      migrationsRun: env.DATABASE_MIGRATIONS_RUN ?? false,
      embeddedDataDir: env.EMBEDDED_DATA_DIR ?? '.data',
    };
    this.ports = {
      api: env.API_PORT ?? 3000,
      admin: env.ADMIN_PORT ?? 3001,
      devUpstream: env.DEV_UPSTREAM_PORT ?? 3002,
    };
    this.issuer = env.RSA_ISSUER;
    this.upstream = {
      issuer: env.UPSTREAM_ISSUER,
      clientId: env.UPSTREAM_CLIENT_ID,
      clientSecret: env.UPSTREAM_CLIENT_SECRET,
      tokenAuthMethod: (env.UPSTREAM_TOKEN_AUTH_METHOD as RsaConfig['upstream']['tokenAuthMethod']) ?? 'client_secret_basic',
      scopes: env.UPSTREAM_SCOPES ?? 'openid profile email offline_access',
      resourceBaseUrl: env.UPSTREAM_RESOURCE_BASE_URL,
      timeoutMs: env.UPSTREAM_TIMEOUT_MS ?? 5000,
      refreshSkewSeconds: env.UPSTREAM_REFRESH_SKEW_SECONDS ?? 60,
    };
    this.tokenEncryptionKeys = parseKeyRing(env.TOKEN_ENCRYPTION_KEYS);
    this.adminTokens = (env.ADMIN_TOKENS ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    this.scopes = { related: env.SCOPE_RELATED ?? 'fpx_rot', delegations: env.SCOPE_DELEGATIONS ?? 'delegations' };
    this.userinfoCacheTtlSeconds = env.USERINFO_CACHE_TTL_SECONDS ?? 30;
    this.resourceManagement = {
      enabled: env.RESOURCE_MANAGEMENT_ENABLED ?? true,
      relatedCacheTtlSeconds: env.RELATED_CACHE_TTL_SECONDS ?? 60,
      relatedConcurrency: env.RELATED_CONCURRENCY ?? 8,
      methodScopes: parseMethodScopes(env.RESOURCE_METHOD_SCOPES ?? DEFAULT_METHOD_SCOPES),
      discoveryStaleSeconds: env.RESOURCE_DISCOVERY_STALE_SECONDS ?? 300,
      proxyMaxResponseBytes: env.PROXY_MAX_RESPONSE_BYTES ?? 5 * 1024 * 1024,
    };
    this.op = {
      accessTokenTtlSeconds: env.RSA_ACCESS_TOKEN_TTL_SECONDS ?? 600,
      refreshTokenTtlSeconds: env.RSA_REFRESH_TOKEN_TTL_SECONDS ?? 14 * 24 * 3600,
    };
    this.refreshRetry = { maxRetries: env.UPSTREAM_REFRESH_MAX_RETRIES ?? 2, backoffMs: env.UPSTREAM_REFRESH_BACKOFF_MS ?? 200 };
    this.upstreamMaxResponseBytes = env.UPSTREAM_MAX_RESPONSE_BYTES ?? 1024 * 1024;
    this.rateLimit = {
      enabled: env.RATE_LIMIT_ENABLED ?? true,
      windowSeconds: env.RATE_LIMIT_WINDOW_SECONDS ?? 60,
      loginMax: env.RATE_LIMIT_LOGIN_MAX ?? 30,
      tokenMax: env.RATE_LIMIT_TOKEN_MAX ?? 120,
      adminMax: env.RATE_LIMIT_ADMIN_MAX ?? 600,
    };
    this.proactiveRefresh = {
      enabled: env.PROACTIVE_REFRESH_ENABLED ?? true,
      intervalSeconds: env.PROACTIVE_REFRESH_INTERVAL_SECONDS ?? 60,
      windowSeconds: env.PROACTIVE_REFRESH_WINDOW_SECONDS ?? 120,
      maxPerRun: env.PROACTIVE_REFRESH_MAX_PER_RUN ?? 100,
    };
    this.trustProxy = env.TRUST_PROXY ?? false;
    this.logLevel = (env.LOG_LEVEL as RsaConfig['logLevel']) ?? 'log';
  }

  /** True when the issuer is plain http (development and tests): relaxes openid-client's https rule. */
  get insecureUpstream(): boolean {
    return this.upstream.issuer.startsWith('http://');
  }
}

const DEFAULT_METHOD_SCOPES = 'GET=read,HEAD=read,OPTIONS=read,POST=write,PUT=write,PATCH=write,DELETE=write';

function parseMethodScopes(value: string): Record<string, string> {
  return Object.fromEntries(
    value.split(',').map((entry) => {
      const [method, scope] = entry.split('=').map((part) => part.trim());
      return [method, scope];
    }),
  );
}

/** Parses `TOKEN_ENCRYPTION_KEYS` (`kid:base64key,…`, first key encrypts); throws ConfigValidationError. */
export function parseKeyRing(value: string): KeyRingEntry[] {
  const seen = new Set<string>();
  return value.split(',').map((entry) => {
    const [kid, b64] = entry.trim().split(':');
    const key = Buffer.from(b64.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (key.length !== 32) {
      throw keyRingError(`key "${kid}" must decode to 32 bytes (got ${key.length})`);
    }
    if (seen.has(kid)) {
      throw keyRingError(`key id "${kid}" appears twice`);
    }
    seen.add(kid);
    return { kid, key };
  });
}

const keyRingError = (message: string) =>
  new ConfigValidationError([{ variable: 'TOKEN_ENCRYPTION_KEYS', messages: [message] }]);

/** Validates the environment and builds the typed configuration; throws naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): RsaConfig {
  return new RsaConfig(validateEnvironment(env));
}
