import { ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { RsaConfig } from '@rsa/config';
import { BearerAuthException } from '@rsa/common';
import { REQUIRED_SCOPES, ScopeRequirement } from './require-scopes.decorator';
import { RsaPrincipal } from './rsa-principal';
import { BEARER_REALM, RSA_BEARER } from './rsa-bearer.strategy';

/**
 * Bearer authentication with RFC 6750 §3 responses. The stock AuthGuard answers a bare 401 without
 * a challenge; this one sets `WWW-Authenticate` (through BearerAuthException and the filter):
 * no token → 401 with no error code; malformed → 400 invalid_request; bad token → 401
 * invalid_token; missing scope → 403 insufficient_scope.
 */
@Injectable()
export class RsaBearerGuard extends AuthGuard(RSA_BEARER) {
  constructor(
    private readonly reflector: Reflector,
    private readonly config: RsaConfig,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    await super.canActivate(context);
    // Class and method requirements add up: a method can only require more than its controller.
    const required = this.reflector.getAllAndMerge<ScopeRequirement[]>(REQUIRED_SCOPES, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (required?.length) {
      const principal: RsaPrincipal = context.switchToHttp().getRequest().user;
      const names = required.map((s) => (typeof s === 'function' ? s(this.config) : s));
      if (!names.every((name) => principal.scopes.has(name))) {
        throw new BearerAuthException(BEARER_REALM, 'insufficient_scope', 'the access token lacks a required scope', names.join(' '));
      }
    }
    return true;
  }

  override handleRequest<T>(error: unknown, user: T, info: unknown): T {
    if (error) throw error;
    if (user) return user;
    const details = (info ?? {}) as { reason?: string; description?: string };
    if (details.reason === 'invalid_request') {
      throw new BearerAuthException(BEARER_REALM, 'invalid_request', details.description);
    }
    if (details.reason === 'missing') throw new BearerAuthException(BEARER_REALM);
    throw new BearerAuthException(BEARER_REALM, 'invalid_token', 'the access token is invalid');
  }
}
