import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, EntityManager, In } from 'typeorm';
import { RsaConfig } from '@rsa/config';
import { AuditService, RefreshOutcome, StoredTokenStatus, TokenStatus, UpstreamTokenEntity } from '@rsa/database';
import { columnAad, TokenCipher } from '../crypto/token-cipher';
import { UpstreamClient, UpstreamTokenSet } from '../upstream/upstream-client.service';
import {
  UpstreamOAuthError,
  UpstreamTimeoutError,
  UpstreamTokenError,
  UpstreamFailureReason,
} from '../upstream/upstream-errors';

const TABLE = 'upstream_token';
/** Used when the upstream omits `expires_in` (RFC 6749 §5.1 only recommends it). */
const DEFAULT_EXPIRES_IN_SECONDS = 300;

/**
 * Keeps each account's upstream tokens encrypted and usable.
 *
 * One refresh per account at a time, even with many concurrent callers and many instances:
 * 1. in-process single flight: concurrent callers in this instance share one promise;
 * 2. cross-instance lease: an instance claims the row with a conditional UPDATE
 *    (`refresh_lease_until` in the past or null), calls the upstream WITHOUT holding a database
 *    connection or transaction, then stores the new tokens and clears the lease in one statement;
 * 3. everyone else polls the row and returns the fresh token once the version moves.
 * A lease whose holder died expires after the upstream timeout plus a margin, so nothing is stuck.
 */
@Injectable()
export class UpstreamTokenVault {
  private readonly logger = new Logger(UpstreamTokenVault.name);
  private readonly instanceId = randomUUID();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly leaseMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
    private readonly upstream: UpstreamClient,
    private readonly config: RsaConfig,
    private readonly audit: AuditService,
  ) {
    // Long enough for one upstream call; short enough that a crashed holder blocks nobody for long.
    this.leaseMs = config.upstream.timeoutMs + 5000;
  }

  private get provider(): string {
    return this.config.upstream.issuer;
  }

  /** Stores the tokens of a fresh login (inside the login transaction). */
  async storeLoginTokens(manager: EntityManager, accountId: string, tokens: UpstreamTokenSet): Promise<void> {
    const now = Date.now();
    await manager
      .createQueryBuilder()
      .insert()
      .into(UpstreamTokenEntity)
      .values({
        accountId,
        provider: this.provider,
        ...this.encryptTokenColumns(accountId, tokens, null),
        scope: tokens.scope ?? '',
        accessTokenExpiresAt: new Date(now + (tokens.expiresIn ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000),
        refreshTokenExpiresAt: tokens.refreshExpiresIn ? new Date(now + tokens.refreshExpiresIn * 1000) : null,
        status: 'valid',
        lastRefreshOutcome: null,
        lastRefreshError: null,
        consecutiveFailures: 0,
        refreshLeaseUntil: null,
        refreshLeaseOwner: null,
      })
      .orUpdate(
        [
          'access_token_enc',
          'refresh_token_enc',
          'id_token_enc',
          'scope',
          'access_token_expires_at',
          'refresh_token_expires_at',
          'status',
          'last_refresh_outcome',
          'last_refresh_error',
          'consecutive_failures',
          'refresh_lease_until',
          'refresh_lease_owner',
        ],
        ['account_id', 'provider'],
      )
      .execute();
    // The version moves on every change of token material, so waiters notice the new login too.
    await manager.increment(UpstreamTokenEntity, { accountId, provider: this.provider }, 'version', 1);
  }

  /**
   * An upstream access token for the account that is not about to expire, refreshing it if needed.
   * Throws UpstreamTokenError with reason `owner_login_required`, `upstream_error` or `upstream_timeout`.
   */
  async getUsableAccessToken(accountId: string, preloaded?: UpstreamTokenEntity | null): Promise<string> {
    if (preloaded === null) throw new UpstreamTokenError('owner_login_required', 'no upstream tokens stored for this account');
    const row = preloaded ?? (await this.load(accountId));
    const usable = this.usableAccessToken(row);
    if (usable) return usable;
    return this.singleFlight(accountId, false, row.version);
  }

  /**
   * The token rows of several accounts in one query, to pass to getUsableAccessToken: reading N
   * owners' tokens costs one query, not N. Accounts without tokens are absent from the map.
   */
  async loadMany(accountIds: string[]): Promise<Map<string, UpstreamTokenEntity>> {
    if (!accountIds.length) return new Map();
    const rows = await this.dataSource
      .getRepository(UpstreamTokenEntity)
      .find({ where: { accountId: In(accountIds), provider: this.provider } });
    return new Map(rows.map((row) => [row.accountId, row]));
  }

  /**
   * Whether each account's upstream tokens can be used right now, from stored state only: one query,
   * no upstream call. `usable` covers `valid` and `refreshable`; otherwise `reason` says why not.
   */
  async statusesFor(accountIds: string[]): Promise<Map<string, { status: TokenStatus; usable: boolean; reason?: UpstreamFailureReason }>> {
    const rows = await this.loadMany(accountIds);
    const now = new Date();
    return new Map(
      accountIds.map((id) => {
        const row = rows.get(id);
        const status: TokenStatus = row ? this.effectiveStatus(row, now) : 'reauth_required';
        const usable = status === 'valid' || status === 'refreshable';
        const reason: UpstreamFailureReason | undefined = usable
          ? undefined
          : status === 'refresh_failing'
            ? row?.lastRefreshOutcome === 'upstream_timeout'
              ? 'upstream_timeout'
              : 'upstream_error'
            : 'owner_login_required';
        return [id, { status, usable, ...(reason ? { reason } : {}) }];
      }),
    );
  }

  /** Refreshes now even if the access token is still valid (admin "force refresh"). */
  async forceRefresh(accountId: string): Promise<void> {
    await this.singleFlight(accountId, true);
  }

  /** The status an operator sees; `refreshable` is derived from the expiry at read time. */
  effectiveStatus(row: Pick<UpstreamTokenEntity, 'status' | 'accessTokenExpiresAt' | 'refreshTokenEnc' | 'refreshTokenExpiresAt'>, now = new Date()): TokenStatus {
    if (row.status !== 'valid') return row.status;
    if (row.accessTokenExpiresAt > now) return 'valid';
    const refreshAlive = row.refreshTokenEnc && (!row.refreshTokenExpiresAt || row.refreshTokenExpiresAt > now);
    return refreshAlive ? 'refreshable' : 'reauth_required';
  }

  /** `seenVersion`: the version of the row the caller found unusable (compared against, not re-read). */
  private singleFlight(accountId: string, force = false, seenVersion?: number): Promise<string> {
    const existing = this.inflight.get(accountId);
    if (existing) return existing;
    const promise = this.refreshAcrossInstances(accountId, force, seenVersion).finally(() => this.inflight.delete(accountId));
    this.inflight.set(accountId, promise);
    return promise;
  }

  private async refreshAcrossInstances(accountId: string, force: boolean, seenVersion?: number): Promise<string> {
    // Re-reading here could already see another instance's refresh, which would then look like
    // our starting point and be refreshed again.
    const startVersion = seenVersion ?? (await this.load(accountId)).version;
    const deadline = Date.now() + this.leaseMs + this.config.upstream.timeoutMs;
    let delay = 20;
    for (;;) {
      if (await this.claimLease(accountId)) {
        return this.refreshHoldingLease(accountId, startVersion, force);
      }
      // Another instance is refreshing: wait for its result instead of refreshing again.
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
      const row = await this.load(accountId);
      if (row.version !== startVersion) {
        if (row.lastRefreshOutcome && row.lastRefreshOutcome !== 'success') {
          throw failureFor(row.lastRefreshOutcome, 'the concurrent refresh failed');
        }
        // Tokens newer than the ones we came for: take them unless already expired (no skew), or
        // an upstream whose tokens live shorter than the skew would be refreshed once per waiter.
        const usable = this.usableAccessToken(row, false, 0);
        if (usable) return usable;
      }
      if (Date.now() > deadline) {
        throw new UpstreamTokenError('upstream_timeout', 'timed out waiting for a concurrent refresh');
      }
    }
  }

  /** Conditional UPDATE: true when this instance now holds the refresh lease for the account. */
  private async claimLease(accountId: string): Promise<boolean> {
    const result = await this.dataSource
      .createQueryBuilder()
      .update(UpstreamTokenEntity)
      .set({
        refreshLeaseOwner: this.instanceId,
        refreshLeaseUntil: () => `now() + interval '${Math.ceil(this.leaseMs)} milliseconds'`,
        updatedAt: () => 'updated_at',
      })
      .where('account_id = :accountId AND provider = :provider', { accountId, provider: this.provider })
      .andWhere('(refresh_lease_until IS NULL OR refresh_lease_until < now())')
      .execute();
    return (result.affected ?? 0) > 0;
  }

  private async refreshHoldingLease(accountId: string, startVersion: number, force: boolean): Promise<string> {
    try {
      return await this.refreshUnderLease(accountId, startVersion, force);
    } catch (error) {
      // Whatever failed (a ciphertext that does not decrypt, a database error), never leave the lease
      // to expire on its own: every caller on every instance would wait for it. A no-op when the
      // failure was already recorded (recordFailure clears the lease).
      await this.releaseLease(accountId).catch(() => undefined);
      throw error;
    }
  }

  private async refreshUnderLease(accountId: string, startVersion: number, force: boolean): Promise<string> {
    const row = await this.load(accountId);
    // Someone may have refreshed (or the owner logged in) between our read and our claim: use their
    // result unless already expired (no skew, see refreshAcrossInstances).
    const newerTokens = row.version !== startVersion && row.status === 'valid';
    const usable = newerTokens ? this.usableAccessToken(row, true, 0) : force ? null : this.usableAccessToken(row, true);
    if (usable) {
      await this.releaseLease(accountId);
      return usable;
    }
    if (row.status === 'reauth_required' || row.status === 'revoked') {
      await this.releaseLease(accountId);
      throw new UpstreamTokenError('owner_login_required', `upstream token is ${row.status}`);
    }
    const refreshExpired = row.refreshTokenExpiresAt && row.refreshTokenExpiresAt <= new Date();
    if (!row.refreshTokenEnc || refreshExpired) {
      await this.recordFailure(row, 'reauth_required', 'invalid_grant', 'no usable refresh token');
      throw new UpstreamTokenError('owner_login_required', 'no usable refresh token');
    }
    const refreshToken = this.cipher.decrypt(row.refreshTokenEnc, columnAad(TABLE, 'refresh_token', accountId));
    let tokens: UpstreamTokenSet;
    try {
      tokens = await this.upstream.refresh(refreshToken);
    } catch (error) {
      if (error instanceof UpstreamOAuthError && error.oauthError === 'invalid_grant') {
        // The grant is gone (expired, revoked, or a rotated token was replayed): only a new login helps.
        await this.recordFailure(row, 'reauth_required', 'invalid_grant', error.message);
        throw new UpstreamTokenError('owner_login_required', 'the upstream refused the refresh token');
      }
      const outcome: RefreshOutcome = error instanceof UpstreamTimeoutError ? 'upstream_timeout' : 'upstream_error';
      await this.recordFailure(row, 'refresh_failing', outcome, (error as Error).message);
      throw failureFor(outcome, (error as Error).message);
    }
    await this.storeRefreshed(row, tokens);
    return tokens.accessToken;
  }

  private async storeRefreshed(row: UpstreamTokenEntity, tokens: UpstreamTokenSet): Promise<void> {
    const now = Date.now();
    // One statement: the rotated refresh token and the new access token commit together, with the lease.
    await this.dataSource
      .createQueryBuilder()
      .update(UpstreamTokenEntity)
      .set({
        ...this.encryptTokenColumns(row.accountId, tokens, row),
        scope: tokens.scope ?? row.scope,
        accessTokenExpiresAt: new Date(now + (tokens.expiresIn ?? DEFAULT_EXPIRES_IN_SECONDS) * 1000),
        refreshTokenExpiresAt: tokens.refreshExpiresIn ? new Date(now + tokens.refreshExpiresIn * 1000) : tokens.refreshToken ? null : row.refreshTokenExpiresAt,
        status: 'valid',
        lastRefreshAt: () => 'now()',
        lastRefreshOutcome: 'success',
        lastRefreshError: null,
        consecutiveFailures: 0,
        refreshLeaseUntil: null,
        refreshLeaseOwner: null,
        version: () => 'version + 1',
      })
      .where('id = :id', { id: row.id })
      .execute();
  }

  private async recordFailure(
    row: UpstreamTokenEntity,
    status: StoredTokenStatus,
    outcome: RefreshOutcome,
    message: string,
  ): Promise<void> {
    this.logger.warn(`refresh for account ${row.accountId} failed: ${outcome}`);
    await this.dataSource.transaction(async (manager) => {
      await manager
        .createQueryBuilder()
        .update(UpstreamTokenEntity)
        .set({
          status,
          lastRefreshAt: () => 'now()',
          lastRefreshOutcome: outcome,
          lastRefreshError: message.slice(0, 1000),
          consecutiveFailures: () => 'consecutive_failures + 1',
          refreshLeaseUntil: null,
          refreshLeaseOwner: null,
          version: () => 'version + 1',
        })
        .where('id = :id', { id: row.id })
        .execute();
      await this.audit.record(
        {
          actorType: 'system',
          action: status === 'reauth_required' ? 'upstream_token.reauth_required' : 'upstream_token.refresh_failed',
          targetType: 'account',
          targetId: row.accountId,
          outcome: 'failure',
          details: { outcome, previous_status: row.status },
        },
        manager,
      );
    });
  }

  private async releaseLease(accountId: string): Promise<void> {
    await this.dataSource.getRepository(UpstreamTokenEntity).update(
      { accountId, provider: this.provider, refreshLeaseOwner: this.instanceId },
      { refreshLeaseOwner: null, refreshLeaseUntil: null },
    );
  }

  private async load(accountId: string): Promise<UpstreamTokenEntity> {
    const row = await this.dataSource
      .getRepository(UpstreamTokenEntity)
      .findOne({ where: { accountId, provider: this.provider } });
    if (!row) throw new UpstreamTokenError('owner_login_required', 'no upstream tokens stored for this account');
    return row;
  }

  /** The decrypted access token if it is usable for at least the skew; throws if the row is dead. */
  private usableAccessToken(row: UpstreamTokenEntity, quiet = false, skewMs = this.config.upstream.refreshSkewSeconds * 1000): string | null {
    if (row.status === 'reauth_required' || row.status === 'revoked') {
      if (quiet) return null;
      throw new UpstreamTokenError('owner_login_required', `upstream token is ${row.status}`);
    }
    if (row.accessTokenExpiresAt.getTime() - skewMs <= Date.now()) return null;
    return this.cipher.decrypt(row.accessTokenEnc, columnAad(TABLE, 'access_token', row.accountId));
  }

  /** Encrypts the token columns; values the upstream did not send again are kept from `previous`. */
  private encryptTokenColumns(accountId: string, tokens: UpstreamTokenSet, previous: UpstreamTokenEntity | null) {
    return {
      accessTokenEnc: this.cipher.encrypt(tokens.accessToken, columnAad(TABLE, 'access_token', accountId)),
      refreshTokenEnc: tokens.refreshToken
        ? this.cipher.encrypt(tokens.refreshToken, columnAad(TABLE, 'refresh_token', accountId))
        : (previous?.refreshTokenEnc ?? null),
      idTokenEnc: tokens.idToken
        ? this.cipher.encrypt(tokens.idToken, columnAad(TABLE, 'id_token', accountId))
        : (previous?.idTokenEnc ?? null),
    };
  }
}

function failureFor(outcome: RefreshOutcome, message: string): UpstreamTokenError {
  const reason: UpstreamFailureReason =
    outcome === 'invalid_grant' ? 'owner_login_required' : outcome === 'upstream_timeout' ? 'upstream_timeout' : 'upstream_error';
  return new UpstreamTokenError(reason, message);
}

