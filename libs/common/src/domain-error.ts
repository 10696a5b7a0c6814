/**
 * Base class for errors thrown by libs. `code` is stable (clients and tests match on it); apps map
 * codes to HTTP statuses in their exception filter. Never put a token or secret in the message.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Statuses for the codes every app knows; apps may add their own through the filter options. */
export const DEFAULT_ERROR_STATUS: Record<string, number> = {
  NOT_FOUND: 404,
  CONFLICT: 409,
  FORBIDDEN: 403,
  VALIDATION: 400,
  UNAVAILABLE: 503,
};
