import { ArgumentMetadata, BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

function flatten(errors: ValidationError[], parent = ''): { field: string; messages: string[] }[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = e.constraints ? [{ field, messages: Object.values(e.constraints) }] : [];
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
/** A UTF-16 surrogate without its other half: JSON can carry it (`"\ud800"`), UTF-8 and PostgreSQL cannot. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const refuse = (field: string, message: string) =>
  new BadRequestException({ error: 'invalid_request', message: 'Validation failed', fields: [{ field: field || '(body)', messages: [message] }] });

/**
 * Refuses, at any depth and with the validation error shape:
 * - `__proto__`, `constructor` or `prototype` keys: JSON.parse keeps them as own properties and
 *   class-transformer skips them, so whitelisting never sees them — they would be dropped silently
 *   instead of refused like any unknown property;
 * - NUL characters and lone surrogates (`"\ud800"`) in strings or keys: PostgreSQL text and json
 *   cannot hold them, so they would reach the database only to fail there as a 500.
 */
export function assertNoPrototypeKeys(value: unknown, parent = ''): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw refuse(parent, `${parent || 'value'} must not contain NUL characters`);
    if (LONE_SURROGATE.test(value)) throw refuse(parent, `${parent || 'value'} must be well-formed Unicode (no lone surrogates)`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertNoPrototypeKeys(item, `${parent}[${index}]`));
    return;
  }
  if (!value || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    const field = parent ? `${parent}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) throw refuse(field, `property ${field} should not exist`);
    if (key.includes('\u0000')) throw refuse(parent, 'property names must not contain NUL characters');
    if (LONE_SURROGATE.test(key)) throw refuse(parent, 'property names must be well-formed Unicode');
    assertNoPrototypeKeys((value as Record<string, unknown>)[key], field);
  }
}

/** ValidationPipe that first refuses prototype keys, NUL characters and lone surrogates in bodies and query strings (before it strips them). */
class RsaValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' || metadata.type === 'query') assertNoPrototypeKeys(value);
    if (metadata.type === 'param') assertNoPrototypeKeys(value, metadata.data ?? 'param');
    return super.transform(value, metadata);
  }
}

/** The one ValidationPipe (APP_PIPE): unknown properties (prototype keys included) are refused, each bad field is named. */
export function createValidationPipe(): ValidationPipe {
  return new RsaValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    forbidUnknownValues: true,
    exceptionFactory: (errors) =>
      new BadRequestException({ error: 'invalid_request', message: 'Validation failed', fields: flatten(errors) }),
  });
}
