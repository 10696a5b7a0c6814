import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, In } from 'typeorm';
import { decodeCursor, encodeCursor } from '@rsa/common';
import {
  AccountEntity,
  AliasStatus,
  AuditService,
  GenericResourceAliasEntity,
  GenericResourceAliasScopeEntity,
  GenericResourceEntity,
} from '@rsa/database';
import { CatalogueError, isForeignKeyViolation, isUniqueViolation } from './catalogue.errors';

/** Who makes a change (`admin:<id>`), for the audit trail. */
export interface CatalogueActor {
  actor: string;
  requestId?: string;
}

export interface PageRequest {
  cursor?: string;
  limit: number;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface GenericResourceInput {
  identifier: string;
  name: string;
  description?: string | null;
  pathTemplate: string;
  discoveryPath?: string | null;
  scopes: string[];
}

export interface AliasInput {
  ownerAccountId: string;
  genericResourceId: string;
  externalId: string;
  displayName: string;
  status?: AliasStatus;
  /** Default: every scope the generic resource supports (as discovery does). */
  scopes?: string[];
}

export interface AliasChange {
  externalId?: string;
  displayName?: string;
  status?: AliasStatus;
}

/** An alias with its scopes, sorted. */
export type AliasRecord = Omit<GenericResourceAliasEntity, 'scopes' | 'owner' | 'genericResource'> & { scopes: string[] };

/**
 * Called inside the transaction that marks aliases `gone` or deletes them, before the change, so
 * whoever depends on aliases (the delegation lib) ends what hangs on them in the same commit.
 */
export type AliasesEndingListener = (event: { aliasIds: string[]; change: 'gone' | 'deleted' }, manager: EntityManager, context: CatalogueActor) => Promise<void>;
/** Called inside the transaction that takes a scope away from an alias, before the change. */
export type AliasScopeRemovedListener = (event: { aliasId: string; scope: string }, manager: EntityManager, context: CatalogueActor) => Promise<void>;

/** `{id}` exactly once, a leading `/`, no query, fragment, other braces, whitespace or dot segments. */
export const PATH_TEMPLATE_PATTERN = /^\/(?!.*\/\.\.?(?:\/|$))[^\s?#{}]*\{id\}[^\s?#{}]*$/;
/** A leading `/`; a query is allowed (it is sent as is), a fragment, braces, whitespace and dot segments are not. */
export const DISCOVERY_PATH_PATTERN = /^\/(?!.*\/\.\.?(?:\/|$|\?))[^\s#{}]*$/;

/**
 * The operator's side of the catalogue: generic resources, aliases and alias scopes, each write
 * audited in the same transaction. Rules that keep the data whole:
 * - a generic resource with aliases cannot be deleted, nor lose a scope an alias still carries (409);
 * - an alias scope must be one of its generic resource's scopes;
 * - deleting an alias deletes its scopes and its delegations (FK cascade), marking it `gone` ends
 *   its delegations, removing an alias scope removes it from its delegations — each through the
 *   listeners, in the same transaction, so nothing that hangs on an alias outlives it.
 */
@Injectable()
export class CatalogueAdminService {
  private readonly aliasesEnding: AliasesEndingListener[] = [];
  private readonly aliasScopeRemoved: AliasScopeRemovedListener[] = [];

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly audit: AuditService,
  ) {}

  onAliasesEnding(listener: AliasesEndingListener): void {
    this.aliasesEnding.push(listener);
  }

  onAliasScopeRemoved(listener: AliasScopeRemovedListener): void {
    this.aliasScopeRemoved.push(listener);
  }

  // ---- generic resources -------------------------------------------------------------------

  /** Ordered by identifier. `q` matches identifier or name (case-insensitive substring). */
  async listGenericResources(filter: { identifier?: string; q?: string; scope?: string }, page: PageRequest): Promise<Page<GenericResourceEntity>> {
    const after = decodeCursor<{ identifier: string }>(page.cursor, ['identifier']);
    const qb = this.dataSource.getRepository(GenericResourceEntity).createQueryBuilder('r').orderBy('r.identifier', 'ASC').take(page.limit + 1);
    if (filter.identifier) qb.andWhere('r.identifier = :identifier', { identifier: filter.identifier });
    if (filter.q) qb.andWhere(`(r.identifier ILIKE :q OR r.name ILIKE :q)`, { q: `%${escapeLike(filter.q)}%` });
    if (filter.scope) qb.andWhere(':scope = ANY(r.scopes)', { scope: filter.scope });
    if (after) qb.andWhere('r.identifier > :after', { after: after.identifier });
    const rows = await qb.getMany();
    return paginate(rows, page.limit, (r) => ({ identifier: r.identifier }));
  }

  async getGenericResource(id: string): Promise<GenericResourceEntity> {
    const row = await this.dataSource.getRepository(GenericResourceEntity).findOneBy({ id });
    if (!row) throw CatalogueError.notFound('generic resource');
    return row;
  }

  async createGenericResource(input: GenericResourceInput, context: CatalogueActor): Promise<GenericResourceEntity> {
    const values = checkGenericResource(input);
    return this.dataSource.transaction(async (manager) => {
      let row: GenericResourceEntity;
      try {
        row = await manager.save(manager.create(GenericResourceEntity, values));
      } catch (error) {
        if (isUniqueViolation(error)) throw CatalogueError.conflict(`a generic resource with identifier "${values.identifier}" exists already`, { field: 'identifier' });
        throw error;
      }
      await this.record(manager, context, 'generic_resource.created', 'generic_resource', row.id, { after: genericResourceSnapshot(row) });
      return row;
    });
  }

  /**
   * Changes a generic resource. Removing a scope that an alias still carries is a 409: remove it
   * from those aliases first (which removes it from their delegations). Added scopes are not given
   * to existing aliases (discovery gives new aliases every scope of their kind).
   */
  async updateGenericResource(id: string, change: Partial<GenericResourceInput>, context: CatalogueActor): Promise<GenericResourceEntity> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('generic resource');
      const before = genericResourceSnapshot(row);
      const next = checkGenericResource({ ...row, ...definedOnly(change) });
      const removed = row.scopes.filter((s) => !next.scopes.includes(s));
      if (removed.length) {
        const [{ count }]: { count: number }[] = await manager.query(
          `SELECT count(DISTINCT s.alias_id)::int AS count
             FROM generic_resource_alias_scope s JOIN generic_resource_alias al ON al.id = s.alias_id
            WHERE al.generic_resource_id = $1 AND s.scope = ANY($2::text[])`,
          [id, removed],
        );
        if (count > 0) {
          throw CatalogueError.conflict(`scope(s) ${removed.join(', ')} are still carried by ${count} alias(es); remove them from the aliases first`, {
            field: 'scopes',
            scopes: removed,
            aliases: count,
          });
        }
      }
      Object.assign(row, next);
      const after = genericResourceSnapshot(row);
      if (JSON.stringify(after) === JSON.stringify(before)) return row; // nothing changes: no write, no event
      try {
        await manager.save(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw CatalogueError.conflict(`a generic resource with identifier "${next.identifier}" exists already`, { field: 'identifier' });
        throw error;
      }
      await this.record(manager, context, 'generic_resource.updated', 'generic_resource', id, { before, after });
      return row;
    });
  }

  /** Refused (409) while any alias — active or gone — is of this kind: aliases are never orphaned. */
  async deleteGenericResource(id: string, context: CatalogueActor): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('generic resource');
      const aliases = await manager.count(GenericResourceAliasEntity, { where: { genericResourceId: id } });
      if (aliases > 0) throw CatalogueError.conflict(`generic resource "${row.identifier}" has ${aliases} alias(es); delete them first`, { aliases });
      try {
        await manager.delete(GenericResourceEntity, { id });
      } catch (error) {
        if (isForeignKeyViolation(error)) throw CatalogueError.conflict(`generic resource "${row.identifier}" has aliases; delete them first`);
        throw error;
      }
      await this.record(manager, context, 'generic_resource.deleted', 'generic_resource', id, { before: genericResourceSnapshot(row) });
    });
  }

  // ---- aliases -------------------------------------------------------------------------------

  async listAliases(
    filter: { ownerAccountId?: string; genericResourceId?: string; status?: AliasStatus; externalId?: string },
    page: PageRequest,
  ): Promise<Page<AliasRecord>> {
    const after = decodeCursor<{ id: string }>(page.cursor, ['id']);
    const qb = this.dataSource.getRepository(GenericResourceAliasEntity).createQueryBuilder('al').orderBy('al.id', 'ASC').take(page.limit + 1);
    if (filter.ownerAccountId) qb.andWhere('al.owner_account_id = :owner', { owner: filter.ownerAccountId });
    if (filter.genericResourceId) qb.andWhere('al.generic_resource_id = :kind', { kind: filter.genericResourceId });
    if (filter.status) qb.andWhere('al.status = :status', { status: filter.status });
    if (filter.externalId) qb.andWhere('al.external_id = :externalId', { externalId: filter.externalId });
    if (after) qb.andWhere('al.id > :after', { after: after.id });
    const rows = await qb.getMany();
    const page_ = paginate(rows, page.limit, (r) => ({ id: r.id }));
    return { items: await this.withScopes(this.dataSource.manager, page_.items), next_cursor: page_.next_cursor };
  }

  async getAlias(id: string): Promise<AliasRecord> {
    const row = await this.dataSource.getRepository(GenericResourceAliasEntity).findOneBy({ id });
    if (!row) throw CatalogueError.notFound('alias');
    return (await this.withScopes(this.dataSource.manager, [row]))[0];
  }

  async createAlias(input: AliasInput, context: CatalogueActor): Promise<AliasRecord> {
    return this.dataSource.transaction(async (manager) => {
      if (!(await manager.exists(AccountEntity, { where: { id: input.ownerAccountId } }))) throw CatalogueError.notFound('owner account', 'owner_account_id');
      // FOR SHARE: the kind's scopes cannot change under us (updateGenericResource takes FOR UPDATE).
      const kind = await manager.findOne(GenericResourceEntity, { where: { id: input.genericResourceId }, lock: { mode: 'pessimistic_read' } });
      if (!kind) throw CatalogueError.notFound('generic resource', 'generic_resource_id');
      const scopes = input.scopes === undefined ? kind.scopes : [...new Set(input.scopes)];
      const unknown = scopes.filter((s) => !kind.scopes.includes(s));
      if (unknown.length) throw CatalogueError.invalid('scopes', `generic resource "${kind.identifier}" does not offer scope(s): ${unknown.join(', ')}`);
      let row: GenericResourceAliasEntity;
      try {
        row = await manager.save(
          manager.create(GenericResourceAliasEntity, {
            ownerAccountId: input.ownerAccountId,
            genericResourceId: kind.id,
            externalId: input.externalId,
            displayName: input.displayName,
            status: input.status ?? 'active',
            lastSeenAt: null,
          }),
        );
      } catch (error) {
        if (isUniqueViolation(error)) {
          throw CatalogueError.conflict(`this owner has an alias of "${kind.identifier}" with external_id "${input.externalId}" already`, { field: 'external_id' });
        }
        throw error;
      }
      if (scopes.length) await manager.insert(GenericResourceAliasScopeEntity, scopes.map((scope) => ({ aliasId: row.id, scope })));
      const [record] = await this.withScopes(manager, [row]);
      await this.record(manager, context, 'generic_resource_alias.created', 'generic_resource_alias', row.id, { after: aliasSnapshot(record) });
      return record;
    });
  }

  /**
   * Renames an alias, changes its external id, or its status. `active` → `gone` ends its active
   * delegations (status `expired`, as when discovery finds a resource gone); `gone` → `active`
   * does not bring them back. Owner and generic resource never change: create another alias.
   */
  async updateAlias(id: string, change: AliasChange, context: CatalogueActor): Promise<AliasRecord> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAliasEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('alias');
      const [before] = await this.withScopes(manager, [row]);
      const changes = definedOnly({ externalId: change.externalId, displayName: change.displayName, status: change.status });
      if (Object.entries(changes).every(([key, value]) => row[key as keyof typeof changes] === value)) return before; // no write, no event
      if (change.status === 'gone' && row.status !== 'gone') {
        for (const listener of this.aliasesEnding) await listener({ aliasIds: [id], change: 'gone' }, manager, context);
      }
      Object.assign(row, changes);
      try {
        await manager.save(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw CatalogueError.conflict(`this owner has an alias of this kind with external_id "${row.externalId}" already`, { field: 'external_id' });
        throw error;
      }
      const [after] = await this.withScopes(manager, [row]);
      await this.record(manager, context, 'generic_resource_alias.updated', 'generic_resource_alias', id, { before: aliasSnapshot(before), after: aliasSnapshot(after) });
      return after;
    });
  }

  /**
   * Deletes an alias, its scopes and every delegation of it, in one transaction (the delegations are
   * audited one by one before they go). To keep the delegations' history, mark the alias `gone`.
   */
  async deleteAlias(id: string, context: CatalogueActor): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAliasEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('alias');
      const [before] = await this.withScopes(manager, [row]);
      for (const listener of this.aliasesEnding) await listener({ aliasIds: [id], change: 'deleted' }, manager, context);
      const [{ count: delegations }]: { count: number }[] = await manager.query(
        'SELECT count(*)::int AS count FROM generic_resource_authorization WHERE alias_id = $1',
        [id],
      );
      // alias scopes, delegations and their scopes go with it (ON DELETE CASCADE).
      await manager.delete(GenericResourceAliasEntity, { id });
      await this.record(manager, context, 'generic_resource_alias.deleted', 'generic_resource_alias', id, { before: aliasSnapshot(before), delegations_deleted: delegations });
    });
  }

  // ---- alias scopes -----------------------------------------------------------------------------

  async listAliasScopes(filter: { aliasId?: string; scope?: string }, page: PageRequest): Promise<Page<GenericResourceAliasScopeEntity>> {
    const after = decodeCursor<{ id: string }>(page.cursor, ['id']);
    const qb = this.dataSource.getRepository(GenericResourceAliasScopeEntity).createQueryBuilder('s').orderBy('s.id', 'ASC').take(page.limit + 1);
    if (filter.aliasId) qb.andWhere('s.alias_id = :aliasId', { aliasId: filter.aliasId });
    if (filter.scope) qb.andWhere('s.scope = :scope', { scope: filter.scope });
    if (after) qb.andWhere('s.id > :after', { after: after.id });
    return paginate(await qb.getMany(), page.limit, (r) => ({ id: r.id }));
  }

  async getAliasScope(id: string): Promise<GenericResourceAliasScopeEntity> {
    const row = await this.dataSource.getRepository(GenericResourceAliasScopeEntity).findOneBy({ id });
    if (!row) throw CatalogueError.notFound('alias scope');
    return row;
  }

  async createAliasScope(input: { aliasId: string; scope: string }, context: CatalogueActor): Promise<GenericResourceAliasScopeEntity> {
    return this.dataSource.transaction(async (manager) => {
      const alias = await manager.findOne(GenericResourceAliasEntity, { where: { id: input.aliasId }, lock: { mode: 'pessimistic_read' } });
      if (!alias) throw CatalogueError.notFound('alias', 'alias_id');
      await this.checkOffered(manager, alias.genericResourceId, input.scope);
      let row: GenericResourceAliasScopeEntity;
      try {
        row = await manager.save(manager.create(GenericResourceAliasScopeEntity, { aliasId: alias.id, scope: input.scope }));
      } catch (error) {
        if (isUniqueViolation(error)) throw CatalogueError.conflict(`alias ${alias.id} has scope "${input.scope}" already`, { field: 'scope' });
        throw error;
      }
      await this.record(manager, context, 'generic_resource_alias_scope.created', 'generic_resource_alias_scope', row.id, { alias_id: alias.id, scope: row.scope });
      return row;
    });
  }

  /** Replaces the scope (same id): the old one is taken from the alias's delegations as by a DELETE. */
  async updateAliasScope(id: string, change: { scope: string }, context: CatalogueActor): Promise<GenericResourceAliasScopeEntity> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.findOne(GenericResourceAliasScopeEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('alias scope');
      if (row.scope === change.scope) return row;
      const alias = await manager.findOneOrFail(GenericResourceAliasEntity, { where: { id: row.aliasId } });
      await this.checkOffered(manager, alias.genericResourceId, change.scope);
      for (const listener of this.aliasScopeRemoved) await listener({ aliasId: row.aliasId, scope: row.scope }, manager, context);
      const before = row.scope;
      row.scope = change.scope;
      try {
        await manager.save(row);
      } catch (error) {
        if (isUniqueViolation(error)) throw CatalogueError.conflict(`alias ${row.aliasId} has scope "${change.scope}" already`, { field: 'scope' });
        throw error;
      }
      await this.record(manager, context, 'generic_resource_alias_scope.updated', 'generic_resource_alias_scope', id, { alias_id: row.aliasId, before: { scope: before }, after: { scope: row.scope } });
      return row;
    });
  }

  /** Takes the scope from the alias and, in the same transaction, from every delegation of the alias. */
  async deleteAliasScope(id: string, context: CatalogueActor): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      // FOR UPDATE first: a delegation granting this scope concurrently (FOR SHARE on this row) has
      // committed before the listeners look, or sees the scope gone.
      const row = await manager.findOne(GenericResourceAliasScopeEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!row) throw CatalogueError.notFound('alias scope');
      for (const listener of this.aliasScopeRemoved) await listener({ aliasId: row.aliasId, scope: row.scope }, manager, context);
      await manager.delete(GenericResourceAliasScopeEntity, { id });
      await this.record(manager, context, 'generic_resource_alias_scope.deleted', 'generic_resource_alias_scope', id, { alias_id: row.aliasId, scope: row.scope });
    });
  }

  // ---- helpers -----------------------------------------------------------------------------------

  private async checkOffered(manager: EntityManager, genericResourceId: string, scope: string): Promise<void> {
    const kind = await manager.findOne(GenericResourceEntity, { where: { id: genericResourceId }, lock: { mode: 'pessimistic_read' } });
    if (!kind?.scopes.includes(scope)) {
      throw CatalogueError.invalid('scope', `must be one of the scopes of generic resource "${kind?.identifier}": ${kind?.scopes.join(', ')}`);
    }
  }

  private async withScopes(manager: EntityManager, rows: GenericResourceAliasEntity[]): Promise<AliasRecord[]> {
    if (!rows.length) return [];
    const scopes = await manager.find(GenericResourceAliasScopeEntity, { where: { aliasId: In(rows.map((r) => r.id)) } });
    return rows.map((row) => {
      const { scopes: _relation, owner: _owner, genericResource: _kind, ...plain } = row;
      return { ...plain, scopes: scopes.filter((s) => s.aliasId === row.id).map((s) => s.scope).sort() };
    });
  }

  private record(manager: EntityManager, context: CatalogueActor, action: string, targetType: string, targetId: string, details: Record<string, unknown>): Promise<void> {
    return this.audit.record({ actorType: 'admin', actorId: context.actor, action, targetType, targetId, requestId: context.requestId, details }, manager);
  }
}

function checkGenericResource(input: GenericResourceInput): Required<GenericResourceInput> {
  if (!PATH_TEMPLATE_PATTERN.test(input.pathTemplate)) {
    throw CatalogueError.invalid('path_template', 'path_template must start with "/" and contain "{id}" exactly once (no query, fragment or dot segments)');
  }
  if (input.discoveryPath && !DISCOVERY_PATH_PATTERN.test(input.discoveryPath)) {
    throw CatalogueError.invalid('discovery_path', 'discovery_path must start with "/" (no fragment, braces or dot segments)');
  }
  const scopes = [...new Set(input.scopes)];
  if (!scopes.length) throw CatalogueError.invalid('scopes', 'at least one scope is required');
  return {
    identifier: input.identifier,
    name: input.name,
    description: input.description ?? null,
    pathTemplate: input.pathTemplate,
    discoveryPath: input.discoveryPath ?? null,
    scopes,
  };
}

const genericResourceSnapshot = (r: GenericResourceEntity) => ({
  identifier: r.identifier,
  name: r.name,
  description: r.description,
  path_template: r.pathTemplate,
  discovery_path: r.discoveryPath,
  scopes: r.scopes,
});

const aliasSnapshot = (a: AliasRecord) => ({
  owner_account_id: a.ownerAccountId,
  generic_resource_id: a.genericResourceId,
  external_id: a.externalId,
  display_name: a.displayName,
  status: a.status,
  scopes: a.scopes,
});

function paginate<T>(rows: T[], limit: number, position: (row: T) => Record<string, string>): Page<T> {
  const items = rows.slice(0, limit);
  return { items, next_cursor: rows.length > limit ? encodeCursor(position(items[items.length - 1])) : null };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const escapeLike = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`);
