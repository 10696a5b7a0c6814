import { DomainError } from '@rsa/common';

/** Errors of the admin services, with the codes every app maps: NOT_FOUND 404, CONFLICT 409, VALIDATION 400. */
export class AdminError extends DomainError {
  static notFound(what: string): AdminError {
    return new AdminError('NOT_FOUND', `${what} not found`);
  }
  static invalid(field: string, message: string): AdminError {
    return new AdminError('VALIDATION', message, { field });
  }
  static conflict(message: string, details?: Record<string, unknown>): AdminError {
    return new AdminError('CONFLICT', message, details);
  }
}

/** PostgreSQL SQLSTATE of a unique violation. */
export const PG_UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: unknown; driverError?: { code?: unknown } };
  return e?.code === PG_UNIQUE_VIOLATION || e?.driverError?.code === PG_UNIQUE_VIOLATION;
}
