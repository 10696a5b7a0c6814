import { DomainError } from './domain-error';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

/** Page size from a query value: default when absent, clamped to [1, max]. */
export function clampLimit(value: unknown, max = MAX_PAGE_SIZE, fallback = DEFAULT_PAGE_SIZE): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : fallback;
  return Math.min(Math.max(Math.trunc(n) || fallback, 1), max);
}

/** Opaque cursors: base64url JSON. Clients must not build them; a bad one is a 400. */
export function encodeCursor(position: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

export function decodeCursor<T extends Record<string, string | number>>(cursor: string | undefined, keys: (keyof T)[]): T | undefined {
  if (!cursor) return undefined;
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as T;
    if (value && typeof value === 'object' && keys.every((k) => typeof value[k] === 'string' || typeof value[k] === 'number')) return value;
  } catch {
    // fall through
  }
  throw new DomainError('VALIDATION', 'cursor is not valid', { field: 'cursor' });
}
