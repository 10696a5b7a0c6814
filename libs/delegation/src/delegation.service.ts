import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In } from 'typeorm';
import { AccountService } from '@rsa/auth';
import { decodeCursor, encodeCursor } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import {
  AccountEntity,
  AuditService,
  GenericResourceAliasEntity,
  GenericResourceAuthorizationEntity,
  GenericResourceAuthorizationScopeEntity,
} from '@rsa/database';
import { ResourceDiscoveryService } from '@rsa/resources';
import { DelegationError } from './delegation.errors';

export type DelegationView = {
  id: string;
  status: 'active' | 'pending' | 'revoked' | 'expired';
  alias: { id: string; type: string; name: string };
  owner: { sub: string; name: string | null; email: string | null };
  delegate: { sub: string | null; name: string | null; email: string | null };
  scopes: string[];
  expires_at: string | null;
  created_at: string;
  revoked_at: string | null;
};

export interface CreateDelegationInput {
  aliasIds: string[];
  scopes: string[];
  expiresAt?: Date | null;
  delegate: { sub?: string; email?: string };
}

export interface ActorContext {
  /** `account:<id>` for users, `admin:<name>` for operators. */
  actor: string;
  requestId?: string;
}

const PG_UNIQUE_VIOLATION = '23505';

/**
 * Creating, changing and ending delegations. Every rule is checked here, for users and admins alike,
 * and every change is audited in the same transaction.
 */
@Injectable()
export class DelegationService implements OnModuleInit {
  private readonly logger = new Logger(DelegationService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    private readonly accounts: AccountService,
    private readonly discovery: ResourceDiscoveryService,
    private readonly config: RsaConfig,
  ) {}

  onModuleInit(): void {
    // A pending delegation binds at the delegate's login, and only to a verified email (else anyone
    // who signs up upstream with someone else's address would inherit what was meant for them).
    this.accounts.onLogin((account) => this.bindPending(account));
    this.discovery.onAliasesGone((aliasIds, manager) => this.endForGoneAliases(aliasIds, manager));
  }

  async create(ownerId: string, input: CreateDelegationInput, context: ActorContext): Promise<DelegationView[]> {
    const aliasIds = [...new Set(input.aliasIds)];
    const scopes = [...new Set(input.scopes)];
    if (!aliasIds.length) throw DelegationError.invalid('aliases', 'at least one alias is required');
    if (!scopes.length) throw DelegationError.invalid('scopes', 'at least one scope is required');
    if (input.expiresAt && input.expiresAt.getTime() <= Date.now()) throw DelegationError.invalid('expires_at', 'expires_at must be in the future');
    if (Boolean(input.delegate.sub) === Boolean(input.delegate.email)) {
      throw DelegationError.invalid('delegate', 'give exactly one of delegate.sub or delegate.email');
    }

    const ids = await this.dataSource.transaction(async (manager) => {
      const aliases = await manager.find(GenericResourceAliasEntity, {
        where: { id: In(aliasIds), ownerAccountId: ownerId, status: 'active' },
        relations: { scopes: true },
      });
      // Only the owner may delegate: someone else's alias is "not found", like a missing one.
      if (aliases.length !== aliasIds.length) throw DelegationError.notFound('alias');
      for (const alias of aliases) {
        const available = new Set((alias.scopes ?? []).map((s) => s.scope));
        const missing = scopes.filter((s) => !available.has(s));
        if (missing.length) throw DelegationError.invalid('scopes', `alias ${alias.id} does not offer scope(s): ${missing.join(', ')}`);
      }

      const delegate = await this.findDelegate(manager, input.delegate);
      if (delegate.accountId === ownerId) throw DelegationError.invalid('delegate', 'you cannot delegate to yourself');

      // Delegations that lapsed (expires_at passed) are still `active` in the table until someone
      // looks: settle them now so they neither block a new delegation nor linger as active.
      await this.settleLapsed(manager, { aliasIds });

      const created: string[] = [];
      for (const alias of aliases) {
        let row: GenericResourceAuthorizationEntity;
        try {
          row = await manager.save(
            manager.create(GenericResourceAuthorizationEntity, {
              aliasId: alias.id,
              ownerAccountId: ownerId,
              delegateAccountId: delegate.accountId,
              delegateEmail: delegate.email,
              status: 'active',
              expiresAt: input.expiresAt ?? null,
              createdBy: context.actor,
            }),
          );
        } catch (error) {
          if ((error as { code?: string }).code === PG_UNIQUE_VIOLATION) {
            throw DelegationError.conflict(
              `an active delegation of alias ${alias.id} to this delegate exists already; change it with PATCH /delegations/{id}`,
              { alias_id: alias.id },
            );
          }
          throw error;
        }
        await manager.insert(GenericResourceAuthorizationScopeEntity, scopes.map((scope) => ({ authorizationId: row.id, scope })));
        await this.audit.record(
          {
            actorType: context.actor.startsWith('admin:') ? 'admin' : 'user',
            actorId: context.actor,
            action: 'delegation.created',
            targetType: 'generic_resource_authorization',
            targetId: row.id,
            requestId: context.requestId,
            details: { alias_id: alias.id, delegate_account_id: delegate.accountId, pending_email: delegate.accountId ? null : delegate.email, scopes, expires_at: input.expiresAt ?? null },
          },
          manager,
        );
        created.push(row.id);
      }
      return created;
    });
    return this.views(ids);
  }

  async list(callerId: string, direction: 'granted' | 'received', cursor: string | undefined, limit: number): Promise<{ items: DelegationView[]; next_cursor: string | null }> {
    const after = decodeCursor<{ id: string }>(cursor, ['id']);
    const column = direction === 'granted' ? 'owner_account_id' : 'delegate_account_id';
    const rows: { id: string }[] = await this.dataSource.query(
      `SELECT id FROM generic_resource_authorization WHERE ${column} = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3`,
      [callerId, after?.id ?? null, limit + 1],
    );
    const page = rows.slice(0, limit).map((r) => r.id);
    return { items: await this.views(page), next_cursor: rows.length > limit ? encodeCursor({ id: page[page.length - 1] }) : null };
  }

  /** One delegation the caller is party to (as owner or delegate), else not found. */
  async get(callerId: string, id: string): Promise<DelegationView> {
    const [view] = await this.views([id]);
    if (!view || (view.owner.sub !== callerId && view.delegate.sub !== callerId)) throw DelegationError.notFound();
    return view;
  }

  /**
   * The owner narrows the scopes or changes the expiry of an active delegation. With `mayWiden`
   * (operators only), the scopes may also grow, up to the scopes the alias offers.
   */
  async update(
    ownerId: string,
    id: string,
    change: { scopes?: string[]; expiresAt?: Date | null },
    context: ActorContext,
    options: { mayWiden?: boolean } = {},
  ): Promise<DelegationView> {
    await this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAuthorizationEntity, {
        where: { id, ownerAccountId: ownerId },
        relations: { scopes: true },
        lock: { mode: 'pessimistic_write', tables: ['generic_resource_authorization'] },
      });
      if (!row) throw DelegationError.notFound();
      if (row.status !== 'active' || (row.expiresAt && row.expiresAt <= new Date())) {
        throw DelegationError.conflict('only an active delegation can be changed');
      }
      const before = { scopes: (row.scopes ?? []).map((s) => s.scope).sort(), expires_at: row.expiresAt };
      if (change.scopes) {
        const next = [...new Set(change.scopes)];
        if (!next.length) throw DelegationError.invalid('scopes', 'at least one scope is required; to end the delegation, DELETE it');
        const widened = next.filter((s) => !before.scopes.includes(s));
        if (widened.length && options.mayWiden) {
          await this.checkAliasOffers(manager, row.aliasId, widened, 'scopes');
          await manager.insert(GenericResourceAuthorizationScopeEntity, widened.map((scope) => ({ authorizationId: id, scope })));
        } else if (widened.length) throw DelegationError.invalid('scopes', `scopes can only be narrowed; not granted before: ${widened.join(', ')}`);
        await manager.delete(GenericResourceAuthorizationScopeEntity, { authorizationId: id, scope: In(before.scopes.filter((s) => !next.includes(s))) });
      }
      if (change.expiresAt !== undefined) {
        if (change.expiresAt && change.expiresAt.getTime() <= Date.now()) throw DelegationError.invalid('expires_at', 'expires_at must be in the future');
        await manager.update(GenericResourceAuthorizationEntity, { id }, { expiresAt: change.expiresAt });
      } else {
        await manager.update(GenericResourceAuthorizationEntity, { id }, { updatedAt: () => 'now()' });
      }
      await this.audit.record(
        {
          actorType: context.actor.startsWith('admin:') ? 'admin' : 'user',
          actorId: context.actor,
          action: 'delegation.updated',
          targetType: 'generic_resource_authorization',
          targetId: id,
          requestId: context.requestId,
          details: { before, after: { scopes: change.scopes ?? before.scopes, expires_at: change.expiresAt === undefined ? before.expires_at : change.expiresAt } },
        },
        manager,
      );
    });
    return this.get(ownerId, id);
  }

  /** The owner revokes, or the delegate declines. Takes effect on the very next request. */
  async end(callerId: string, id: string, context: ActorContext): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAuthorizationEntity, {
        where: [
          { id, ownerAccountId: callerId },
          { id, delegateAccountId: callerId },
        ],
      });
      if (!row) throw DelegationError.notFound();
      if (row.status !== 'active') return; // already ended: idempotent
      const declined = row.ownerAccountId !== callerId;
      await manager.update(
        GenericResourceAuthorizationEntity,
        { id, status: 'active' },
        { status: 'revoked', revokedAt: () => 'now()', revokedBy: context.actor },
      );
      await this.audit.record(
        {
          actorType: context.actor.startsWith('admin:') ? 'admin' : 'user',
          actorId: context.actor,
          action: declined ? 'delegation.declined' : 'delegation.revoked',
          targetType: 'generic_resource_authorization',
          targetId: id,
          requestId: context.requestId,
        },
        manager,
      );
    });
  }

  /**
   * Operators: grants one more scope on an active delegation, up to the scopes its alias offers
   * (users can only narrow theirs; an operator repairing a delegation may widen it within the alias).
   */
  grantScope(id: string, scope: string, context: ActorContext): Promise<GenericResourceAuthorizationScopeEntity> {
    return this.changeGrantedScope(id, { add: scope }, context) as Promise<GenericResourceAuthorizationScopeEntity>;
  }

  /** Operators: replaces one granted scope by another the alias offers (the scope row keeps its id). */
  replaceScope(id: string, from: string, to: string, context: ActorContext): Promise<GenericResourceAuthorizationScopeEntity> {
    return this.changeGrantedScope(id, { remove: from, add: to }, context) as Promise<GenericResourceAuthorizationScopeEntity>;
  }

  /** Operators: withdraws one granted scope. The last one cannot go (409): revoke the delegation instead. */
  async withdrawScope(id: string, scope: string, context: ActorContext): Promise<void> {
    await this.changeGrantedScope(id, { remove: scope }, context);
  }

  private async changeGrantedScope(
    id: string,
    op: { add?: string; remove?: string },
    context: ActorContext,
  ): Promise<GenericResourceAuthorizationScopeEntity | null> {
    return this.dataSource.transaction(async (manager) => {
      // Lock first, then read the scopes in a statement of their own: under READ COMMITTED a join
      // in the locking statement could show scopes as they were before a concurrent change committed.
      const row = await manager.findOne(GenericResourceAuthorizationEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw DelegationError.notFound();
      if (row.status !== 'active' || (row.expiresAt && row.expiresAt <= new Date())) {
        throw DelegationError.conflict('only an active delegation can be changed');
      }
      const granted = await manager.find(GenericResourceAuthorizationScopeEntity, { where: { authorizationId: id } });
      const before = granted.map((s) => s.scope).sort();
      const removing = op.remove === undefined ? undefined : granted.find((s) => s.scope === op.remove);
      if (op.remove !== undefined && !removing) throw DelegationError.notFound('granted scope');
      if (op.add !== undefined) {
        if (before.includes(op.add)) throw DelegationError.conflict(`scope "${op.add}" is granted already`, { field: 'scope' });
        await this.checkAliasOffers(manager, row.aliasId, [op.add], 'scope');
      }
      const after = [...before.filter((s) => s !== op.remove), ...(op.add === undefined ? [] : [op.add])].sort();
      if (!after.length) throw DelegationError.conflict('a delegation keeps at least one scope; revoke the delegation instead');

      let result: GenericResourceAuthorizationScopeEntity | null = null;
      try {
        if (removing && op.add !== undefined) {
          await manager.update(GenericResourceAuthorizationScopeEntity, { id: removing.id }, { scope: op.add });
          result = { ...removing, scope: op.add };
        } else if (removing) {
          await manager.delete(GenericResourceAuthorizationScopeEntity, { id: removing.id });
        } else {
          result = await manager.save(manager.create(GenericResourceAuthorizationScopeEntity, { authorizationId: id, scope: op.add! }));
        }
      } catch (error) {
        if ((error as { code?: string }).code === PG_UNIQUE_VIOLATION) throw DelegationError.conflict(`scope "${op.add}" is granted already`, { field: 'scope' });
        throw error;
      }
      await manager.update(GenericResourceAuthorizationEntity, { id }, { updatedAt: () => 'now()' });
      await this.audit.record(
        {
          actorType: context.actor.startsWith('admin:') ? 'admin' : 'user',
          actorId: context.actor,
          action: 'delegation.updated',
          targetType: 'generic_resource_authorization',
          targetId: id,
          requestId: context.requestId,
          details: { before: { scopes: before }, after: { scopes: after } },
        },
        manager,
      );
      return result;
    });
  }

  /** Every scope must be offered by the alias; the alias scope rows are locked (FOR SHARE) so none is taken away meanwhile. */
  private async checkAliasOffers(manager: EntityManager, aliasId: string, scopes: string[], field: string): Promise<void> {
    const offered: { scope: string }[] = await manager.query(
      'SELECT scope FROM generic_resource_alias_scope WHERE alias_id = $1 AND scope = ANY($2::text[]) FOR SHARE',
      [aliasId, scopes],
    );
    const missing = scopes.filter((s) => !offered.some((o) => o.scope === s));
    if (missing.length) throw DelegationError.invalid(field, `alias ${aliasId} does not offer scope(s): ${missing.join(', ')}`);
  }

  /** Marks active delegations whose expiry has passed as `expired` (read paths ignore them anyway). */
  private async settleLapsed(manager: EntityManager, where: { aliasIds: string[] }): Promise<void> {
    await manager.query(
      `UPDATE generic_resource_authorization SET status = 'expired', updated_at = now()
        WHERE alias_id = ANY($1::uuid[]) AND status = 'active' AND expires_at IS NOT NULL AND expires_at <= now()`,
      [where.aliasIds],
    );
  }

  /** Binds pending email delegations to an account whose upstream asserts that email as verified. */
  async bindPending(account: AccountEntity): Promise<number> {
    const email = account.email?.toLowerCase();
    if (!email || !account.emailVerified) return 0;
    return this.dataSource.transaction(async (manager) => {
      const bound: { id: string }[] = await manager.query(
        `UPDATE generic_resource_authorization a
            SET delegate_account_id = $1, updated_at = now()
          WHERE a.delegate_account_id IS NULL AND a.status = 'active' AND a.delegate_email = $2 AND a.owner_account_id <> $1
            AND NOT EXISTS (SELECT 1 FROM generic_resource_authorization b
                             WHERE b.alias_id = a.alias_id AND b.delegate_account_id = $1 AND b.status = 'active')
        RETURNING a.id`,
        [account.id, email],
      ).then((result: [{ id: string }[], number]) => result[0]);
      for (const { id } of bound) {
        await this.audit.record(
          { actorType: 'system', action: 'delegation.bound', targetType: 'generic_resource_authorization', targetId: id, details: { delegate_account_id: account.id } },
          manager,
        );
      }
      if (bound.length) this.logger.log(`bound ${bound.length} pending delegation(s) to account ${account.id}`);
      return bound.length;
    });
  }

  /** Discovery found the aliases gone upstream: their delegations end with them. */
  async endForGoneAliases(aliasIds: string[], manager: EntityManager): Promise<void> {
    const ended: [{ id: string }[], number] = await manager.query(
      `UPDATE generic_resource_authorization SET status = 'expired', revoked_at = now(), revoked_by = 'system:discovery', updated_at = now()
        WHERE alias_id = ANY($1::uuid[]) AND status = 'active' RETURNING id`,
      [aliasIds],
    );
    for (const { id } of ended[0]) {
      await this.audit.record(
        { actorType: 'system', action: 'delegation.ended_alias_gone', targetType: 'generic_resource_authorization', targetId: id },
        manager,
      );
    }
  }

  private async findDelegate(manager: EntityManager, delegate: { sub?: string; email?: string }): Promise<{ accountId: string | null; email: string | null }> {
    if (delegate.sub) {
      const account = await manager.findOne(AccountEntity, { where: { id: delegate.sub } });
      if (!account) throw DelegationError.notFound('delegate');
      return { accountId: account.id, email: account.email };
    }
    const email = delegate.email!.trim().toLowerCase();
    // Bind at once only to an account whose upstream verified that address; otherwise wait.
    const account = await manager.findOne(AccountEntity, {
      where: { email, emailVerified: true, provider: this.config.upstream.issuer },
      order: { lastLoginAt: 'DESC' },
    });
    return { accountId: account?.id ?? null, email };
  }

  /** Views of delegations by id, in the given order, in a constant number of queries. */
  private async views(ids: string[]): Promise<DelegationView[]> {
    if (!ids.length) return [];
    const rows: RawView[] = await this.dataSource.query(
      `SELECT a.id, a.status, a.expires_at, a.created_at, a.revoked_at, a.delegate_email,
              (a.status = 'active' AND a.expires_at IS NOT NULL AND a.expires_at <= now()) AS lapsed,
              al.id AS alias_id, al.display_name AS alias_name, gr.identifier AS alias_type,
              o.id AS owner_id, o.name AS owner_name, o.email AS owner_email,
              d.id AS delegate_id, d.name AS delegate_name, d.email AS delegate_account_email,
              COALESCE((SELECT array_agg(s.scope ORDER BY s.scope) FROM generic_resource_authorization_scope s WHERE s.authorization_id = a.id), '{}') AS scopes
         FROM generic_resource_authorization a
         JOIN generic_resource_alias al ON al.id = a.alias_id
         JOIN generic_resource gr ON gr.id = al.generic_resource_id
         JOIN account o ON o.id = a.owner_account_id
         LEFT JOIN account d ON d.id = a.delegate_account_id
        WHERE a.id = ANY($1::uuid[])`,
      [ids],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    return ids.filter((id) => byId.has(id)).map((id) => toView(byId.get(id)!));
  }
}

interface RawView {
  id: string;
  status: GenericResourceAuthorizationEntity['status'];
  expires_at: Date | null;
  created_at: Date;
  revoked_at: Date | null;
  delegate_email: string | null;
  lapsed: boolean;
  alias_id: string;
  alias_name: string;
  alias_type: string;
  owner_id: string;
  owner_name: string | null;
  owner_email: string | null;
  delegate_id: string | null;
  delegate_name: string | null;
  delegate_account_email: string | null;
  scopes: string[];
}

function toView(r: RawView): DelegationView {
  const status = r.lapsed ? 'expired' : r.status === 'active' && !r.delegate_id ? 'pending' : r.status;
  return {
    id: r.id,
    status,
    alias: { id: r.alias_id, type: r.alias_type, name: r.alias_name },
    owner: { sub: r.owner_id, name: r.owner_name, email: r.owner_email },
    delegate: { sub: r.delegate_id, name: r.delegate_name, email: r.delegate_account_email ?? r.delegate_email },
    scopes: r.scopes,
    expires_at: r.expires_at ? new Date(r.expires_at).toISOString() : null,
    created_at: new Date(r.created_at).toISOString(),
    revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
  };
}

