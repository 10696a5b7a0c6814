import { createParamDecorator, ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';
import { createHash } from 'node:crypto';

declare module 'express-serve-static-core' {
  interface Request {
    /** `admin:<8 hex of the token's SHA-256>`: tells tokens apart in the audit trail without revealing them. */
    adminActor?: string;
  }
}

export function adminActorFor(token: string): string {
  return `admin:${createHash('sha256').update(token, 'utf8').digest('hex').slice(0, 8)}`;
}

/** The authenticated admin, as recorded in audit events (`actor` of DelegationService etc.). */
export const AdminActor = createParamDecorator((_data: unknown, ctx: ExecutionContext) => {
  const req = ctx.switchToHttp().getRequest<Request>();
  return { actor: req.adminActor!, requestId: req.requestId };
});

export interface AdminContext {
  actor: string;
  requestId?: string;
}
