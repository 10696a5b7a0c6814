import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { decodeCursor, DomainError, encodeCursor } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { REFRESH_OUTCOMES, RefreshOutcome, StoredTokenStatus, TOKEN_STATUSES, TokenStatus } from '@rsa/database';
import { UpstreamFailureReason, UpstreamTokenError } from '../upstream/upstream-errors';
import { RevocationStep, UpstreamTokenVault } from '../vault/upstream-token-vault.service';

/**
 * The status an operator sees, in SQL: the same rule as UpstreamTokenVault.effectiveStatus
 * (`refreshable` = stored `valid`, access token expired, refresh token present and not expired), so
 * counts and filters run in the database however many accounts there are.
 */
export function effectiveStatusSql(t: string): string {
  return `(CASE WHEN ${t}.status <> 'valid' THEN ${t}.status
               WHEN ${t}.access_token_expires_at > now() THEN 'valid'
               WHEN ${t}.refresh_token_enc IS NOT NULL
                    AND (${t}.refresh_token_expires_at IS NULL OR ${t}.refresh_token_expires_at > now()) THEN 'refreshable'
               ELSE 'reauth_required' END)`;
}

/** An active delegation that is in force now (an `active` row past its expiry is ignored, as everywhere). */
const ACTIVE_DELEGATION = `a.status = 'active' AND (a.expires_at IS NULL OR a.expires_at > now())`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface TokenHealthActor {
  actor: string;
  requestId?: string;
}

export interface TokenHealthSummary {
  generated_at: string;
  /** Per status: accounts with that status, and active delegations whose owner has it. */
  by_status: Record<TokenStatus, { accounts: number; active_delegations: number }>;
  totals: { accounts: number; active_delegations: number };
}

/** One account's upstream token state. Never a token value or ciphertext. */
export interface AccountTokenHealth {
  account_id: string;
  sub: string;
  email: string | null;
  name: string | null;
  status: TokenStatus;
  /** What is stored; `status` derives `refreshable` (and an expired, unrefreshable `valid`) from it. */
  stored_status: StoredTokenStatus;
  /** `valid` or `refreshable`: a delegate's request can be served with these tokens now. */
  usable: boolean;
  /** Why not usable, as reported to delegates (`related` claim, /resources). */
  reason?: UpstreamFailureReason;
  scope: string;
  access_token_expires_at: string;
  /** Null when the upstream did not say (no `refresh_expires_in`) or there is no refresh token. */
  refresh_token_expires_at: string | null;
  has_refresh_token: boolean;
  last_refresh_at: string | null;
  last_refresh_outcome: RefreshOutcome | null;
  /** Error code and description from the upstream; never a token value. */
  last_refresh_error: string | null;
  consecutive_failures: number;
  /** An instance holds the refresh lease right now. */
  refresh_in_progress: boolean;
  active_delegations: number;
  updated_at: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface AccountTokenFilter {
  status?: TokenStatus;
  hasActiveDelegations?: boolean;
  /** Access token expires within this many seconds from now (and has not expired yet). */
  expiringWithinSeconds?: number;
}

export type AtRiskReason =
  | 'no_tokens'
  | 'reauth_required'
  | 'revoked'
  | 'refresh_failing'
  | 'access_token_expiring_without_refresh_token'
  | 'refresh_token_expiring';

export interface AtRiskDelegation {
  delegation: {
    id: string;
    expires_at: string | null;
    created_at: string;
    delegate_account_id: string | null;
    delegate_email: string | null;
  };
  resource: { alias_id: string; name: string; type: string };
  owner: {
    account_id: string;
    sub: string;
    email: string | null;
    name: string | null;
    token_status: TokenStatus;
    access_token_expires_at: string | null;
    refresh_token_expires_at: string | null;
    has_refresh_token: boolean;
    last_refresh_outcome: RefreshOutcome | null;
    consecutive_failures: number;
  };
  risk: {
    reason: AtRiskReason;
    /** False: the delegate is refused the owner's resources right now (`owner_login_required`, …). */
    usable_now: boolean;
    /** When the owner's tokens stop being usable: null when they already are not. */
    unusable_from: string | null;
  };
}

interface TokenRow {
  account_id: string;
  sub: string;
  email: string | null;
  name: string | null;
  status: TokenStatus;
  stored_status: StoredTokenStatus;
  scope: string;
  access_token_expires_at: Date;
  refresh_token_expires_at: Date | null;
  has_refresh_token: boolean;
  last_refresh_at: Date | null;
  last_refresh_outcome: RefreshOutcome | null;
  last_refresh_error: string | null;
  consecutive_failures: number;
  refresh_in_progress: boolean;
  active_delegations: string | number;
  updated_at: Date;
}

interface AtRiskRow {
  id: string;
  expires_at: Date | null;
  created_at: Date;
  delegate_account_id: string | null;
  delegate_email: string | null;
  alias_id: string;
  alias_name: string;
  resource_type: string;
  owner_account_id: string;
  owner_sub: string;
  owner_email: string | null;
  owner_name: string | null;
  token_status: TokenStatus;
  access_token_expires_at: Date | null;
  refresh_token_expires_at: Date | null;
  has_refresh_token: boolean;
  last_refresh_outcome: RefreshOutcome | null;
  consecutive_failures: number | null;
  risk: AtRiskReason;
  unusable_from: Date | null;
}

/**
 * Token health for operators: which accounts' upstream tokens are usable, which need the user to log
 * in again, and which delegations are at risk because of it; plus the admin actions on one account
 * (force a refresh, revoke). Reads are single SQL statements (counts and filters computed in the
 * database, keyset pagination); writes go through the vault, so they respect its refresh lease.
 */
@Injectable()
export class TokenHealthService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly vault: UpstreamTokenVault,
    private readonly config: RsaConfig,
  ) {}

  private get provider(): string {
    return this.config.upstream.issuer;
  }

  /** Accounts per status, and active delegations per status of their owner's tokens (one query). */
  async summary(): Promise<TokenHealthSummary> {
    const rows = await this.dataSource.query<{ kind: 'accounts' | 'delegations'; status: TokenStatus; n: string }[]>(
      `WITH tok AS (
         SELECT t.account_id, ${effectiveStatusSql('t')} AS status FROM upstream_token t WHERE t.provider = $1
       )
       SELECT 'accounts' AS kind, status, count(*) AS n FROM tok GROUP BY status
       UNION ALL
       SELECT 'delegations' AS kind, COALESCE(tok.status, 'reauth_required') AS status, count(*) AS n
         FROM generic_resource_authorization a
         JOIN account o ON o.id = a.owner_account_id AND o.provider = $1
         LEFT JOIN tok ON tok.account_id = a.owner_account_id
        WHERE ${ACTIVE_DELEGATION}
        GROUP BY 2`,
      [this.provider],
    );
    const byStatus = Object.fromEntries(TOKEN_STATUSES.map((s) => [s, { accounts: 0, active_delegations: 0 }])) as TokenHealthSummary['by_status'];
    const totals = { accounts: 0, active_delegations: 0 };
    for (const row of rows) {
      const n = Number(row.n);
      const bucket = byStatus[row.status];
      if (!bucket) continue;
      if (row.kind === 'accounts') {
        bucket.accounts += n;
        totals.accounts += n;
      } else {
        bucket.active_delegations += n;
        totals.active_delegations += n;
      }
    }
    return { generated_at: new Date().toISOString(), by_status: byStatus, totals };
  }

  /** Accounts by the outcome of their last refresh (`none`: never refreshed since login). */
  async lastRefreshOutcomes(): Promise<Record<RefreshOutcome | 'none', number>> {
    const rows = await this.dataSource.query<{ outcome: RefreshOutcome | null; n: string }[]>(
      'SELECT last_refresh_outcome AS outcome, count(*) AS n FROM upstream_token WHERE provider = $1 GROUP BY 1',
      [this.provider],
    );
    const counts = Object.fromEntries([...REFRESH_OUTCOMES, 'none'].map((o) => [o, 0])) as Record<RefreshOutcome | 'none', number>;
    for (const row of rows) counts[row.outcome ?? 'none'] += Number(row.n);
    return counts;
  }

  /** Accounts with their token state, filtered, in account id order (keyset: `account_id > cursor`). */
  async listAccounts(filter: AccountTokenFilter, page: { cursor?: string; limit: number }): Promise<Page<AccountTokenHealth>> {
    const params: unknown[] = [this.provider];
    const where: string[] = ['t.provider = $1'];
    const after = decodeCursor<{ a: string }>(page.cursor, ['a']);
    if (after) {
      if (!UUID.test(after.a)) throw new DomainError('VALIDATION', 'cursor is not valid', { field: 'cursor' });
      params.push(after.a);
      // The same bound on both sides of the join (t.account_id = acc.id): without the second one the
      // planner merge-joins from the first account, and a deep page costs as much as the whole list.
      where.push(`t.account_id > $${params.length}`, `acc.id > $${params.length}`);
    }
    if (filter.status) {
      params.push(filter.status);
      where.push(`${effectiveStatusSql('t')} = $${params.length}`);
    }
    if (filter.hasActiveDelegations !== undefined) {
      where.push(
        `${filter.hasActiveDelegations ? '' : 'NOT '}EXISTS (SELECT 1 FROM generic_resource_authorization a WHERE a.owner_account_id = t.account_id AND ${ACTIVE_DELEGATION})`,
      );
    }
    if (filter.expiringWithinSeconds !== undefined) {
      params.push(filter.expiringWithinSeconds);
      where.push(`t.access_token_expires_at > now() AND t.access_token_expires_at <= now() + make_interval(secs => $${params.length})`);
    }
    params.push(page.limit + 1);
    const rows = await this.dataSource.query<TokenRow[]>(
      `${this.selectTokens()} WHERE ${where.join(' AND ')} ORDER BY t.account_id LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, page.limit).map((row) => this.toHealth(row));
    const next = rows.length > page.limit ? encodeCursor({ a: items[items.length - 1].account_id }) : null;
    return { items, next_cursor: next };
  }

  /** One account's token state; NOT_FOUND when the account is unknown or has no tokens stored. */
  async account(accountId: string): Promise<AccountTokenHealth> {
    const [row] = await this.dataSource.query<TokenRow[]>(`${this.selectTokens()} WHERE t.provider = $1 AND t.account_id = $2`, [
      this.provider,
      accountId,
    ]);
    if (row) return this.toHealth(row);
    const [account] = await this.dataSource.query<{ id: string }[]>('SELECT id FROM account WHERE id = $1', [accountId]);
    throw new DomainError(
      'NOT_FOUND',
      account ? 'no upstream tokens are stored for this account' : 'account not found',
      { account_id: accountId },
    );
  }

  /**
   * Refreshes the account's upstream tokens now, through the vault's single flight and lease (so
   * never in parallel with another refresh of the same account), audited with the result. On
   * failure the error carries the new status (the failure is recorded, e.g. `reauth_required`).
   */
  async forceRefresh(accountId: string, ctx: TokenHealthActor): Promise<AccountTokenHealth> {
    await this.account(accountId);
    try {
      await this.vault.forceRefresh(accountId, {
        trigger: 'admin',
        audit: {
          actorType: 'admin',
          actorId: ctx.actor,
          action: 'upstream_token.refresh',
          targetType: 'account',
          targetId: accountId,
          requestId: ctx.requestId,
        },
      });
    } catch (error) {
      if (!(error instanceof UpstreamTokenError)) throw error;
      const now = await this.account(accountId);
      throw new DomainError(error.code, error.message, {
        account_id: accountId,
        reason: error.reason,
        status: now.status,
        last_refresh_outcome: now.last_refresh_outcome,
      });
    }
    return this.account(accountId);
  }

  /**
   * Revokes the account's upstream tokens at the upstream (RFC 7009, where offered) and deletes them
   * locally; the account then reads `revoked` until the owner logs in again. Audited.
   */
  async revoke(
    accountId: string,
    ctx: TokenHealthActor,
  ): Promise<AccountTokenHealth & { upstream_revocation: { refresh_token: RevocationStep; access_token: RevocationStep } }> {
    await this.account(accountId);
    const result = await this.vault.revoke(accountId, {
      actorType: 'admin',
      actorId: ctx.actor,
      action: 'upstream_token.revoke',
      targetType: 'account',
      targetId: accountId,
      requestId: ctx.requestId,
    });
    return {
      ...(await this.account(accountId)),
      upstream_revocation: { refresh_token: result.upstream.refreshToken, access_token: result.upstream.accessToken },
    };
  }

  /**
   * Active delegations whose owner's tokens are unusable now (no tokens, `reauth_required`,
   * `revoked`, `refresh_failing`) or will be within `withinSeconds`: no refresh token and the access
   * token expires in the window, or the refresh token's known expiry falls in it. A delegation that
   * ends before its owner's tokens do is not at risk. Keyset on the delegation id.
   */
  async atRisk(withinSeconds: number, page: { cursor?: string; limit: number }): Promise<Page<AtRiskDelegation>> {
    const params: unknown[] = [this.provider, withinSeconds];
    const after = decodeCursor<{ d: string }>(page.cursor, ['d']);
    let cursorClause = '';
    if (after) {
      if (!UUID.test(after.d)) throw new DomainError('VALIDATION', 'cursor is not valid', { field: 'cursor' });
      params.push(after.d);
      cursorClause = `AND a.id > $${params.length}`;
    }
    params.push(page.limit + 1);
    const rows = await this.dataSource.query<AtRiskRow[]>(
      `SELECT * FROM (
         SELECT a.id, a.expires_at, a.created_at, a.delegate_account_id, a.delegate_email,
                al.id AS alias_id, al.display_name AS alias_name, gr.identifier AS resource_type,
                o.id AS owner_account_id, o.sub AS owner_sub, o.email AS owner_email, o.name AS owner_name,
                COALESCE(s.status, 'reauth_required') AS token_status,
                t.access_token_expires_at, t.refresh_token_expires_at,
                (t.refresh_token_enc IS NOT NULL) AS has_refresh_token,
                t.last_refresh_outcome, t.consecutive_failures,
                CASE WHEN t.id IS NULL THEN 'no_tokens'
                     WHEN s.status IN ('reauth_required', 'revoked', 'refresh_failing') THEN s.status
                     WHEN t.refresh_token_enc IS NULL AND t.access_token_expires_at <= now() + make_interval(secs => $2)
                          THEN 'access_token_expiring_without_refresh_token'
                     WHEN t.refresh_token_expires_at <= now() + make_interval(secs => $2) THEN 'refresh_token_expiring'
                END AS risk,
                CASE WHEN t.id IS NULL OR s.status IN ('reauth_required', 'revoked', 'refresh_failing') THEN NULL
                     WHEN t.refresh_token_enc IS NULL THEN t.access_token_expires_at
                     ELSE t.refresh_token_expires_at
                END AS unusable_from
           FROM generic_resource_authorization a
           JOIN account o ON o.id = a.owner_account_id AND o.provider = $1
           JOIN generic_resource_alias al ON al.id = a.alias_id
           JOIN generic_resource gr ON gr.id = al.generic_resource_id
           LEFT JOIN upstream_token t ON t.account_id = a.owner_account_id AND t.provider = $1
           LEFT JOIN LATERAL (SELECT ${effectiveStatusSql('t')} AS status) s ON t.id IS NOT NULL
          WHERE ${ACTIVE_DELEGATION} ${cursorClause}
       ) r
       WHERE r.risk IS NOT NULL AND (r.unusable_from IS NULL OR r.expires_at IS NULL OR r.expires_at > r.unusable_from)
       ORDER BY r.id
       LIMIT $${params.length}`,
      params,
    );
    const items = rows.slice(0, page.limit).map((row) => toAtRisk(row));
    const next = rows.length > page.limit ? encodeCursor({ d: items[items.length - 1].delegation.id }) : null;
    return { items, next_cursor: next };
  }

  private selectTokens(): string {
    return `SELECT t.account_id, acc.sub, acc.email, acc.name,
                   ${effectiveStatusSql('t')} AS status, t.status AS stored_status, t.scope,
                   t.access_token_expires_at, t.refresh_token_expires_at,
                   (t.refresh_token_enc IS NOT NULL) AS has_refresh_token,
                   t.last_refresh_at, t.last_refresh_outcome, t.last_refresh_error, t.consecutive_failures,
                   (t.refresh_lease_until IS NOT NULL AND t.refresh_lease_until > now()) AS refresh_in_progress,
                   t.updated_at,
                   (SELECT count(*) FROM generic_resource_authorization a
                     WHERE a.owner_account_id = t.account_id AND ${ACTIVE_DELEGATION}) AS active_delegations
              FROM upstream_token t
              JOIN account acc ON acc.id = t.account_id`;
  }

  private toHealth(row: TokenRow): AccountTokenHealth {
    const usable = row.status === 'valid' || row.status === 'refreshable';
    return {
      account_id: row.account_id,
      sub: row.sub,
      email: row.email,
      name: row.name,
      status: row.status,
      stored_status: row.stored_status,
      usable,
      ...(usable ? {} : { reason: reasonFor(row.status, row.last_refresh_outcome) }),
      scope: row.scope,
      access_token_expires_at: iso(row.access_token_expires_at)!,
      refresh_token_expires_at: iso(row.refresh_token_expires_at),
      has_refresh_token: row.has_refresh_token,
      last_refresh_at: iso(row.last_refresh_at),
      last_refresh_outcome: row.last_refresh_outcome,
      last_refresh_error: row.last_refresh_error,
      consecutive_failures: Number(row.consecutive_failures),
      refresh_in_progress: row.refresh_in_progress,
      active_delegations: Number(row.active_delegations),
      updated_at: iso(row.updated_at)!,
    };
  }
}

/** The same reasons delegates see (UpstreamTokenVault.statusesFor). */
function reasonFor(status: TokenStatus, lastOutcome: RefreshOutcome | null): UpstreamFailureReason {
  if (status === 'refresh_failing') return lastOutcome === 'upstream_timeout' ? 'upstream_timeout' : 'upstream_error';
  return 'owner_login_required';
}

function toAtRisk(row: AtRiskRow): AtRiskDelegation {
  return {
    delegation: {
      id: row.id,
      expires_at: iso(row.expires_at),
      created_at: iso(row.created_at)!,
      delegate_account_id: row.delegate_account_id,
      delegate_email: row.delegate_email,
    },
    resource: { alias_id: row.alias_id, name: row.alias_name, type: row.resource_type },
    owner: {
      account_id: row.owner_account_id,
      sub: row.owner_sub,
      email: row.owner_email,
      name: row.owner_name,
      token_status: row.token_status,
      access_token_expires_at: iso(row.access_token_expires_at),
      refresh_token_expires_at: iso(row.refresh_token_expires_at),
      has_refresh_token: !!row.has_refresh_token,
      last_refresh_outcome: row.last_refresh_outcome,
      consecutive_failures: Number(row.consecutive_failures ?? 0),
    },
    risk: {
      reason: row.risk,
      usable_now: row.unusable_from !== null && new Date(row.unusable_from).getTime() > Date.now(),
      unusable_from: iso(row.unusable_from),
    },
  };
}

function iso(value: Date | string | null): string | null {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}
