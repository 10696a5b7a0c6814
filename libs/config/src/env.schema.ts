import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  validateSync,
  ValidationError,
} from 'class-validator';

/** Accepts http(s) URLs without a trailing slash: issuers are compared byte for byte (OIDC Discovery §4.3). */
const HTTP_URL = /^https?:\/\/[^\s/?#]+(\/[^\s?#]*[^\s/?#])?$/;
const DATABASE_URL = /^postgres(ql)?:\/\/\S+$/;
/** `kid:base64key` pairs separated by commas; each key decodes to 32 bytes (checked in TokenCipher). */
const KEY_RING = /^[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]{40,}(\s*,\s*[A-Za-z0-9_-]{1,32}:[A-Za-z0-9+/=_-]{40,})*$/;
const METHOD_SCOPES = /^\s*[A-Z]+\s*=\s*[\x21\x23-\x5B\x5D-\x7E]+\s*(,\s*[A-Z]+\s*=\s*[\x21\x23-\x5B\x5D-\x7E]+\s*)*$/;
const SCOPE_NAME = /^[\x21\x23-\x5B\x5D-\x7E]+$/; // RFC 6749 §3.3 scope-token

// class-validator runs a property's decorators bottom-up and we stop at the first failure, so the
// presence and type checks are written last: "API_PORT: must be an integer number", not a range.
const toInt = ({ value }: { value: unknown }) =>
  value === undefined || value === '' ? undefined : /^-?\d+$/.test(String(value)) ? Number(value) : value;
const toBool = ({ value }: { value: unknown }) => {
  if (value === undefined || value === '') return undefined;
  if (['true', '1', 'yes'].includes(String(value).toLowerCase())) return true;
  if (['false', '0', 'no'].includes(String(value).toLowerCase())) return false;
  return value;
};

/**
 * The one environment schema. Every variable is listed in `.env.example`; a bad value stops boot
 * with a message naming the variable (see `loadConfig`).
 */
export class EnvironmentVariables {
  @IsOptional() @IsIn(['development', 'production', 'test'])
  NODE_ENV?: string;

  @IsOptional() @Matches(DATABASE_URL, { message: 'must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;

  @Transform(toInt) @IsOptional() @Min(1) @Max(200) @IsInt()
  DATABASE_POOL_SIZE?: number;

  @Transform(toBool) @IsOptional() @IsBoolean()
  DATABASE_MIGRATIONS_RUN?: boolean;

  @IsOptional() @IsString() @MinLength(1)
  EMBEDDED_DATA_DIR?: string;

  @Matches(HTTP_URL, { message: 'must be an http(s) URL without a trailing slash, query or fragment' }) @IsNotEmpty({ message: 'is required' })
  RSA_ISSUER: string;

  @Transform(toInt) @IsOptional() @Min(0) @Max(65535) @IsInt()
  API_PORT?: number;

  @Transform(toInt) @IsOptional() @Min(0) @Max(65535) @IsInt()
  ADMIN_PORT?: number;

  @Transform(toInt) @IsOptional() @Min(0) @Max(65535) @IsInt()
  DEV_UPSTREAM_PORT?: number;

  @Matches(HTTP_URL, { message: 'must be an http(s) URL without a trailing slash, query or fragment' }) @IsNotEmpty({ message: 'is required' })
  UPSTREAM_ISSUER: string;

  @MinLength(1) @IsString() @IsNotEmpty({ message: 'is required' })
  UPSTREAM_CLIENT_ID: string;

  @MinLength(1) @IsString() @IsNotEmpty({ message: 'is required' })
  UPSTREAM_CLIENT_SECRET: string;

  @IsOptional() @IsIn(['client_secret_basic', 'client_secret_post'])
  UPSTREAM_TOKEN_AUTH_METHOD?: string;

  @IsOptional() @IsString() @Matches(/(^|\s)openid(\s|$)/, { message: 'must include openid' })
  UPSTREAM_SCOPES?: string;

  @Matches(HTTP_URL, { message: 'must be an http(s) URL without a trailing slash, query or fragment' }) @IsNotEmpty({ message: 'is required' })
  UPSTREAM_RESOURCE_BASE_URL: string;

  @Transform(toInt) @IsOptional() @Min(100) @Max(120000) @IsInt()
  UPSTREAM_TIMEOUT_MS?: number;

  @Transform(toInt) @IsOptional() @Min(0) @Max(3600) @IsInt()
  UPSTREAM_REFRESH_SKEW_SECONDS?: number;

  @Matches(KEY_RING, { message: 'must be a comma-separated list of kid:base64key entries (32-byte keys)' }) @IsNotEmpty({ message: 'is required' })
  TOKEN_ENCRYPTION_KEYS: string;

  @IsOptional() @IsString()
  ADMIN_TOKENS?: string;

  @IsOptional() @Matches(SCOPE_NAME, { message: 'must be a single OAuth scope token' })
  SCOPE_RELATED?: string;

  @IsOptional() @Matches(SCOPE_NAME, { message: 'must be a single OAuth scope token' })
  SCOPE_DELEGATIONS?: string;

  @Transform(toInt) @IsOptional() @Min(0) @Max(3600) @IsInt()
  USERINFO_CACHE_TTL_SECONDS?: number;

  @Transform(toBool) @IsOptional() @IsBoolean()
  RESOURCE_MANAGEMENT_ENABLED?: boolean;

  @Transform(toInt) @IsOptional() @Min(0) @Max(3600) @IsInt()
  RELATED_CACHE_TTL_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(1) @Max(64) @IsInt()
  RELATED_CONCURRENCY?: number;

  @IsOptional() @Matches(METHOD_SCOPES, { message: 'must be a comma-separated list of METHOD=scope entries, e.g. GET=read,POST=write' })
  RESOURCE_METHOD_SCOPES?: string;

  @Transform(toInt) @IsOptional() @Min(0) @Max(86400) @IsInt()
  RESOURCE_DISCOVERY_STALE_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(1024) @Max(104857600) @IsInt()
  PROXY_MAX_RESPONSE_BYTES?: number;

  @Transform(toInt) @IsOptional() @Min(60) @Max(86400) @IsInt()
  RSA_ACCESS_TOKEN_TTL_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(300) @Max(31536000) @IsInt()
  RSA_REFRESH_TOKEN_TTL_SECONDS?: number;

  @Transform(toBool) @IsOptional() @IsBoolean()
  PROACTIVE_REFRESH_ENABLED?: boolean;

  @Transform(toInt) @IsOptional() @Min(1) @Max(86400) @IsInt()
  PROACTIVE_REFRESH_INTERVAL_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(0) @Max(31536000) @IsInt()
  PROACTIVE_REFRESH_WINDOW_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(1) @Max(100000) @IsInt()
  PROACTIVE_REFRESH_MAX_PER_RUN?: number;

  @Transform(toInt) @IsOptional() @Min(0) @Max(5) @IsInt()
  UPSTREAM_REFRESH_MAX_RETRIES?: number;

  @Transform(toInt) @IsOptional() @Min(10) @Max(60000) @IsInt()
  UPSTREAM_REFRESH_BACKOFF_MS?: number;

  @Transform(toInt) @IsOptional() @Min(1024) @Max(10485760) @IsInt()
  UPSTREAM_MAX_RESPONSE_BYTES?: number;

  @Transform(toBool) @IsOptional() @IsBoolean()
  RATE_LIMIT_ENABLED?: boolean;

  @Transform(toInt) @IsOptional() @Min(1) @Max(3600) @IsInt()
  RATE_LIMIT_WINDOW_SECONDS?: number;

  @Transform(toInt) @IsOptional() @Min(1) @Max(1000000) @IsInt()
  RATE_LIMIT_LOGIN_MAX?: number;

  @Transform(toInt) @IsOptional() @Min(1) @Max(1000000) @IsInt()
  RATE_LIMIT_TOKEN_MAX?: number;

  @Transform(toInt) @IsOptional() @Min(1) @Max(1000000) @IsInt()
  RATE_LIMIT_ADMIN_MAX?: number;

  @Transform(toBool) @IsOptional() @IsBoolean()
  TRUST_PROXY?: boolean;

  @IsOptional() @IsIn(['error', 'warn', 'log', 'debug', 'verbose'])
  LOG_LEVEL?: string;
}

/** Thrown at boot when the environment does not validate; the message names every bad variable. */
export class ConfigValidationError extends Error {
  readonly code = 'CONFIG.INVALID';
  constructor(readonly problems: { variable: string; messages: string[] }[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.variable}: ${p.messages.join('; ')}`).join('\n'),
    );
    this.name = 'ConfigValidationError';
  }
}

export function validateEnvironment(env: Record<string, string | undefined>): EnvironmentVariables {
  const known = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const instance = plainToInstance(EnvironmentVariables, known, { enableImplicitConversion: false });
  const errors: ValidationError[] = validateSync(instance, { skipMissingProperties: false, forbidUnknownValues: false, stopAtFirstError: true });
  if (errors.length) {
    throw new ConfigValidationError(
      errors.map((e) => ({
        variable: e.property,
        // class-validator prefixes default messages with the property name; we print it once.
        messages: Object.values(e.constraints ?? {}).map((msg) =>
          msg.startsWith(`${e.property} `) ? msg.slice(e.property.length + 1) : msg,
        ),
      })),
    );
  }
  return instance;
}
