import { getMetadataStorage } from 'class-validator';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigValidationError, EnvironmentVariables, loadConfig } from './index';

const KEY = Buffer.alloc(32, 1).toString('base64');
const valid = {
  RSA_ISSUER: 'http://localhost:3000',
  UPSTREAM_ISSUER: 'https://login.example.com',
  UPSTREAM_CLIENT_ID: 'rsa',
  UPSTREAM_CLIENT_SECRET: 'secret',
  UPSTREAM_RESOURCE_BASE_URL: 'https://api.example.com/v1',
  TOKEN_ENCRYPTION_KEYS: `k1:${KEY}`,
};

function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigValidationError);
    return (error as ConfigValidationError).problems.map((p) => p.variable);
  }
  throw new Error('expected loadConfig to throw');
}

describe('configuration schema', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config.ports).toEqual({ api: 3000, admin: 3001, devUpstream: 3002 });
    expect(config.upstream.timeoutMs).toBe(5000);
    expect(config.scopes).toEqual({ related: 'fpx_rot', delegations: 'delegations' });
    expect(config.database.url).toBeUndefined();
    expect(config.database.migrationsRun).toBe(false);
    expect(config.insecureUpstream).toBe(false);
  });

  it('an invalid value stops boot with a message naming the variable', () => {
    expect(() => loadConfig({ ...valid, API_PORT: 'eighty' })).toThrow(/API_PORT/);
    expect(problemsOf({ ...valid, UPSTREAM_TIMEOUT_MS: '-5' })).toEqual(['UPSTREAM_TIMEOUT_MS']);
    expect(problemsOf({ ...valid, DATABASE_URL: 'mysql://x' })).toEqual(['DATABASE_URL']);
    expect(problemsOf({ ...valid, RSA_ISSUER: 'http://localhost:3000/' })).toEqual(['RSA_ISSUER']);
    expect(problemsOf({ ...valid, DATABASE_MIGRATIONS_RUN: 'maybe' })).toEqual(['DATABASE_MIGRATIONS_RUN']);
    expect(problemsOf({ ...valid, SCOPE_RELATED: 'two words' })).toEqual(['SCOPE_RELATED']);
  });

  it('says what is wrong in plain words: the type before the range, "is required" for a missing value', () => {
    expect(() => loadConfig({ ...valid, API_PORT: 'eighty' })).toThrow('API_PORT: must be an integer number');
    expect(() => loadConfig({ ...valid, API_PORT: '70000' })).toThrow('API_PORT: must not be greater than 65535');
    expect(() => loadConfig({ ...valid, UPSTREAM_CLIENT_ID: undefined })).toThrow('UPSTREAM_CLIENT_ID: is required');
  });

  it('a missing required variable is named, all at once', () => {
    const { UPSTREAM_ISSUER: _i, UPSTREAM_CLIENT_SECRET: _s, ...rest } = valid;
    expect(problemsOf(rest).sort()).toEqual(['UPSTREAM_CLIENT_SECRET', 'UPSTREAM_ISSUER']);
  });

  it('the key ring must hold 32-byte keys with distinct ids; the first key encrypts', () => {
    expect(() => loadConfig({ ...valid, TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(16).toString('base64')}aaaaaaaaaaaaaaaaaaaa` })).toThrow(
      /TOKEN_ENCRYPTION_KEYS: key "k1" must decode to 32 bytes/,
    );
    expect(() => loadConfig({ ...valid, TOKEN_ENCRYPTION_KEYS: `k1:${KEY},k1:${KEY}` })).toThrow(/appears twice/);
    const ring = loadConfig({ ...valid, TOKEN_ENCRYPTION_KEYS: `new:${KEY}, old:${Buffer.alloc(32, 2).toString('base64')}` });
    expect(ring.tokenEncryptionKeys.map((k) => k.kid)).toEqual(['new', 'old']);
  });

  it('ADMIN_TOKENS is a comma-separated list', () => {
    expect(loadConfig({ ...valid, ADMIN_TOKENS: 'a-token, b-token ,' }).adminTokens).toEqual(['a-token', 'b-token']);
  });

  it('proactive refresh: on by default, every 60 s, 120 s window, 100 per run; bad values name the variable', () => {
    expect(loadConfig(valid).proactiveRefresh).toEqual({ enabled: true, intervalSeconds: 60, windowSeconds: 120, maxPerRun: 100 });
    expect(loadConfig({ ...valid, PROACTIVE_REFRESH_ENABLED: 'false', PROACTIVE_REFRESH_MAX_PER_RUN: '5' }).proactiveRefresh).toMatchObject({
      enabled: false,
      maxPerRun: 5,
    });
    expect(
      problemsOf({ ...valid, PROACTIVE_REFRESH_ENABLED: 'sometimes', PROACTIVE_REFRESH_INTERVAL_SECONDS: '0', PROACTIVE_REFRESH_WINDOW_SECONDS: '-1', PROACTIVE_REFRESH_MAX_PER_RUN: 'many' }).sort(),
    ).toEqual(['PROACTIVE_REFRESH_ENABLED', 'PROACTIVE_REFRESH_INTERVAL_SECONDS', 'PROACTIVE_REFRESH_MAX_PER_RUN', 'PROACTIVE_REFRESH_WINDOW_SECONDS']);
  });

  it('empty strings count as unset', () => {
    expect(loadConfig({ ...valid, API_PORT: '', DATABASE_URL: '' }).ports.api).toBe(3000);
  });
});

describe('.env.example', () => {
  it('documents every variable of the schema', () => {
    const variables = new Set(
      getMetadataStorage()
        .getTargetValidationMetadatas(EnvironmentVariables, '', true, false)
        .map((m) => m.propertyName),
    );
    const example = readFileSync(join(__dirname, '../../../.env.example'), 'utf8');
    const documented = new Set([...example.matchAll(/^([A-Z_]+)=/gm)].map((m) => m[1]));
    expect([...variables].filter((v) => !documented.has(v))).toEqual([]);
    expect(variables.size).toBeGreaterThan(20);
  });
});
