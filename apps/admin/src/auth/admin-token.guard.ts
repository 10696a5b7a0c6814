import { CanActivate, ExecutionContext, Injectable, SetMetadata, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { RsaConfig } from '@rsa/config';
import { AuditService } from '@rsa/database';
import { adminActorFor } from '../common/admin-actor';

const PUBLIC = 'admin:public';
/** Marks a route as reachable without an admin token (health only). */
export const Public = () => SetMetadata(PUBLIC, true);

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Static admin tokens (ADMIN_TOKENS, a list so they can be rotated). The presented token and every
 * configured one are hashed to the same length and compared in constant time, so neither the
 * content nor the length of a configured token leaks through timing. Every refusal is audited.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly digests: Buffer[];

  constructor(
    private readonly reflector: Reflector,
    private readonly audit: AuditService,
    config: RsaConfig,
  ) {
    this.digests = config.adminTokens.map(sha256);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(req.headers.authorization ?? '');
    const presented = sha256(match?.[1] ?? '');
    let ok = false;
    for (const digest of this.digests) ok = timingSafeEqual(presented, digest) || ok;
    if (!match || !ok) {
      await this.audit.record({
        actorType: 'anonymous',
        action: 'admin.auth_failed',
        targetType: 'admin_route',
        targetId: `${req.method} ${req.path}`.slice(0, 255),
        requestId: req.requestId,
        outcome: 'failure',
        details: { reason: match ? 'unknown_token' : req.headers.authorization ? 'malformed' : 'missing', ip: req.ip },
      });
      throw new UnauthorizedException({ error: 'unauthorized', message: 'a valid admin token is required' });
    }
    req.adminActor = adminActorFor(match[1]);
    return true;
  }
}
