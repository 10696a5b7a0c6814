import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { Provider } from 'oidc-provider';
import { BearerAuthException } from '@rsa/common';
import { DataRevision, RevisionCache } from '@rsa/database';
import { AccountService } from '../accounts/account.service';
import { OIDC_PROVIDER } from '../oidc/oidc-provider.factory';
import { RsaPrincipal } from './rsa-principal';

export const BEARER_REALM = 'rsa';

/** Validated tokens kept in memory (by SHA-256 of the token, never the value). */
const VALIDATED_TOKENS_MAX = 50_000;

/**
 * Validates RSA-issued access tokens against the OP's own storage: the token must exist, be
 * unexpired, belong to a client, a grant and an account that still exist (revoking a grant revokes
 * its tokens at once; a deleted account's tokens stop working), carry an end-user, and be neither
 * audience- nor sender-constrained.
 *
 * A validated token is remembered under the data revision read before its lookups, until the token
 * or its grant expires. Any revocation, removed grant, client or account moves the revision (database
 * triggers), and every request reads the revision afresh — so the next request after a revocation,
 * on any instance, validates against the database again. Failures are never remembered.
 */
@Injectable()
export class BearerTokenValidator {
  private readonly validated = new RevisionCache<RsaPrincipal>({ maxEntries: VALIDATED_TOKENS_MAX });

  constructor(
    @Inject(OIDC_PROVIDER) private readonly provider: Provider,
    private readonly accounts: AccountService,
    private readonly revisions: DataRevision,
  ) {}

  /** The principal of a valid token; otherwise a BearerAuthException (401 invalid_token). */
  async validate(token: string): Promise<RsaPrincipal> {
    const revision = await this.revisions.current();
    const key = createHash('sha256').update(token).digest('base64url');
    return this.validated.getOrLoad(key, revision, () => this.lookUp(token, revision));
  }

  private async lookUp(token: string, revision: string): Promise<{ value: RsaPrincipal; validUntil: number }> {
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
    const value: RsaPrincipal = {
      accountId,
      clientId,
      grantId,
      scopes: new Set((accessToken.scope ?? '').split(' ').filter(Boolean)),
      expiresAt: accessToken.exp!,
      revision,
    };
    return { value, validUntil: Math.min(accessToken.exp! * 1000, grant.exp ? grant.exp * 1000 : Infinity) };
  }
}
