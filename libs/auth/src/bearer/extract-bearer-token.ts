import type { Request } from 'express';

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

export type BearerExtraction =
  | { kind: 'token'; token: string }
  | { kind: 'missing' }
  | { kind: 'invalid_request'; description: string };

/**
 * Finds the bearer token: the `Authorization` header (RFC 6750 §2.1) or a form-encoded body
 * parameter (§2.2). Tokens in the URI query (§2.3) are refused: they end up in logs and history.
 * More than one method in one request is an invalid_request (§2).
 */
export function extractBearerToken(req: Request): BearerExtraction {
  const header = req.headers.authorization;
  // Media types are case-insensitive (RFC 9110 §8.3.1); the body parser matches them that way too.
  const contentType = (req.headers['content-type'] ?? '').toLowerCase();
  const bodyToken =
    req.method !== 'GET' && contentType.startsWith('application/x-www-form-urlencoded') && req.body && typeof req.body === 'object'
      ? (req.body as Record<string, unknown>).access_token
      : undefined;
  const queryToken = (req.query as Record<string, unknown> | undefined)?.access_token;

  if (queryToken !== undefined) {
    return { kind: 'invalid_request', description: 'access tokens are not accepted in the URI query' };
  }
  let headerToken: string | undefined;
  if (header !== undefined) {
    const match = /^(\S+)(?:\s+(.*))?$/.exec(header.trim());
    if (match && match[1].toLowerCase() === 'bearer') {
      const value = (match[2] ?? '').trim();
      if (!value || !B64TOKEN.test(value)) return { kind: 'invalid_request', description: 'malformed bearer token' };
      headerToken = value;
    }
    // Another scheme (Basic, ...) is simply not bearer authentication: treated as no token.
  }
  if (headerToken && bodyToken !== undefined) {
    return { kind: 'invalid_request', description: 'more than one method used to send the access token' };
  }
  if (headerToken) return { kind: 'token', token: headerToken };
  if (bodyToken !== undefined) {
    if (typeof bodyToken !== 'string' || !B64TOKEN.test(bodyToken)) {
      return { kind: 'invalid_request', description: 'malformed bearer token' };
    }
    return { kind: 'token', token: bodyToken };
  }
  return { kind: 'missing' };
}
