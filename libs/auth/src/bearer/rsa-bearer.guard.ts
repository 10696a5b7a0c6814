import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { RsaConfig } from '@rsa/config';
import { BearerAuthException } from '@rsa/common';
import { BEARER_REALM, BearerTokenValidator } from './bearer-token-validator';
import { extractBearerToken } from './extract-bearer-token';
import { REQUIRED_SCOPES, ScopeRequirement } from './require-scopes.decorator';
import { RsaPrincipal } from './rsa-principal';

/**
 * Bearer authentication with RFC 6750 §3 responses (through BearerAuthException and the filter, which
 * set `WWW-Authenticate`): no token → 401 with no error code; malformed → 400 invalid_request; bad
 * token → 401 invalid_token; missing scope → 403 insufficient_scope. The principal is `req.user`.
 *
 * It calls the app's own BearerTokenValidator directly: no Passport, whose strategy registry is one
 * per process (two apps in one process would validate with whichever registered last).
 */
@Injectable()
export class RsaBearerGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly config: RsaConfig,
    private readonly validator: BearerTokenValidator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<Request & { user?: RsaPrincipal }>();
    const extracted = extractBearerToken(req);
    if (extracted.kind === 'missing') throw new BearerAuthException(BEARER_REALM);
    if (extracted.kind === 'invalid_request') throw new BearerAuthException(BEARER_REALM, 'invalid_request', extracted.description);
    const principal = await this.validator.validate(extracted.token);
    req.user = principal;
    // Class and method requirements add up: a method can only require more than its controller.
    const required = this.reflector.getAllAndMerge<ScopeRequirement[]>(REQUIRED_SCOPES, [context.getHandler(), context.getClass()]);
    if (required?.length) {
      const names = required.map((s) => (typeof s === 'function' ? s(this.config) : s));
      if (!names.every((name) => principal.scopes.has(name))) {
        throw new BearerAuthException(BEARER_REALM, 'insufficient_scope', 'the access token lacks a required scope', names.join(' '));
      }
    }
    return true;
  }
}
