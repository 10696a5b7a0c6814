import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, EntityManager, In } from 'typeorm';
import { DomainError, RsaMetrics } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { AuditEventInput, AuditService, RefreshOutcome, StoredTokenStatus, TokenStatus, UpstreamTokenEntity } from '@rsa/database';
import { columnAad, TokenCipher } from '../crypto/token-cipher';
import { UpstreamClient, UpstreamTokenSet } from '../upstream/upstream-client.service';
import {
  isTransientUpstreamError,
  UpstreamOAuthError,
  UpstreamTimeoutError,
  UpstreamTokenError,
  UpstreamFailureReason,
  UpstreamUnavailableError,
} from '../upstream/upstream-errors';

const TABLE = 'upstream_token';
/** Used when the upstream omits `expires_in` (RFC 6749 §5.1 only recommends it). */
const DEFAULT_EXPIRES_IN_SECONDS = 300;

/** What started a refresh (the `trigger` label of rsa_upstream_token_refreshes_total). */
export type RefreshTrigger = 'on_demand' | 'admin' | 'proactive';

/** What happened to one token at the upstream's RFC 7009 revocation endpoint. */
export type RevocationStep = 'revoked' | 'unsupported' | 'failed' | 'absent';

export interface RevocationResult {
  previousStatus: TokenStatus;
  upstream: { refreshToken: RevocationStep; accessToken: RevocationStep };
}

/** A row claimed for a proactive refresh: this instance holds its lease. */
export interface ClaimedRefresh {
  accountId: string;
  version: number;
}

/**
 * The upstream rotated the tokens but we could not store them: the stored refresh token is dead.
 * `leaseKept`: not even the reauth_required mark could be written, so the lease stays until it
 * expires (nobody presents the old refresh token before then; after, the upstream refuses it).
 */
class RotationNotStoredError extends UpstreamTokenError {
  constructor(readonly leaseKept: boolean) {
    super('owner_login_required', 'the upstream rotated the tokens but storing them failed; the owner must log in again');
  }
}

interface FlightOptions {
  /** Refresh even if the access token is still usable. */
  force: boolean;
  trigger: RefreshTrigger;
  /**
   * An audit event (an admin's force refresh) to record with the result: in the same transaction as
   * the token update when this flight writes one, on its own when another flight did the work.
   */
  audit?: AuditEventInput;
}

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
    private readonly metrics: RsaMetrics,
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
    return this.singleFlight(accountId, { force: false, trigger: 'on_demand' }, row.version);
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
    // Only the state columns (no token material): this runs on every page of GET /resources.
    const rows = new Map<string, StatusRow>();
    if (accountIds.length) {
      const found: RawStatusRow[] = await this.dataSource.query(
        `SELECT account_id, status, access_token_expires_at, refresh_token_expires_at, refresh_token_enc IS NOT NULL AS has_refresh_token,
                last_refresh_outcome
           FROM upstream_token WHERE account_id = ANY($1::uuid[]) AND provider = $2`,
        [accountIds, this.provider],
      );
      for (const r of found) {
        rows.set(r.account_id, {
          status: r.status,
          accessTokenExpiresAt: new Date(r.access_token_expires_at),
          refreshTokenExpiresAt: r.refresh_token_expires_at === null ? null : new Date(r.refresh_token_expires_at),
          refreshTokenEnc: r.has_refresh_token ? 'present' : null,
          lastRefreshOutcome: r.last_refresh_outcome,
        });
      }
    }
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

  /**
   * Refreshes now even if the access token is still valid (admin "force refresh"), through the same
   * single flight and lease as every other refresh. `audit` is recorded with the outcome (see
   * FlightOptions). Throws UpstreamTokenError when the refresh fails; the failure is recorded.
   */
  async forceRefresh(accountId: string, options: { audit?: AuditEventInput; trigger?: RefreshTrigger } = {}): Promise<void> {
    await this.singleFlight(accountId, { force: true, trigger: options.trigger ?? 'admin', audit: options.audit });
  }

  /**
   * Revokes the account's upstream tokens: at the upstream where it offers RFC 7009 revocation
   * (the refresh token first, which ends the grant at most providers, then the access token), then
   * locally: the row stays with status `revoked` and no token material (`refresh_token_enc` and
   * `id_token_enc` NULL, `access_token_enc` empty: the column is NOT NULL). A later login of the
   * owner stores fresh tokens and makes it `valid` again.
   *
   * Runs holding the refresh lease, so no refresh can store tokens we are revoking; the upstream is
   * called without a transaction open. `audit` commits with the local change; local deletion happens
   * even when the upstream revocation fails (the result says so).
   */
  async revoke(accountId: string, audit: AuditEventInput): Promise<RevocationResult> {
    await this.load(accountId);
    await this.acquireLease(accountId);
    try {
      return await this.revokeHoldingLease(accountId, audit);
    } catch (error) {
      // Never leave the lease to expire on its own (a no-op once the revocation cleared it).
      await this.releaseLease(accountId).catch(() => undefined);
      throw error;
    }
  }

  private async revokeHoldingLease(accountId: string, audit: AuditEventInput): Promise<RevocationResult> {
    const row = await this.load(accountId);
    const previousStatus = this.effectiveStatus(row);
    const failures: Record<string, string> = {};
    const revokeAtUpstream = async (column: 'refresh_token' | 'access_token', enc: string | null): Promise<RevocationStep> => {
      if (!enc || row.status === 'revoked') return 'absent';
      try {
        const token = this.cipher.decrypt(enc, columnAad(TABLE, column, accountId));
        return (await this.upstream.revoke(token, column)) ? 'revoked' : 'unsupported';
      } catch (error) {
        failures[column] = (error as DomainError).code ?? (error as Error).name;
        return 'failed';
      }
    };
    // RFC 7009 §2: revoking the refresh token should also end the grant's access tokens; revoke the
    // access token as well, for upstreams that do not.
    const refreshToken = await revokeAtUpstream('refresh_token', row.refreshTokenEnc);
    const accessToken = await revokeAtUpstream('access_token', row.accessTokenEnc);
    const upstream = { refreshToken, accessToken };
    const updated = await this.dataSource.transaction(async (manager) => {
      const result = await manager
        .createQueryBuilder()
        .update(UpstreamTokenEntity)
        .set({
          status: 'revoked',
          accessTokenEnc: '',
          refreshTokenEnc: null,
          idTokenEnc: null,
          accessTokenExpiresAt: () => 'LEAST(access_token_expires_at, now())',
          refreshTokenExpiresAt: null,
          refreshLeaseUntil: null,
          refreshLeaseOwner: null,
          version: () => 'version + 1',
        })
        // A login that stored new tokens meanwhile (logins do not wait for the lease) is not undone.
        .where('id = :id AND version = :version', { id: row.id, version: row.version })
        .execute();
      if (!result.affected) return false;
      await this.audit.record(
        withResult(audit, 'success', {
          previous_status: previousStatus,
          upstream_revocation: { refresh_token: refreshToken, access_token: accessToken },
          ...(Object.keys(failures).length ? { upstream_errors: failures } : {}),
        }),
        manager,
      );
      return true;
    });
    if (!updated) {
      await this.releaseLease(accountId);
      await this.audit.record(withResult(audit, 'failure', { previous_status: previousStatus, reason: 'concurrent_login' }));
      throw new DomainError('CONFLICT', 'the owner logged in again while the tokens were being revoked; check and retry', {
        account_id: accountId,
      });
    }
    this.logger.log(`upstream tokens of account ${accountId} revoked (upstream: refresh ${refreshToken}, access ${accessToken})`);
    return { previousStatus, upstream };
  }

  /**
   * Proactive refresh, step 1: claims the refresh lease of up to `limit` rows of this provider whose
   * owner has an active, unexpired delegation and whose access token (or refresh token, when its
   * expiry is known) expires within `windowSeconds`, and whose refresh token is still alive. Rows
   * refreshed (or tried) in the last `minGapSeconds` are left alone, so a failing upstream is asked
   * at most once per gap and account. One statement: `FOR UPDATE SKIP LOCKED` lets instances that
   * claim at the same moment pass each other, and the lease, committed with the claim, keeps every
   * other refresh of the row (on demand, other instances) away until this one is done.
   */
  async claimDueForRefresh(options: {
    windowSeconds: number;
    minGapSeconds: number;
    limit: number;
    /** Accounts not to claim again (already tried in this run). */
    exclude?: string[];
  }): Promise<ClaimedRefresh[]> {
    const rows = await this.dataSource.query<{ account_id: string; version: number }[]>(
      `UPDATE upstream_token u
          SET refresh_lease_owner = $1, refresh_lease_until = now() + make_interval(secs => $2)
        WHERE u.id IN (
                SELECT t.id FROM upstream_token t
                 WHERE t.provider = $3
                   AND t.status IN ('valid', 'refresh_failing')
                   AND t.refresh_token_enc IS NOT NULL
                   AND (t.refresh_token_expires_at IS NULL OR t.refresh_token_expires_at > now())
                   AND (t.refresh_lease_until IS NULL OR t.refresh_lease_until < now())
                   -- the access token or the (known) refresh token expiry falls in the window; one
                   -- expression, the same as the ORDER BY, so an expression index can serve both
                   AND LEAST(t.access_token_expires_at, COALESCE(t.refresh_token_expires_at, 'infinity'::timestamptz))
                       <= now() + make_interval(secs => $4)
                   AND (t.last_refresh_at IS NULL OR t.last_refresh_at < now() - make_interval(secs => $5))
                   AND t.account_id <> ALL($7::uuid[])
                   AND EXISTS (SELECT 1 FROM generic_resource_authorization a
                                WHERE a.owner_account_id = t.account_id AND a.status = 'active'
                                  AND (a.expires_at IS NULL OR a.expires_at > now()))
                 ORDER BY LEAST(t.access_token_expires_at, COALESCE(t.refresh_token_expires_at, 'infinity'::timestamptz))
                 LIMIT $6
                   FOR UPDATE OF t SKIP LOCKED)
          AND (u.refresh_lease_until IS NULL OR u.refresh_lease_until < now())
      RETURNING u.account_id, u.version`,
      [this.instanceId, this.leaseMs / 1000, this.provider, options.windowSeconds, options.minGapSeconds, options.limit, options.exclude ?? []],
    );
    // node-postgres returns [rows, count] for UPDATE … RETURNING through TypeORM's query().
    const returned = (Array.isArray(rows[0]) ? rows[0] : rows) as { account_id: string; version: number }[];
    return returned.map((r) => ({ accountId: r.account_id, version: Number(r.version) }));
  }

  /**
   * Proactive refresh, step 2: refreshes a row claimed by claimDueForRefresh (this instance holds
   * its lease). Callers in this process share the flight; callers elsewhere wait for the version to
   * move, as with any refresh. Throws UpstreamTokenError when the refresh fails (recorded).
   */
  async refreshClaimed(claim: ClaimedRefresh): Promise<void> {
    const promise = this.refreshHoldingLease(claim.accountId, claim.version, { force: true, trigger: 'proactive' });
    if (!this.inflight.has(claim.accountId)) {
      this.inflight.set(claim.accountId, promise);
      void promise
        .finally(() => {
          if (this.inflight.get(claim.accountId) === promise) this.inflight.delete(claim.accountId);
        })
        .catch(() => undefined);
    }
    await promise;
  }

  /** The status an operator sees; `refreshable` is derived from the expiry at read time. */
  effectiveStatus(row: Pick<UpstreamTokenEntity, 'status' | 'accessTokenExpiresAt' | 'refreshTokenEnc' | 'refreshTokenExpiresAt'>, now = new Date()): TokenStatus {
    if (row.status !== 'valid') return row.status;
    if (row.accessTokenExpiresAt > now) return 'valid';
    const refreshAlive = row.refreshTokenEnc && (!row.refreshTokenExpiresAt || row.refreshTokenExpiresAt > now);
    return refreshAlive ? 'refreshable' : 'reauth_required';
  }

  /** `seenVersion`: the version of the row the caller found unusable (compared against, not re-read). */
  private singleFlight(accountId: string, options: FlightOptions, seenVersion?: number): Promise<string> {
    const existing = this.inflight.get(accountId);
    if (existing) return options.audit ? this.auditJoined(existing, options.audit) : existing;
    const promise: Promise<string> = this.refreshAcrossInstances(accountId, options, seenVersion).finally(() => {
      if (this.inflight.get(accountId) === promise) this.inflight.delete(accountId);
    });
    this.inflight.set(accountId, promise);
    return promise;
  }

  /** An audited caller that joined another flight of this process: the result is audited on its own. */
  private async auditJoined(flight: Promise<string>, audit: AuditEventInput): Promise<string> {
    try {
      const token = await flight;
      await this.audit.record(withResult(audit, 'success', { result: 'concurrent_refresh', status: 'valid' }));
      return token;
    } catch (error) {
      await this.audit.record(withResult(audit, 'failure', { result: 'concurrent_refresh_failed', error: (error as DomainError).code }));
      throw error;
    }
  }

  private async refreshAcrossInstances(accountId: string, options: FlightOptions, seenVersion?: number): Promise<string> {
    // Re-reading here could already see another instance's refresh, which would then look like
    // our starting point and be refreshed again.
    const startVersion = seenVersion ?? (await this.load(accountId)).version;
    const deadline = Date.now() + this.leaseMs + this.config.upstream.timeoutMs;
    let delay = 20;
    for (;;) {
      if (await this.claimLease(accountId)) {
        return this.refreshHoldingLease(accountId, startVersion, options);
      }
      // Another instance is refreshing: wait for its result instead of refreshing again.
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
      const row = await this.load(accountId);
      if (row.version !== startVersion) {
        if (row.lastRefreshOutcome && row.lastRefreshOutcome !== 'success') {
          await this.auditAlone(options, 'failure', { result: 'concurrent_refresh_failed', refresh_outcome: row.lastRefreshOutcome, status: row.status });
          throw failureFor(row.lastRefreshOutcome, 'the concurrent refresh failed');
        }
        // Tokens newer than the ones we came for: take them unless already expired (no skew), or
        // an upstream whose tokens live shorter than the skew would be refreshed once per waiter.
        const usable = this.usableAccessToken(row, false, 0);
        if (usable) {
          await this.auditAlone(options, 'success', { result: 'concurrent_refresh', status: 'valid' });
          return usable;
        }
      }
      if (Date.now() > deadline) {
        await this.auditAlone(options, 'failure', { result: 'timeout_waiting_for_concurrent_refresh' });
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

  /** Waits (polling, like refreshAcrossInstances) until this instance holds the account's lease. */
  private async acquireLease(accountId: string): Promise<void> {
    const deadline = Date.now() + this.leaseMs + this.config.upstream.timeoutMs;
    for (let delay = 20; !(await this.claimLease(accountId)); delay = Math.min(delay * 2, 250)) {
      if (Date.now() > deadline) throw new UpstreamTokenError('upstream_timeout', 'timed out waiting for a concurrent refresh');
      await sleep(delay);
    }
  }

  private async refreshHoldingLease(accountId: string, startVersion: number, options: FlightOptions): Promise<string> {
    try {
      return await this.refreshUnderLease(accountId, startVersion, options);
    } catch (error) {
      // Whatever failed (a ciphertext that does not decrypt, a database error), never leave the lease
      // to expire on its own: every caller on every instance would wait for it. A no-op when the
      // failure was already recorded (recordFailure clears the lease). The one exception: rotated
      // tokens we could neither store nor mark unusable, where the lease is all that keeps the
      // dead refresh token from being presented again (see failClosedAfterLostStore).
      if (!(error instanceof RotationNotStoredError && error.leaseKept)) await this.releaseLease(accountId).catch(() => undefined);
      // UpstreamTokenErrors were audited where they arose; anything else is audited here.
      if (!(error instanceof UpstreamTokenError)) {
        await this.auditAlone(options, 'failure', { result: 'error', error: (error as DomainError).code ?? (error as Error).name }).catch(() => undefined);
      }
      throw error;
    }
  }

  private async refreshUnderLease(accountId: string, startVersion: number, options: FlightOptions): Promise<string> {
    const row = await this.load(accountId);
    // Someone may have refreshed (or the owner logged in) between our read and our claim: use their
    // result unless already expired (no skew, see refreshAcrossInstances).
    const newerTokens = row.version !== startVersion && row.status === 'valid';
    const usable = newerTokens ? this.usableAccessToken(row, true, 0) : options.force ? null : this.usableAccessToken(row, true);
    if (usable) {
      await this.releaseLease(accountId);
      await this.auditAlone(options, 'success', { result: 'concurrent_refresh', status: 'valid' });
      return usable;
    }
    if (row.status === 'reauth_required' || row.status === 'revoked') {
      await this.releaseLease(accountId);
      await this.auditAlone(options, 'failure', { result: 'not_refreshable', status: row.status });
      throw new UpstreamTokenError('owner_login_required', `upstream token is ${row.status}`);
    }
    const refreshExpired = row.refreshTokenExpiresAt && row.refreshTokenExpiresAt <= new Date();
    if (!row.refreshTokenEnc || refreshExpired) {
      await this.recordFailure(row, 'reauth_required', 'invalid_grant', 'no usable refresh token', options);
      throw new UpstreamTokenError('owner_login_required', 'no usable refresh token');
    }
    const refreshToken = this.cipher.decrypt(row.refreshTokenEnc, columnAad(TABLE, 'refresh_token', accountId));
    let tokens: UpstreamTokenSet;
    try {
      tokens = await this.refreshWithRetries(refreshToken);
    } catch (error) {
      if (error instanceof UpstreamOAuthError && error.oauthError === 'invalid_grant') {
        // The grant is gone (expired, revoked, or a rotated token was replayed): only a new login helps.
        await this.recordFailure(row, 'reauth_required', 'invalid_grant', error.message, options);
        throw new UpstreamTokenError('owner_login_required', 'the upstream refused the refresh token');
      }
      const outcome: RefreshOutcome = error instanceof UpstreamTimeoutError ? 'upstream_timeout' : 'upstream_error';
      await this.recordFailure(row, 'refresh_failing', outcome, (error as Error).message, options);
      throw failureFor(outcome, (error as Error).message);
    }
    try {
      await this.storeRefreshed(row, tokens, options);
    } catch (error) {
      return this.failClosedAfterLostStore(row, tokens, error, options);
    }
    return tokens.accessToken;
  }

  /**
   * One refresh grant, tried again after a timeout or a 5xx/429 answer (never after an OAuth error,
   * a connection reset or an unusable answer: see isTransientUpstreamError) up to
   * `refreshRetry.maxRetries` times, waiting `backoffMs`, then twice that, … or the upstream's
   * Retry-After when longer. Everything, waits included, ends within UPSTREAM_TIMEOUT_MS of the
   * first attempt (well inside the lease): a wait that would pass the deadline is not made, and
   * each attempt's own timeout is what is left of it.
   */
  private async refreshWithRetries(refreshToken: string): Promise<UpstreamTokenSet> {
    const { maxRetries, backoffMs } = this.config.refreshRetry;
    const deadline = Date.now() + this.config.upstream.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.upstream.refresh(refreshToken, { deadline });
      } catch (error) {
        if (attempt >= maxRetries || !isTransientUpstreamError(error)) throw error;
        const retryAfterMs = error instanceof UpstreamUnavailableError ? error.http?.retryAfterMs : undefined;
        const wait = Math.max(backoffMs * 2 ** attempt, retryAfterMs ?? 0);
        if (Date.now() + wait >= deadline) throw error;
        this.logger.warn(`refresh attempt ${attempt + 1} failed (${(error as Error).message}); retrying in ${wait} ms`);
        await sleep(wait);
      }
    }
  }

  /**
   * The upstream answered a refresh (and, rotating, has already invalidated the refresh token we
   * hold) but storing the answer failed. Fail closed: the stored refresh token must never be
   * presented again, so the row becomes `reauth_required` without it, in a statement of its own
   * (the one that failed may fail again), and is audited; the new refresh token, which we cannot
   * keep, is revoked at the upstream where it can be. If even the mark cannot be written the lease
   * is kept: nobody refreshes until it expires, and then the upstream refuses the dead token
   * (`invalid_grant`, which marks the row). Either way the caller gets `owner_login_required`.
   */
  private async failClosedAfterLostStore(row: UpstreamTokenEntity, tokens: UpstreamTokenSet, cause: unknown, options: FlightOptions): Promise<never> {
    const why = (cause as DomainError).code ?? (cause as Error).name ?? 'error';
    this.logger.error(`refresh for account ${row.accountId}: the upstream rotated the tokens but storing them failed (${why}); failing closed`);
    let marked = false;
    try {
      const result = await this.dataSource
        .createQueryBuilder()
        .update(UpstreamTokenEntity)
        .set({
          status: 'reauth_required',
          refreshTokenEnc: null,
          lastRefreshAt: () => 'now()',
          lastRefreshOutcome: 'invalid_grant',
          lastRefreshError: `the rotated tokens could not be stored (${why}); the owner must log in again`.slice(0, 1000),
          consecutiveFailures: () => 'consecutive_failures + 1',
          refreshLeaseUntil: null,
          refreshLeaseOwner: null,
          version: () => 'version + 1',
        })
        // Not over a login that stored fresh tokens meanwhile (it moved the version and cleared our lease).
        .where('id = :id AND version = :version AND refresh_lease_owner = :owner', { id: row.id, version: row.version, owner: this.instanceId })
        .execute();
      marked = true;
      if (result.affected) {
        await this.audit
          .record({
            actorType: 'system',
            action: 'upstream_token.reauth_required',
            targetType: 'account',
            targetId: row.accountId,
            outcome: 'failure',
            details: { outcome: 'store_failed', previous_status: row.status, trigger: options.trigger },
          })
          .catch(() => undefined);
      }
    } catch (error) {
      this.logger.error(`account ${row.accountId}: could not mark the tokens reauth_required either (${(error as Error).message}); keeping the refresh lease`);
    }
    if (tokens.refreshToken) await this.upstream.revoke(tokens.refreshToken, 'refresh_token').catch(() => false);
    this.metrics.refreshes.inc({ outcome: 'invalid_grant', trigger: options.trigger });
    await this.auditAlone(options, 'failure', { result: 'store_failed', status: marked ? 'reauth_required' : row.status }).catch(() => undefined);
    throw new RotationNotStoredError(!marked);
  }

  /** Records `options.audit` (if any) on its own, when this flight wrote nothing it could commit with. */
  private async auditAlone(options: FlightOptions, outcome: 'success' | 'failure', details: Record<string, unknown>): Promise<void> {
    if (options.audit) await this.audit.record(withResult(options.audit, outcome, details));
  }

  private async storeRefreshed(row: UpstreamTokenEntity, tokens: UpstreamTokenSet, options: FlightOptions): Promise<void> {
    const now = Date.now();
    // One statement: the rotated refresh token and the new access token commit together, with the
    // lease (and, for an admin's force refresh, with its audit event).
    await this.inTransactionIf(!!options.audit, async (manager) => {
      await this.storeRefreshedWith(manager, row, tokens, now);
      if (options.audit) {
        await this.audit.record(withResult(options.audit, 'success', { result: 'refreshed', refresh_outcome: 'success', status: 'valid' }), manager);
      }
    });
    this.metrics.refreshes.inc({ outcome: 'success', trigger: options.trigger });
  }

  /** A transaction only when several statements must commit together; one statement needs none. */
  private inTransactionIf(wanted: boolean, work: (manager: EntityManager) => Promise<void>): Promise<void> {
    return wanted ? this.dataSource.transaction(work) : work(this.dataSource.manager);
  }

  private async storeRefreshedWith(manager: EntityManager, row: UpstreamTokenEntity, tokens: UpstreamTokenSet, now: number): Promise<void> {
    await manager
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
    options: FlightOptions,
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
          details: { outcome, previous_status: row.status, trigger: options.trigger },
        },
        manager,
      );
      if (options.audit) {
        await this.audit.record(withResult(options.audit, 'failure', { result: 'failed', refresh_outcome: outcome, status }), manager);
      }
    });
    this.metrics.refreshes.inc({ outcome, trigger: options.trigger });
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

function withResult(audit: AuditEventInput, outcome: 'success' | 'failure', details: Record<string, unknown>): AuditEventInput {
  return { ...audit, outcome, details: { ...audit.details, ...details } };
}

function failureFor(outcome: RefreshOutcome, message: string): UpstreamTokenError {
  const reason: UpstreamFailureReason =
    outcome === 'invalid_grant' ? 'owner_login_required' : outcome === 'upstream_timeout' ? 'upstream_timeout' : 'upstream_error';
  return new UpstreamTokenError(reason, message);
}


type StatusRow = Pick<UpstreamTokenEntity, 'status' | 'accessTokenExpiresAt' | 'refreshTokenEnc' | 'refreshTokenExpiresAt' | 'lastRefreshOutcome'>;
interface RawStatusRow {
  account_id: string;
  status: UpstreamTokenEntity['status'];
  access_token_expires_at: Date | string;
  refresh_token_expires_at: Date | string | null;
  has_refresh_token: boolean;
  last_refresh_outcome: UpstreamTokenEntity['lastRefreshOutcome'];
}
