import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Provider } from 'oidc-provider';
import { BearerAuthException } from '@rsa/common';
import { AccountService } from '../accounts/account.service';
import { OIDC_PROVIDER } from '../oidc/oidc-provider.factory';
import { BearerTokenStrategyBase } from './bearer-token.strategy-base';
import { RsaPrincipal } from './rsa-principal';

export const BEARER_REALM = 'rsa';
export const RSA_BEARER = 'rsa-bearer';

/**
 * Validates RSA-issued access tokens against the OP's own storage: the token must exist, be
 * unexpired, belong to a client, a grant and an account that still exist (revoking a grant revokes
 * its tokens at once; a deleted account's tokens stop working), carry an end-user, and be neither
 * audience- nor sender-constrained.
 */
@Injectable()
export class RsaBearerStrategy extends PassportStrategy(BearerTokenStrategyBase, RSA_BEARER) {
  constructor(
    @Inject(OIDC_PROVIDER) private readonly provider: Provider,
    private readonly accounts: AccountService,
  ) {
    super();
  }

  async validate(token: string): Promise<RsaPrincipal> {
    const invalid = (description: string) => new BearerAuthException(BEARER_REALM, 'invalid_token', description);
    const accessToken = await this.provider.AccessToken.find(token);
    if (!accessToken || accessToken.isExpired) throw invalid('the access token is invalid or has expired');
    if (accessToken.aud !== undefined || accessToken.isSenderConstrained()) {
      throw invalid('the access token is not meant for this resource');
    }
    const { accountId, clientId, grantId } = accessToken;
    if (!accountId || !clientId || !grantId) throw invalid('the access token has no end-user');
    const [client, grant, account] = await Promise.all([
      this.provider.Client.find(clientId),
      this.provider.Grant.find(grantId),
      this.accounts.findById(accountId),
    ]);
    if (!client || !grant || !account) throw invalid('the access token has been revoked');
    return {
      accountId,
      clientId,
      grantId,
      scopes: new Set((accessToken.scope ?? '').split(' ').filter(Boolean)),
      expiresAt: accessToken.exp!,
    };
  }
}
