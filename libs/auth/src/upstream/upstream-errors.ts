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
  constructor(what: string, cause: string) {
    super('UPSTREAM.UNAVAILABLE', `${what}: ${cause}`);
  }
}

/** The upstream userinfo describes a different user than the one whose token was used (OIDC Core §5.3.2). */
export class UpstreamSubjectMismatchError extends DomainError {
  constructor(what: string) {
    super('UPSTREAM.SUBJECT_MISMATCH', `${what}: the upstream answered for a different subject`);
  }
}
