import { Injectable, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { decodeCursor, DomainError, encodeCursor } from '@rsa/common';
import {
  AccountEntity,
  AuditService,
  AuthorizationStatus,
  GenericResourceAliasEntity,
  GenericResourceAuthorizationEntity,
  GenericResourceAuthorizationScopeEntity,
} from '@rsa/database';
import { CatalogueAdminService, type Page, type PageRequest } from '@rsa/resources';
import { DelegationError } from './delegation.errors';
import { ActorContext, DelegationService } from './delegation.service';

/** What a delegation looks like to an operator. `status` is the effective one (see DelegationView). */
export interface DelegationRecord {
  id: string;
  status: 'active' | 'pending' | 'revoked' | 'expired';
  /** The stored status: `active` rows past `expires_at` show `expired` above and `active` here. */
  storedStatus: AuthorizationStatus;
  aliasId: string;
  genericResource: string;
  ownerAccountId: string;
  delegateAccountId: string | null;
  delegateEmail: string | null;
  scopes: string[];
  expiresAt: Date | null;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
}

export type EffectiveDelegationStatus = DelegationRecord['status'];

export interface DelegationFilter {
  ownerAccountId?: string;
  delegateAccountId?: string;
  delegateEmail?: string;
  aliasId?: string;
  status?: EffectiveDelegationStatus;
}

export interface AdminDelegationInput {
  ownerAccountId: string;
  aliasId: string;
  scopes: string[];
  expiresAt?: Date | null;
  delegateAccountId?: string;
  delegateEmail?: string;
}

export interface AdminDelegationChange {
  scopes?: string[];
  expiresAt?: Date | null;
  /** Only `revoked`: ending a delegation is the one status change an operator makes. */
  status?: 'revoked';
}

/** SQL for each effective status; an `active` row past its expiry is `expired` (as DelegationView shows it). */
const STATUS_SQL: Record<EffectiveDelegationStatus, string> = {
  active: `a.status = 'active' AND a.delegate_account_id IS NOT NULL AND (a.expires_at IS NULL OR a.expires_at > now())`,
  pending: `a.status = 'active' AND a.delegate_account_id IS NULL AND (a.expires_at IS NULL OR a.expires_at > now())`,
  expired: `(a.status = 'expired' OR (a.status = 'active' AND a.expires_at IS NOT NULL AND a.expires_at <= now()))`,
  revoked: `a.status = 'revoked'`,
};

/**
 * Delegations as operators manage them. Every rule is DelegationService's (an admin creates on
 * behalf of the owner with the owner's rules, the admin recorded as the actor); this service adds
 * what only operators need — listing everything, hard deletion, and keeping delegations whole when
 * the catalogue changes under them (alias gone, deleted, or losing a scope).
 */
@Injectable()
export class DelegationAdminService implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly delegations: DelegationService,
    private readonly catalogue: CatalogueAdminService,
  ) {}

  onModuleInit(): void {
    this.catalogue.onAliasesEnding((event, manager, context) => this.endForAliases(event.aliasIds, event.change, manager, context));
    this.catalogue.onAliasScopeRemoved((event, manager, context) => this.withdrawAliasScope(event.aliasId, event.scope, manager, context));
  }

  // ---- delegations ---------------------------------------------------------------------------

  async list(filter: DelegationFilter, page: PageRequest): Promise<Page<DelegationRecord>> {
    const after = decodeCursor<{ id: string }>(page.cursor, ['id']);
    const rows: { id: string }[] = await this.dataSource.query(
      `SELECT a.id FROM generic_resource_authorization a
        WHERE ($1::uuid IS NULL OR a.owner_account_id = $1) AND ($2::uuid IS NULL OR a.delegate_account_id = $2)
          AND ($3::uuid IS NULL OR a.alias_id = $3) AND ($4::text IS NULL OR a.delegate_email = lower($4))
          AND ($5::uuid IS NULL OR a.id > $5)
          ${filter.status ? `AND ${STATUS_SQL[filter.status]}` : ''}
        ORDER BY a.id
        LIMIT $6`,
      [filter.ownerAccountId ?? null, filter.delegateAccountId ?? null, filter.aliasId ?? null, filter.delegateEmail ?? null, after?.id ?? null, page.limit + 1],
    );
    const ids = rows.slice(0, page.limit).map((r) => r.id);
    return { items: await this.records(ids), next_cursor: rows.length > page.limit ? encodeCursor({ id: ids[ids.length - 1] }) : null };
  }

  async get(id: string): Promise<DelegationRecord> {
    const [record] = await this.records([id]);
    if (!record) throw DelegationError.notFound();
    return record;
  }

  /**
   * Creates a delegation on behalf of its owner, through DelegationService.create: the owner must own
   * the alias (and it must be active), scopes ⊆ the alias scopes, no self-delegation, the delegate
   * by account id or by email (pending until a verified login), expiry in the future.
   */
  async create(input: AdminDelegationInput, context: ActorContext): Promise<DelegationRecord> {
    const byEmail = input.delegateEmail !== undefined;
    if (byEmail === (input.delegateAccountId !== undefined)) {
      throw DelegationError.invalid('delegate_account_id', 'give exactly one of delegate_account_id or delegate_email');
    }
    // Checked here first for operator-friendly errors; DelegationService checks again in its transaction.
    if (!(await this.dataSource.manager.exists(AccountEntity, { where: { id: input.ownerAccountId } }))) {
      throw new DelegationError('NOT_FOUND', 'owner account not found', { field: 'owner_account_id' });
    }
    const alias = await this.dataSource.manager.findOne(GenericResourceAliasEntity, { where: { id: input.aliasId } });
    if (!alias) throw new DelegationError('NOT_FOUND', 'alias not found', { field: 'alias_id' });
    if (alias.ownerAccountId !== input.ownerAccountId) throw DelegationError.invalid('alias_id', 'the alias is not owned by owner_account_id');
    if (alias.status !== 'active') throw DelegationError.conflict('the alias is gone; only an active alias can be delegated', { field: 'alias_id' });

    const delegateField = byEmail ? 'delegate_email' : 'delegate_account_id';
    try {
      const [view] = await this.delegations.create(
        input.ownerAccountId,
        {
          aliasIds: [input.aliasId],
          scopes: input.scopes,
          expiresAt: input.expiresAt ?? null,
          delegate: byEmail ? { email: input.delegateEmail } : { sub: input.delegateAccountId },
        },
        context,
      );
      return this.get(view.id);
    } catch (error) {
      throw renameFields(error, { aliases: 'alias_id', delegate: delegateField }, { 'delegate not found': delegateField, 'alias not found': 'alias_id' });
    }
  }

  /**
   * Changes scopes (any non-empty subset of the alias's scopes — an operator may widen, unlike the
   * owner's own PATCH) and expiry of an active delegation, or revokes it (`status: revoked`, alone).
   */
  async update(id: string, change: AdminDelegationChange, context: ActorContext): Promise<DelegationRecord> {
    const row = await this.dataSource.manager.findOne(GenericResourceAuthorizationEntity, { where: { id } });
    if (!row) throw DelegationError.notFound();
    if (change.status === 'revoked') {
      if (change.scopes !== undefined || change.expiresAt !== undefined) {
        throw DelegationError.invalid('status', 'status "revoked" cannot be combined with other changes');
      }
      if (row.status === 'expired') throw DelegationError.conflict('the delegation has ended already (expired)');
      await this.delegations.end(row.ownerAccountId, id, context);
    } else if (change.scopes !== undefined || change.expiresAt !== undefined) {
      await this.delegations.update(row.ownerAccountId, id, { scopes: change.scopes, expiresAt: change.expiresAt }, context, { mayWiden: true });
    }
    return this.get(id);
  }

  /**
   * Deletes a delegation and its granted scopes (whatever its status: an active one stops working at
   * once). The audit event keeps a snapshot. To end it and keep the row, revoke it instead.
   */
  async remove(id: string, context: ActorContext): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAuthorizationEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw DelegationError.notFound();
      const [snapshot] = await this.records([id], manager);
      await manager.delete(GenericResourceAuthorizationEntity, { id });
      await this.record(manager, context, 'delegation.deleted', id, { before: snapshotOf(snapshot) });
    });
  }

  // ---- granted scopes -----------------------------------------------------------------------

  async listScopes(filter: { authorizationId?: string; scope?: string }, page: PageRequest): Promise<Page<GenericResourceAuthorizationScopeEntity>> {
    const after = decodeCursor<{ id: string }>(page.cursor, ['id']);
    const qb = this.dataSource.getRepository(GenericResourceAuthorizationScopeEntity).createQueryBuilder('s').orderBy('s.id', 'ASC').take(page.limit + 1);
    if (filter.authorizationId) qb.andWhere('s.authorization_id = :authorizationId', { authorizationId: filter.authorizationId });
    if (filter.scope) qb.andWhere('s.scope = :scope', { scope: filter.scope });
    if (after) qb.andWhere('s.id > :after', { after: after.id });
    const rows = await qb.getMany();
    const items = rows.slice(0, page.limit);
    return { items, next_cursor: rows.length > page.limit ? encodeCursor({ id: items[items.length - 1].id }) : null };
  }

  async getScope(id: string): Promise<GenericResourceAuthorizationScopeEntity> {
    const row = await this.dataSource.getRepository(GenericResourceAuthorizationScopeEntity).findOneBy({ id });
    if (!row) throw DelegationError.notFound('granted scope');
    return row;
  }

  /** Grants one more scope of the alias on an active delegation (409 if granted already). */
  async addScope(input: { authorizationId: string; scope: string }, context: ActorContext): Promise<GenericResourceAuthorizationScopeEntity> {
    try {
      return await this.delegations.grantScope(input.authorizationId, input.scope, context);
    } catch (error) {
      throw renameFields(error, {}, { 'delegation not found': 'authorization_id' });
    }
  }

  /** Replaces a granted scope by another scope of the alias (same id). */
  async changeScope(id: string, change: { scope: string }, context: ActorContext): Promise<GenericResourceAuthorizationScopeEntity> {
    const row = await this.getScope(id);
    if (row.scope === change.scope) return row;
    return this.delegations.replaceScope(row.authorizationId, row.scope, change.scope, context);
  }

  /** Withdraws a granted scope; the last scope of a delegation cannot go (409: revoke it instead). */
  async removeScope(id: string, context: ActorContext): Promise<void> {
    const row = await this.getScope(id);
    await this.delegations.withdrawScope(row.authorizationId, row.scope, context);
  }

  // ---- keeping delegations whole when the catalogue changes ---------------------------------------

  /**
   * Alias marked `gone`: its active delegations end as `expired` (as when discovery finds it gone).
   * Alias deleted: every delegation of it is about to go with it (FK cascade): record each.
   */
  private async endForAliases(aliasIds: string[], change: 'gone' | 'deleted', manager: EntityManager, context: ActorContext): Promise<void> {
    if (change === 'gone') {
      const [ended]: [{ id: string }[], number] = await manager.query(
        `UPDATE generic_resource_authorization SET status = 'expired', revoked_at = now(), revoked_by = $2, updated_at = now()
          WHERE alias_id = ANY($1::uuid[]) AND status = 'active' RETURNING id`,
        [aliasIds, context.actor],
      );
      for (const { id } of ended) await this.record(manager, context, 'delegation.ended_alias_gone', id, {});
      return;
    }
    const doomed: { id: string }[] = await manager.query(
      'SELECT id FROM generic_resource_authorization WHERE alias_id = ANY($1::uuid[]) ORDER BY id FOR UPDATE',
      [aliasIds],
    );
    const snapshots = await this.records(doomed.map((d) => d.id), manager);
    for (const snapshot of snapshots) await this.record(manager, context, 'delegation.deleted', snapshot.id, { reason: 'alias_deleted', before: snapshotOf(snapshot) });
  }

  /**
   * A scope taken from an alias is taken from its delegations too — otherwise a delegation would
   * silently regain it if the alias got the scope back. An active delegation left with no scope is
   * revoked (a delegation keeps at least one scope).
   */
  private async withdrawAliasScope(aliasId: string, scope: string, manager: EntityManager, context: ActorContext): Promise<void> {
    const affected: { id: string; status: AuthorizationStatus }[] = await manager.query(
      `SELECT a.id, a.status FROM generic_resource_authorization a
        WHERE a.alias_id = $1 AND EXISTS (SELECT 1 FROM generic_resource_authorization_scope s WHERE s.authorization_id = a.id AND s.scope = $2)
        ORDER BY a.id FOR UPDATE`,
      [aliasId, scope],
    );
    if (!affected.length) return;
    const ids = affected.map((a) => a.id);
    const before = await this.records(ids, manager);
    await manager.query('DELETE FROM generic_resource_authorization_scope WHERE authorization_id = ANY($1::uuid[]) AND scope = $2', [ids, scope]);
    for (const record of before) {
      const remaining = record.scopes.filter((s) => s !== scope);
      await manager.query('UPDATE generic_resource_authorization SET updated_at = now() WHERE id = $1', [record.id]);
      await this.record(manager, context, 'delegation.updated', record.id, {
        reason: 'alias_scope_removed',
        before: { scopes: record.scopes },
        after: { scopes: remaining },
      });
      if (!remaining.length && record.storedStatus === 'active') {
        await manager.query(
          `UPDATE generic_resource_authorization SET status = 'revoked', revoked_at = now(), revoked_by = $2, updated_at = now() WHERE id = $1`,
          [record.id, context.actor],
        );
        await this.record(manager, context, 'delegation.revoked', record.id, { reason: 'no_scope_left' });
      }
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private async records(ids: string[], manager: EntityManager = this.dataSource.manager): Promise<DelegationRecord[]> {
    if (!ids.length) return [];
    const rows: RawRecord[] = await manager.query(
      `SELECT a.id, a.status, a.alias_id, gr.identifier AS generic_resource, a.owner_account_id, a.delegate_account_id, a.delegate_email,
              a.expires_at, a.created_by, a.created_at, a.updated_at, a.revoked_at, a.revoked_by,
              (a.status = 'active' AND a.expires_at IS NOT NULL AND a.expires_at <= now()) AS lapsed,
              COALESCE((SELECT array_agg(s.scope ORDER BY s.scope) FROM generic_resource_authorization_scope s WHERE s.authorization_id = a.id), '{}') AS scopes
         FROM generic_resource_authorization a
         JOIN generic_resource_alias al ON al.id = a.alias_id
         JOIN generic_resource gr ON gr.id = al.generic_resource_id
        WHERE a.id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.filter((id) => byId.has(id)).map((id) => toRecord(byId.get(id)!));
  }

  private record(manager: EntityManager, context: ActorContext, action: string, targetId: string, details: Record<string, unknown>): Promise<void> {
    return this.audit.record(
      { actorType: 'admin', actorId: context.actor, action, targetType: 'generic_resource_authorization', targetId, requestId: context.requestId, details },
      manager,
    );
  }
}

interface RawRecord {
  id: string;
  status: AuthorizationStatus;
  alias_id: string;
  generic_resource: string;
  owner_account_id: string;
  delegate_account_id: string | null;
  delegate_email: string | null;
  expires_at: Date | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
  lapsed: boolean;
  scopes: string[];
}

function toRecord(r: RawRecord): DelegationRecord {
  return {
    id: r.id,
    status: r.lapsed ? 'expired' : r.status === 'active' && !r.delegate_account_id ? 'pending' : r.status,
    storedStatus: r.status,
    aliasId: r.alias_id,
    genericResource: r.generic_resource,
    ownerAccountId: r.owner_account_id,
    delegateAccountId: r.delegate_account_id,
    delegateEmail: r.delegate_email,
    scopes: r.scopes,
    expiresAt: r.expires_at ? new Date(r.expires_at) : null,
    createdBy: r.created_by,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    revokedAt: r.revoked_at ? new Date(r.revoked_at) : null,
    revokedBy: r.revoked_by,
  };
}

const snapshotOf = (r: DelegationRecord | undefined) =>
  r && {
    status: r.status,
    alias_id: r.aliasId,
    owner_account_id: r.ownerAccountId,
    delegate_account_id: r.delegateAccountId,
    delegate_email: r.delegateEmail,
    scopes: r.scopes,
    expires_at: r.expiresAt,
  };

/**
 * DelegationService names fields as the public API does (`aliases`, `delegate`); the admin API's
 * fields are `alias_id`, `delegate_account_id`, `delegate_email`. Renames them, and names the field
 * of the not-found errors that have one.
 */
function renameFields(error: unknown, fields: Record<string, string>, notFound: Record<string, string>): unknown {
  if (!(error instanceof DomainError)) return error;
  const field = error.details?.field as string | undefined;
  if (field && fields[field]) return new DelegationError(error.code, error.message, { ...error.details, field: fields[field] });
  if (error.code === 'NOT_FOUND' && error.message in notFound) {
    return new DelegationError(error.code, error.message, { ...error.details, field: notFound[error.message] });
  }
  return error;
}
