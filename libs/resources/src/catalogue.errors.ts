import { DomainError } from '@rsa/common';

/** Stable codes of the catalogue's admin operations; apps map them to 400/404/409. `field` names the input at fault. */
export class CatalogueError extends DomainError {
  static notFound(what: string, field?: string): CatalogueError {
    return new CatalogueError('NOT_FOUND', `${what} not found`, field ? { field } : undefined);
  }
  static invalid(field: string, message: string): CatalogueError {
    return new CatalogueError('VALIDATION', message, { field });
  }
  static conflict(message: string, details?: Record<string, unknown>): CatalogueError {
    return new CatalogueError('CONFLICT', message, details);
  }
}

const PG_UNIQUE_VIOLATION = '23505';
const PG_FOREIGN_KEY_VIOLATION = '23503';

/** True for a PostgreSQL unique violation (TypeORM copies the driver's `code` onto QueryFailedError). */
export const isUniqueViolation = (error: unknown): boolean => (error as { code?: string })?.code === PG_UNIQUE_VIOLATION;
export const isForeignKeyViolation = (error: unknown): boolean => (error as { code?: string })?.code === PG_FOREIGN_KEY_VIOLATION;
