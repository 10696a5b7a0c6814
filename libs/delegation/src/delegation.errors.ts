import { DomainError } from '@rsa/common';

/** Stable codes; apps map them to 400/404/409. Messages never say whether someone else's object exists. */
export class DelegationError extends DomainError {
  static notFound(what = 'delegation'): DelegationError {
    return new DelegationError('NOT_FOUND', `${what} not found`);
  }
  static invalid(field: string, message: string): DelegationError {
    return new DelegationError('VALIDATION', message, { field });
  }
  static conflict(message: string, details?: Record<string, unknown>): DelegationError {
    return new DelegationError('CONFLICT', message, details);
  }
}
