import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { decodeCursor, DomainError, encodeCursor } from '@rsa/common';
import { AccountEntity, AuditService, TokenStatus, UpstreamTokenEntity } from '@rsa/database';
import { UpstreamTokenVault } from '../vault/upstream-token-vault.service';
import { AdminError } from './admin.errors';
import type { AdminActorContext } from './client-admin.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
/** A timestamptz as UTC ISO 8601 with microseconds: exact, so a keyset cursor never skips or repeats a row. */
const exactTime = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export interface AccountView {
  /** The RSA subject (`sub` of RSA-issued tokens). */
  id: string;
  provider: string;
  /** The upstream provider's subject. */
  sub: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  first_login_at: string;
  last_login_at: string;
  resources_synced_at: string | null;
  created_at: string;
  updated_at: string;
  /** Effective status of the account's upstream tokens; null when none are stored. */
  token_status: TokenStatus | null;
}

/** Metadata about the upstream tokens: never a token value. */
export interface AccountTokenSummary {
  status: TokenStatus;
  scope: string;
  access_token_expires_at: string;
  has_refresh_token: boolean;
  refresh_token_expires_at: string | null;
  has_id_token: boolean;
  last_refresh_at: string | null;
  last_refresh_outcome: string | null;
  last_refresh_error: string | null;
  consecutive_failures: number;
  updated_at: string;
}

export interface DelegationCounts {
  active: number;
  /** Addressed to an email no verified account had yet (only among delegations given). */
  pending: number;
  revoked: number;
  /** Past `expires_at` (whatever the stored status says) or stored as expired. */
  expired: number;
}

export interface AccountDetail extends AccountView {
  tokens: AccountTokenSummary | null;
  resources: { active: number; gone: number };
  delegations: { given: DelegationCounts; received: DelegationCounts };
}

export interface AccountSearch {
  /** The RSA id (a UUID) or the upstream `sub`, exact. */
  sub?: string;
  /** Case-insensitive, exact. */
  email?: string;
}

/** What deleting an account removed with it. */
export interface AccountDeletion {
  aliases: number;
  delegations_given: number;
  delegations_received: number;
  upstream_tokens: number;
  /** OP rows (sessions, grants, RSA tokens, codes) by model. */
  oidc: Record<string, number>;
}

/**
 * Accounts for operators: search, detail, delete. Accounts are created and refreshed only by upstream
 * logins (their profile comes from the upstream), so there is no create or update here.
 */
@Injectable()
export class AccountAdminService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly vault: UpstreamTokenVault,
    private readonly audit: AuditService,
  ) {}

  /** Newest first (created_at, id), keyset-paginated. */
  async list(search: AccountSearch, cursor: string | undefined, limit: number): Promise<{ items: AccountView[]; next_cursor: string | null }> {
    const after = decodeCursor<{ t: string; id: string }>(cursor, ['t', 'id']);
    if (after && (!CURSOR_TIME.test(after.t) || !UUID.test(after.id))) throw new DomainError('VALIDATION', 'cursor is not valid', { field: 'cursor' });
    const qb = this.dataSource
      .getRepository(AccountEntity)
      .createQueryBuilder('a')
      .addSelect(exactTime('a.created_at'), 'cursor_time')
      .orderBy('a.createdAt', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .limit(limit + 1);
    if (search.sub !== undefined) {
      if (UUID.test(search.sub)) qb.andWhere('(a.sub = :sub OR a.id = CAST(:sub AS uuid))', { sub: search.sub });
      else qb.andWhere('a.sub = :sub', { sub: search.sub });
    }
    // Emails are stored lower-cased (AccountService), so this uses the email index.
    if (search.email !== undefined) qb.andWhere('a.email = :email', { email: search.email.toLowerCase() });
    if (after) qb.andWhere('(a.created_at, a.id) < (CAST(:t AS timestamptz), CAST(:id AS uuid))', { t: after.t, id: after.id });
    const { entities, raw } = await qb.getRawAndEntities<{ cursor_time: string }>();
    const page = entities.slice(0, limit);
    const tokens = await this.vault.loadMany(page.map((a) => a.id));
    const now = new Date();
    return {
      items: page.map((account) => {
        const token = tokens.get(account.id);
        return this.view(account, token ? this.vault.effectiveStatus(token, now) : null);
      }),
      next_cursor: entities.length > limit ? encodeCursor({ t: raw[limit - 1].cursor_time, id: page[limit - 1].id }) : null,
    };
  }

  async get(id: string): Promise<AccountDetail> {
    const account = await this.dataSource.getRepository(AccountEntity).findOne({ where: { id } });
    if (!account) throw AdminError.notFound('account');
    const [token, counts] = await Promise.all([
      this.dataSource.getRepository(UpstreamTokenEntity).findOne({ where: { accountId: id, provider: account.provider } }),
      this.counts(this.dataSource.manager, id),
    ]);
    const status = token ? this.vault.effectiveStatus(token) : null;
    return {
      ...this.view(account, status),
      tokens: token && status ? tokenSummary(token, status) : null,
      resources: counts.resources,
      delegations: counts.delegations,
    };
  }

  /**
   * Deletes the account and, in one transaction, everything that hangs on it: its resources (aliases
   * and their scopes), the delegations it gave and received (with their scopes), its upstream tokens
   * (forgotten locally; revoke them at the upstream first where that matters) and everything the OP
   * stored for it (sessions, grants, RSA tokens, codes), so its RSA tokens stop working at once.
   * Audit events about the account stay: they are the record. A later login of the same upstream
   * user creates a new account, with a new RSA id.
   */
  async delete(id: string, context: AdminActorContext): Promise<AccountDeletion> {
    return this.dataSource.transaction(async (manager) => {
      const account = await manager.findOne(AccountEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!account) throw AdminError.notFound('account');
      const [row] = (await manager.query(
        `SELECT (SELECT count(*) FROM generic_resource_alias WHERE owner_account_id = $1)::int AS aliases,
                (SELECT count(*) FROM generic_resource_authorization WHERE owner_account_id = $1)::int AS given,
                (SELECT count(*) FROM generic_resource_authorization WHERE delegate_account_id = $1)::int AS received,
                (SELECT count(*) FROM upstream_token WHERE account_id = $1)::int AS tokens`,
        [id],
      )) as { aliases: number; given: number; received: number; tokens: number }[];
      const oidcRows: { model: string; n: number }[] = await manager.query(
        `WITH gone AS (DELETE FROM oidc_payload WHERE payload->>'accountId' = $1 RETURNING model)
         SELECT model, count(*)::int AS n FROM gone GROUP BY model ORDER BY model`,
        [id],
      );
      // The foreign keys cascade: aliases -> alias scopes, delegations (given and received) -> their
      // scopes, upstream tokens (see the entities' onDelete).
      await manager.delete(AccountEntity, { id });
      const deletion: AccountDeletion = {
        aliases: Number(row.aliases),
        delegations_given: Number(row.given),
        delegations_received: Number(row.received),
        upstream_tokens: Number(row.tokens),
        oidc: Object.fromEntries(oidcRows.map((r) => [r.model, Number(r.n)])),
      };
      await this.audit.record(
        {
          actorType: 'admin',
          actorId: context.actor,
          action: 'account.deleted',
          targetType: 'account',
          targetId: id,
          requestId: context.requestId,
          details: { provider: account.provider, sub: account.sub, email: account.email, removed: deletion },
        },
        manager,
      );
      return deletion;
    });
  }

  private async counts(manager: EntityManager, id: string): Promise<Pick<AccountDetail, 'resources' | 'delegations'>> {
    const [resources] = (await manager.query(
      `SELECT count(*) FILTER (WHERE status = 'active')::int AS active, count(*) FILTER (WHERE status <> 'active')::int AS gone
         FROM generic_resource_alias WHERE owner_account_id = $1`,
      [id],
    )) as { active: number; gone: number }[];
    // `active` past its expiry counts as expired: the read-time rule the rest of the product applies.
    const effective = `CASE WHEN status = 'active' AND expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
                            WHEN status = 'active' AND delegate_account_id IS NULL THEN 'pending'
                            ELSE status END`;
    const rows: { direction: 'given' | 'received'; status: string; n: number }[] = await manager.query(
      `SELECT 'given' AS direction, ${effective} AS status, count(*)::int AS n
         FROM generic_resource_authorization WHERE owner_account_id = $1 GROUP BY 2
       UNION ALL
       SELECT 'received', ${effective}, count(*)::int
         FROM generic_resource_authorization WHERE delegate_account_id = $1 GROUP BY 2`,
      [id],
    );
    const empty = (): DelegationCounts => ({ active: 0, pending: 0, revoked: 0, expired: 0 });
    const delegations = { given: empty(), received: empty() };
    for (const r of rows) {
      const bucket = delegations[r.direction];
      if (r.status in bucket) bucket[r.status as keyof DelegationCounts] += Number(r.n);
    }
    return { resources: { active: Number(resources.active), gone: Number(resources.gone) }, delegations };
  }

  private view(account: AccountEntity, tokenStatus: TokenStatus | null): AccountView {
    return {
      id: account.id,
      provider: account.provider,
      sub: account.sub,
      email: account.email,
      email_verified: account.emailVerified,
      name: account.name,
      given_name: account.givenName,
      family_name: account.familyName,
      first_login_at: account.firstLoginAt.toISOString(),
      last_login_at: account.lastLoginAt.toISOString(),
      resources_synced_at: account.resourcesSyncedAt?.toISOString() ?? null,
      created_at: account.createdAt.toISOString(),
      updated_at: account.updatedAt.toISOString(),
      token_status: tokenStatus,
    };
  }
}

/** Field by field, so a token column added to the entity later can never leak through a spread. */
function tokenSummary(token: UpstreamTokenEntity, status: TokenStatus): AccountTokenSummary {
  return {
    status,
    scope: token.scope,
    access_token_expires_at: token.accessTokenExpiresAt.toISOString(),
    has_refresh_token: Boolean(token.refreshTokenEnc),
    refresh_token_expires_at: token.refreshTokenExpiresAt?.toISOString() ?? null,
    has_id_token: Boolean(token.idTokenEnc),
    last_refresh_at: token.lastRefreshAt?.toISOString() ?? null,
    last_refresh_outcome: token.lastRefreshOutcome,
    last_refresh_error: token.lastRefreshError,
    consecutive_failures: token.consecutiveFailures,
    updated_at: token.updatedAt.toISOString(),
  };
}
