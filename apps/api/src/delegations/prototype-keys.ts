import { BadRequestException, CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import type { Request } from 'express';
import type { Observable } from 'rxjs';

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Refuses a JSON body that carries `__proto__`, `constructor` or `prototype` keys at any depth, with
 * the validation pipe's error shape. JSON.parse keeps such keys as own properties; Nest's
 * ValidationPipe then deletes them in place before validating, so "unknown properties are refused"
 * would quietly not hold for them. An interceptor runs before the pipes, so it still sees them.
 */
@Injectable()
export class RejectPrototypeKeysInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    assertNoPrototypeKeys(context.switchToHttp().getRequest<Request>().body);
    return next.handle();
  }
}

export function assertNoPrototypeKeys(value: unknown, parent = ''): void {
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertNoPrototypeKeys(item, `${parent}[${index}]`));
    return;
  }
  if (!value || typeof value !== 'object') return;
  for (const key of Object.keys(value)) {
    const field = parent ? `${parent}.${key}` : key;
    if (PROTOTYPE_KEYS.has(key)) {
      throw new BadRequestException({ error: 'invalid_request', message: 'Validation failed', fields: [{ field, messages: [`property ${field} should not exist`] }] });
    }
    assertNoPrototypeKeys((value as Record<string, unknown>)[key], field);
  }
}
