import { Injectable } from '@nestjs/common';
import { AccountService, RsaPrincipal, UpstreamClient, UpstreamTokenVault } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { DomainError } from '@rsa/common';
import { TtlCache } from './ttl-cache';

/** Which upstream claims each RSA scope releases (OIDC Core §5.4). */
const CLAIMS_BY_SCOPE: Record<string, string[]> = {
  profile: ['name', 'given_name', 'family_name', 'middle_name', 'nickname', 'preferred_username', 'picture', 'locale', 'zoneinfo', 'updated_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
};

export type UserClaims = Record<string, unknown> & { sub: string };

/**
 * The caller's claims for `/userinfo`: fetched from the upstream userinfo with the user's own
 * upstream token (through the vault, refreshed if needed), cached briefly per account, filtered by
 * the scopes of the RSA token, with `sub` replaced by the RSA's subject.
 */
@Injectable()
export class UserinfoService {
  private readonly cache: TtlCache<Record<string, unknown>>;

  constructor(
    private readonly vault: UpstreamTokenVault,
    private readonly upstream: UpstreamClient,
    private readonly accounts: AccountService,
    config: RsaConfig,
  ) {
    this.cache = new TtlCache(config.userinfoCacheTtlSeconds * 1000);
  }

  async claimsFor(principal: RsaPrincipal): Promise<UserClaims> {
    const upstreamClaims = await this.upstreamClaims(principal.accountId);
    const released: UserClaims = { sub: principal.accountId };
    for (const scope of principal.scopes) {
      for (const claim of CLAIMS_BY_SCOPE[scope] ?? []) {
        if (upstreamClaims[claim] !== undefined) released[claim] = upstreamClaims[claim];
      }
    }
    return released;
  }

  /** The account's upstream userinfo, from the cache when fresh. */
  async upstreamClaims(accountId: string): Promise<Record<string, unknown>> {
    const cached = this.cache.get(accountId);
    if (cached) return cached;
    const account = await this.accounts.findById(accountId);
    if (!account) throw new DomainError('NOT_FOUND', 'account not found');
    const accessToken = await this.vault.getUsableAccessToken(accountId);
    const claims = await this.upstream.fetchUserInfo(accessToken, account.sub);
    this.cache.set(accountId, claims);
    return claims;
  }
}

