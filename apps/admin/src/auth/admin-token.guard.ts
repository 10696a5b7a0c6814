import { CanActivate, ExecutionContext, Injectable, SetMetadata, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { createHash, timingSafeEqual } from 'node:crypto';
import { RsaConfig } from '@rsa/config';

const PUBLIC = 'admin:public';
/** Marks a route as reachable without an admin token (health only). */
export const Public = () => SetMetadata(PUBLIC, true);

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Static admin tokens (ADMIN_TOKENS, a list so they can be rotated). The presented token and every
 * configured one are hashed to the same length and compared in constant time, so neither the
 * content nor the length of a configured token leaks through timing.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly digests: Buffer[];

  constructor(
    private readonly reflector: Reflector,
    config: RsaConfig,
  ) {
    this.digests = config.adminTokens.map(sha256);
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<Request>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    const presented = sha256(match?.[1] ?? '');
    let ok = false;
    for (const digest of this.digests) ok = timingSafeEqual(presented, digest) || ok;
    if (!match || !ok) {
      throw new UnauthorizedException({ error: 'unauthorized', message: 'a valid admin token is required' });
    }
    return true;
  }
}
