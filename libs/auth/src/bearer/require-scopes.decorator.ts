import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { RsaConfig } from '@rsa/config';
import { RsaPrincipal } from './rsa-principal';

/** A scope name, or a function of the configuration for scopes whose names are configurable. */
export type ScopeRequirement = string | ((config: RsaConfig) => string);

export const REQUIRED_SCOPES = 'rsa:required-scopes';

/** Every listed scope must have been granted to the access token, else 403 insufficient_scope. */
export const RequireScopes = (...scopes: ScopeRequirement[]) => SetMetadata(REQUIRED_SCOPES, scopes);

/** The validated caller (set by RsaBearerGuard). */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): RsaPrincipal => ctx.switchToHttp().getRequest().user,
);
