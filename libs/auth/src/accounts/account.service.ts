import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { RsaConfig } from '@rsa/config';
import { AccountEntity, AuditService } from '@rsa/database';
import { UpstreamTokenSet } from '../upstream/upstream-client.service';
import { UpstreamTokenVault } from '../vault/upstream-token-vault.service';

const str = (value: unknown): string | null => (typeof value === 'string' && value.length ? value : null);

export type LoginListener = (account: AccountEntity) => Promise<unknown>;

/** Accounts as the upstream provider describes them. */
@Injectable()
export class AccountService {
  private readonly logger = new Logger(AccountService.name);
  private readonly loginListeners: LoginListener[] = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly vault: UpstreamTokenVault,
    private readonly audit: AuditService,
    private readonly config: RsaConfig,
  ) {}

  /**
   * A completed upstream login: upserts the account by upstream `sub`, stores its upstream tokens and
   * writes the audit event, all in one transaction.
   */
  /**
   * Runs after every committed login (resource discovery, binding pending delegations). Listeners
   * live in higher libs; a failing listener is logged and never fails the login.
   */
  onLogin(listener: LoginListener): void {
    this.loginListeners.push(listener);
  }

  async recordLogin(
    claims: Record<string, unknown> & { sub: string },
    tokens: UpstreamTokenSet,
    context: { requestId?: string; clientId?: string } = {},
  ): Promise<AccountEntity> {
    const account = await this.upsertWithTokens(claims, tokens, context);
    await Promise.all(
      this.loginListeners.map((listener) =>
        listener(account).catch((error: Error) => this.logger.warn(`after-login step failed for account ${account.id}: ${error.message}`)),
      ),
    );
    return account;
  }

  private upsertWithTokens(
    claims: Record<string, unknown> & { sub: string },
    tokens: UpstreamTokenSet,
    context: { requestId?: string; clientId?: string },
  ): Promise<AccountEntity> {
    return this.dataSource.transaction(async (manager) => {
      const now = new Date();
      const result = await manager
        .createQueryBuilder()
        .insert()
        .into(AccountEntity)
        .values({
          provider: this.config.upstream.issuer,
          sub: claims.sub,
          email: str(claims.email)?.toLowerCase() ?? null,
          emailVerified: claims.email_verified === true,
          name: str(claims.name),
          givenName: str(claims.given_name),
          familyName: str(claims.family_name),
          firstLoginAt: now,
          lastLoginAt: now,
        })
        .orUpdate(['email', 'email_verified', 'name', 'given_name', 'family_name', 'last_login_at', 'updated_at'], ['provider', 'sub'])
        .returning(['id'])
        .execute();
      const accountId = (result.raw as { id: string }[])[0].id;
      await this.vault.storeLoginTokens(manager, accountId, tokens);
      await this.audit.record(
        {
          actorType: 'user',
          actorId: accountId,
          action: 'account.login',
          targetType: 'account',
          targetId: accountId,
          requestId: context.requestId,
          details: { client_id: context.clientId ?? null, refresh_token_issued: Boolean(tokens.refreshToken) },
        },
        manager,
      );
      return manager.findOneOrFail(AccountEntity, { where: { id: accountId } });
    });
  }

  findById(id: string): Promise<AccountEntity | null> {
    return this.dataSource.getRepository(AccountEntity).findOne({ where: { id } });
  }
}
