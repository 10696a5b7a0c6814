import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, Not } from 'typeorm';
import { AccountService, UpstreamTokenVault } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { fetchWithTimeout } from '@rsa/common';
import {
  AccountEntity,
  GenericResourceAliasEntity,
  GenericResourceAliasScopeEntity,
  GenericResourceEntity,
} from '@rsa/database';
import { CatalogueService } from './catalogue.service';

export interface DiscoveredItem {
  id: string;
  name: string;
}

export type AliasesGoneListener = (aliasIds: string[], manager: import('typeorm').EntityManager) => Promise<void>;

const MAX_DISCOVERY_BYTES = 1024 * 1024;
const FRESHNESS_MEMO_MAX = 50_000;

/**
 * Resource discovery: lists a user's resources at the upstream resource API with the user's own
 * token and syncs their aliases — new ones added (with all the scopes their kind supports), known
 * ones renamed, vanished ones marked `gone` (listeners end their delegations in the same transaction).
 */
@Injectable()
export class ResourceDiscoveryService implements OnModuleInit {
  private readonly logger = new Logger(ResourceDiscoveryService.name);
  private readonly fetch: typeof fetch;
  private readonly goneListeners: AliasesGoneListener[] = [];
  /** Per account: until when its last listing is known to be fresh. */
  private readonly freshUntil = new Map<string, number>();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly catalogue: CatalogueService,
    private readonly config: RsaConfig,
    private readonly accounts: AccountService,
    private readonly vault: UpstreamTokenVault,
  ) {
    this.fetch = fetchWithTimeout(config.upstream.timeoutMs);
  }

  onModuleInit(): void {
    if (this.config.resourceManagement.enabled) this.accounts.onLogin((account) => this.discoverWithVault(account.id));
  }

  /** Discovery with the account's own upstream token from the vault. */
  async discoverWithVault(accountId: string): Promise<void> {
    await this.discover(accountId, await this.vault.getUsableAccessToken(accountId));
  }

  onAliasesGone(listener: AliasesGoneListener): void {
    this.goneListeners.push(listener);
  }

  /**
   * Lists the account's resources again when the last listing is older than
   * RESOURCE_DISCOVERY_STALE_SECONDS (best effort: stale but present data is better than a failed
   * listing). A listing seen fresh is remembered until it goes stale — a newer listing only makes it
   * fresher — so a busy account costs no query here until then. True when discovery ran (whether
   * or not it found anything): what was read before may be out of date.
   */
  async refreshIfStale(accountId: string): Promise<boolean> {
    const until = this.freshUntil.get(accountId);
    if (until !== undefined && until > Date.now()) return false;
    this.freshUntil.delete(accountId);
    const [row]: { resources_synced_at: Date | null }[] = await this.dataSource.query('SELECT resources_synced_at FROM account WHERE id = $1', [accountId]);
    if (!row) return false;
    const syncedAt = row.resources_synced_at ? new Date(row.resources_synced_at) : null;
    if (!this.isStale({ resourcesSyncedAt: syncedAt })) {
      if (this.freshUntil.size >= FRESHNESS_MEMO_MAX) this.freshUntil.delete(this.freshUntil.keys().next().value as string);
      this.freshUntil.set(accountId, syncedAt!.getTime() + this.config.resourceManagement.discoveryStaleSeconds * 1000);
      return false;
    }
    await this.discoverWithVault(accountId).catch(() => undefined);
    return true;
  }

  /** True when the account's resources have not been listed within RESOURCE_DISCOVERY_STALE_SECONDS. */
  isStale(account: Pick<AccountEntity, 'resourcesSyncedAt'>): boolean {
    if (!account.resourcesSyncedAt) return true;
    return account.resourcesSyncedAt.getTime() + this.config.resourceManagement.discoveryStaleSeconds * 1000 < Date.now();
  }

  /** Syncs every discoverable kind for the account. A kind whose listing fails is left as it was. */
  async discover(accountId: string, upstreamAccessToken: string): Promise<void> {
    const kinds = await this.catalogue.withDiscovery();
    const listings = await Promise.all(
      kinds.map(async (kind) => {
        try {
          return { kind, items: await this.list(kind, upstreamAccessToken) };
        } catch (error) {
          this.logger.warn(`discovery of ${kind.identifier} for account ${accountId} failed: ${(error as Error).message}`);
          return { kind, items: undefined };
        }
      }),
    );
    await this.dataSource.transaction(async (manager) => {
      for (const { kind, items } of listings) {
        if (items) await this.sync(manager, accountId, kind, items);
      }
      await manager.update(AccountEntity, { id: accountId }, { resourcesSyncedAt: () => 'now()', updatedAt: () => 'updated_at' });
    });
  }

  private async list(kind: GenericResourceEntity, token: string): Promise<DiscoveredItem[]> {
    const url = `${this.config.upstream.resourceBaseUrl}${kind.discoveryPath}`;
    const res = await this.fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, redirect: 'manual' });
    if (!res.ok) throw new Error(`upstream answered ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_DISCOVERY_BYTES) throw new Error('listing too large');
    const body = JSON.parse(text) as unknown;
    const items = Array.isArray(body) ? body : (body as { items?: unknown })?.items;
    if (!Array.isArray(items)) throw new Error('listing is not an array or { items: [] }');
    return items
      .filter((i): i is Record<string, unknown> => typeof i === 'object' && i !== null && (typeof i.id === 'string' || typeof i.id === 'number'))
      .map((i) => ({ id: String(i.id), name: typeof i.name === 'string' && i.name ? i.name.slice(0, 255) : String(i.id) }));
  }

  private async sync(manager: import('typeorm').EntityManager, ownerAccountId: string, kind: GenericResourceEntity, items: DiscoveredItem[]): Promise<void> {
    const ids = items.map((i) => i.id);
    if (items.length) {
      const inserted = await manager
        .createQueryBuilder()
        .insert()
        .into(GenericResourceAliasEntity)
        .values(items.map((i) => ({ ownerAccountId, genericResourceId: kind.id, externalId: i.id, displayName: i.name, status: 'active' as const, lastSeenAt: () => 'now()' })))
        .orUpdate(['display_name', 'status', 'last_seen_at', 'updated_at'], ['owner_account_id', 'generic_resource_id', 'external_id'])
        // xmax = 0 only for rows this statement inserted (not for the ones it updated).
        .returning('id, (xmax = 0) AS inserted')
        .execute();
      const aliasIds = (inserted.raw as { id: string; inserted: boolean }[]).filter((r) => r.inserted).map((r) => r.id);
      // New aliases get every scope their kind supports; existing ones keep what they have.
      if (kind.scopes.length && aliasIds.length) {
        await manager
          .createQueryBuilder()
          .insert()
          .into(GenericResourceAliasScopeEntity)
          .values(aliasIds.flatMap((aliasId) => kind.scopes.map((scope) => ({ aliasId, scope }))))
          .orIgnore()
          .execute();
      }
    }
    const gone = await manager.find(GenericResourceAliasEntity, {
      select: ['id'],
      where: { ownerAccountId, genericResourceId: kind.id, status: 'active', ...(ids.length ? { externalId: Not(In(ids)) } : {}) },
    });
    if (gone.length) {
      const goneIds = gone.map((g) => g.id);
      await manager.update(GenericResourceAliasEntity, { id: In(goneIds) }, { status: 'gone' });
      for (const listener of this.goneListeners) await listener(goneIds, manager);
    }
  }
}
