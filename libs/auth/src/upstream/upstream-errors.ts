import { DomainError } from '@rsa/common';

/**
 * Why an upstream token could not be used. The codes double as the `reason` values of the
 * Resource Management API (`owner_login_required`, `upstream_error`, `upstream_timeout`).
 */
export type UpstreamFailureReason = 'owner_login_required' | 'upstream_error' | 'upstream_timeout';

export class UpstreamTokenError extends DomainError {
  constructor(
    readonly reason: UpstreamFailureReason,
    message: string,
  ) {
    super(`UPSTREAM.${reason.toUpperCase()}`, message);
  }
}

/** The upstream answered with an OAuth error (RFC 6749 §5.2), e.g. `invalid_grant`. */
export class UpstreamOAuthError extends DomainError {
  constructor(
    readonly oauthError: string,
    readonly status: number | undefined,
    description?: string,
  ) {
    super('UPSTREAM.OAUTH_ERROR', `upstream answered ${oauthError}${description ? `: ${description}` : ''}`);
  }
}

/** The upstream did not answer in time. */
export class UpstreamTimeoutError extends DomainError {
  constructor(what: string, timeoutMs: number) {
    super('UPSTREAM.TIMEOUT', `${what}: no answer from the upstream within ${timeoutMs} ms`);
  }
}

/** The upstream could not be reached, answered 5xx, or answered something we could not use. */
export class UpstreamUnavailableError extends DomainError {
  constructor(
    what: string,
    cause: string,
    /** Set when the upstream answered an HTTP status we do not accept (5xx, 429, a redirect). */
    readonly http?: { status: number; retryAfterMs?: number },
  ) {
    super('UPSTREAM.UNAVAILABLE', `${what}: ${cause}`);
  }

  /** A 5xx or 429: the upstream says "not now", so a later attempt may succeed. */
  get transient(): boolean {
    return !!this.http && (this.http.status >= 500 || this.http.status === 429);
  }
}

/**
 * Whether a failed upstream call may be tried again: timeouts and 5xx/429 answers. Never an OAuth
 * error (`invalid_grant` is final), a redirect, a body we could not use, or a connection reset (the
 * upstream may have committed a rotation whose answer was lost: replaying would end the grant).
 */
export function isTransientUpstreamError(error: unknown): boolean {
  return error instanceof UpstreamTimeoutError || (error instanceof UpstreamUnavailableError && error.transient);
}

/** The upstream userinfo describes a different user than the one whose token was used (OIDC Core §5.3.2). */
export class UpstreamSubjectMismatchError extends DomainError {
  constructor(what: string) {
    super('UPSTREAM.SUBJECT_MISMATCH', `${what}: the upstream answered for a different subject`);
  }
}
