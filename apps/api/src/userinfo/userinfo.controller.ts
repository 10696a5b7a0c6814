import { Controller, Get, HttpCode, Post, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { BEARER_REALM, CurrentPrincipal, RequireScopes, RsaBearerGuard, type RsaPrincipal, UpstreamTokenError } from '@rsa/auth';
import { BearerAuthException } from '@rsa/common';
import { UserClaims, UserinfoService } from '@rsa/userinfo';

/** OpenID Connect UserInfo (OIDC Core §5.3), served by the RSA with the user's upstream claims. */
@ApiTags('OpenID Connect')
@ApiBearerAuth()
@UseGuards(RsaBearerGuard)
@RequireScopes('openid')
@Controller('userinfo')
export class UserinfoController {
  constructor(private readonly userinfo: UserinfoService) {}

  @Get()
  @ApiOperation({
    summary: "The caller's claims",
    description:
      "Claims of the signed-in user as the upstream provider states them (fetched with the user's own upstream token, cached briefly), " +
      'released according to the scopes of the RSA access token. `sub` is the RSA subject. Requires the `openid` scope.',
  })
  @ApiOkResponse({ description: 'The claims', schema: { type: 'object', properties: { sub: { type: 'string' } }, additionalProperties: true } })
  get(@CurrentPrincipal() principal: RsaPrincipal, @Res({ passthrough: true }) res: Response): Promise<UserClaims> {
    return this.claims(principal, res);
  }

  @Post()
  @HttpCode(200)
  @ApiOperation({ summary: "The caller's claims (POST form, OIDC Core §5.3.1)" })
  post(@CurrentPrincipal() principal: RsaPrincipal, @Res({ passthrough: true }) res: Response): Promise<UserClaims> {
    return this.claims(principal, res);
  }

  private async claims(principal: RsaPrincipal, res: Response): Promise<UserClaims> {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    try {
      return await this.userinfo.claimsFor(principal);
    } catch (error) {
      if (error instanceof UpstreamTokenError && error.reason === 'owner_login_required') {
        // The RSA token is fine but the upstream session behind it is gone: the client must log the user in again.
        throw new BearerAuthException(BEARER_REALM, 'invalid_token', 'the upstream session has ended; sign in again');
      }
      throw error;
    }
  }
}
