/**
 * ############################################################################################
 * #  DEVELOPMENT ONLY — DO NOT RUN IN PRODUCTION.                                             #
 * #  A throwaway upstream OpenID Provider with hard-coded users (password = user name),       #
 * #  in-memory storage and per-start keys, used by `npm start` as the RSA's upstream.         #
 * ############################################################################################
 *
 * Environment:
 *   DEV_UPSTREAM_PORT              port to listen on (default 3002; 0 = random)
 *   DEV_UPSTREAM_HOST              interface to bind (default: all interfaces)
 *   DEV_UPSTREAM_ISSUER            issuer URL (default http://localhost:<port>)
 *   UPSTREAM_CLIENT_ID             the RSA's client id here (default rsa)
 *   UPSTREAM_CLIENT_SECRET         the RSA's client secret here (default rsa-dev-secret)
 *   RSA_ISSUER                     the RSA's public URL (default http://localhost:3000);
 *                                  redirect URI ${RSA_ISSUER}/interaction/callback
 *   DEV_UPSTREAM_ACCESS_TOKEN_TTL  access token lifetime in seconds (default 300)
 */
import { startDevUpstream, type DevUpstream } from './dev-upstream';

class ConfigError extends Error {}

function integerEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function urlEnv(name: string, fallback: string): string {
  const raw = process.env[name]?.trim() || fallback;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`${name} must be an absolute http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

function stringEnv(name: string, fallback: string): string {
  return process.env[name]?.trim() || fallback;
}

const timestamp = (): string => new Date().toISOString();

async function main(): Promise<void> {
  let upstream: DevUpstream;
  try {
    const port = integerEnv('DEV_UPSTREAM_PORT', 3002, 0, 65535);
    const accessTokenTtlSeconds = integerEnv('DEV_UPSTREAM_ACCESS_TOKEN_TTL', 300, 1, 86400);
    const issuer = process.env.DEV_UPSTREAM_ISSUER?.trim()
      ? urlEnv('DEV_UPSTREAM_ISSUER', '')
      : port === 0
        ? undefined // random port: let startDevUpstream build the issuer from the actual port
        : `http://localhost:${port}`;
    const rsaIssuer = urlEnv('RSA_ISSUER', 'http://localhost:3000');

    upstream = await startDevUpstream({
      port,
      host: process.env.DEV_UPSTREAM_HOST?.trim() || undefined,
      issuer,
      accessTokenTtlSeconds,
      clients: [
        {
          client_id: stringEnv('UPSTREAM_CLIENT_ID', 'rsa'),
          client_secret: stringEnv('UPSTREAM_CLIENT_SECRET', 'rsa-dev-secret'),
          redirect_uris: [`${rsaIssuer}/interaction/callback`],
          post_logout_redirect_uris: [rsaIssuer],
        },
      ],
      logger: (line) => console.log(`${timestamp()} [dev-upstream] ${line}`),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`dev-upstream: ${err.message}`);
    } else {
      console.error(`dev-upstream: failed to start: ${err instanceof Error ? err.message : String(err)}`);
    }
    process.exit(1);
  }

  console.log('');
  console.log('  DEV UPSTREAM — DEVELOPMENT ONLY, NOT FOR PRODUCTION');
  console.log(`  issuer:       ${upstream.issuer}`);
  console.log(`  discovery:    ${upstream.issuer}/.well-known/openid-configuration`);
  console.log(`  resource API: ${upstream.resourceBaseUrl}`);
  console.log(`  users (password = user name): ${upstream.users.map((u) => `${u.username} (${u.sub})`).join(', ')}`);
  console.log('');

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`${timestamp()} [dev-upstream] ${signal} received, shutting down`);
    upstream.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`dev-upstream: error while closing: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void main();
