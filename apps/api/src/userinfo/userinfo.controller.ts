import { Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { BEARER_REALM, CurrentPrincipal, RequireScopes, RsaBearerGuard, type RsaPrincipal, UpstreamTokenError } from '@rsa/auth';
import { BearerAuthException } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { RelatedClaimService, UserClaims, UserinfoService } from '@rsa/userinfo';

/** OpenID Connect UserInfo (OIDC Core §5.3), served by the RSA with the user's upstream claims. */
@ApiTags('OpenID Connect')
@ApiBearerAuth()
@UseGuards(RsaBearerGuard)
@RequireScopes('openid')
@Controller('userinfo')
export class UserinfoController {
  constructor(
    private readonly userinfo: UserinfoService,
    private readonly related: RelatedClaimService,
    private readonly config: RsaConfig,
  ) {}

  @Get()
  @ApiOperation({
    summary: "The caller's claims",
    description:
      "Claims of the signed-in user as the upstream provider states them (fetched with the user's own upstream token, cached briefly), " +
      'released according to the scopes of the RSA access token. `sub` is the RSA subject. Requires the `openid` scope. ' +
      'With the `fpx_rot` scope (SCOPE_RELATED) and RESOURCE_MANAGEMENT_ENABLED, adds `related`: one entry per owner who delegated ' +
      'resources to the caller, `{ sub, name, email, status: available|unavailable, reason?, resources: [{ id, type, name, scopes }] }`. ' +
      "An owner whose upstream tokens cannot be used is `unavailable` with a reason; the call still succeeds.",
  })
  @ApiOkResponse({ description: 'The claims', schema: { type: 'object', properties: { sub: { type: 'string' } }, additionalProperties: true } })
  get(@CurrentPrincipal() principal: RsaPrincipal, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<UserClaims | string> {
    return this.claims(principal, req, res);
  }

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: "The caller's claims (POST form, OIDC Core §5.3.1)" })
  post(@CurrentPrincipal() principal: RsaPrincipal, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<UserClaims | string> {
    return this.claims(principal, req, res);
  }

  /** The claims, or with `related` their JSON text (sent as application/json). */
  private async claims(principal: RsaPrincipal, req: Request, res: Response): Promise<UserClaims | string> {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    const withRelated = this.config.resourceManagement.enabled && principal.scopes.has(this.config.scopes.related);
    try {
      // The caller's own claims and the owners' details are fetched side by side.
      const [claims, related] = await Promise.all([
        this.userinfo.claimsFor(principal),
        withRelated ? this.related.relatedFor(principal.accountId, { requestId: req.requestId, revision: principal.revision }) : undefined,
      ]);
      if (!related) return claims;
      // `related` is often the same claim as the caller's previous request (see RelatedClaimService):
      // its JSON is reused instead of serialized again for every request.
      res.type('application/json');
      const own = JSON.stringify(claims);
      return `${own.slice(0, -1)}${own.length > 2 ? ',' : ''}"related":${this.related.toJson(related)}}`;
    } catch (error) {
      if (error instanceof UpstreamTokenError && error.reason === 'owner_login_required') {
        // The RSA token is fine but the upstream session behind it is gone: the client must log the user in again.
        throw new BearerAuthException(BEARER_REALM, 'invalid_token', 'the upstream session has ended; sign in again');
      }
      throw error;
    }
  }
}
