import { createHash } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { json } from './http';

/** The challenge of a request that carried no bearer token at all (RFC 6750 §3.1: no error code). */
export const BARE_CHALLENGE = 'Bearer realm="rsa"';

/** The oidc_payload id of an opaque access token (the adapter stores a digest, never the value). */
export const tokenDigest = (token: string) => createHash('sha256').update(token).digest('base64url');

export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * An RFC 6750 error answer: the status, a `WWW-Authenticate: Bearer realm="rsa", error="…"` challenge
 * (with optional description and scope), a JSON body naming the same error, `no-store`, no stack trace.
 * (The same checks as bearer-auth.e2e-spec.ts, shared here for the security suite.)
 */
export async function expectBearerError(res: Response, status: number, error: BearerErrorCode): Promise<Record<string, unknown>> {
  expect({ status: res.status, error }).toEqual({ status, error });
  const challenge = res.headers.get('www-authenticate');
  expect(challenge).toMatch(new RegExp(`^Bearer realm="rsa", error="${error}"(, error_description="[^"]*")?(, scope="[^"]*")?$`));
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = await json(res);
  expect(body.error).toBe(error);
  expect(JSON.stringify(body)).not.toMatch(/\bat \S+ \(|\.ts:\d+/);
  return body;
}

/** Moves an RSA access token's expiry into the past (payload `exp` and row), as if time had passed. */
export async function expireAccessToken(dataSource: DataSource, token: string): Promise<void> {
  const past = Math.floor(Date.now() / 1000) - 60;
  const [, affected] = await dataSource.query(
    `UPDATE oidc_payload SET expires_at = now() - interval '1 minute', payload = jsonb_set(payload, '{exp}', to_jsonb($1::bigint))
     WHERE model = 'AccessToken' AND id = $2`,
    [past, tokenDigest(token)],
  );
  if (affected !== 1) throw new Error('access token row not found');
}
