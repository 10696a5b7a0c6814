import { Injectable, Logger } from '@nestjs/common';
import {
  UpstreamClient,
  UpstreamFailureReason,
  UpstreamSubjectMismatchError,
  UpstreamTimeoutError,
  UpstreamTokenError,
  UpstreamTokenVault,
} from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { AuditService, RevisionCache, UpstreamTokenEntity } from '@rsa/database';
import { AccessPolicy, DelegatedResource } from '@rsa/delegation';
import { mapWithConcurrency, withDeadline } from './concurrency';
import { TtlCache } from './ttl-cache';

export interface RelatedResource {
  id: string;
  type: string;
  name: string;
  scopes: string[];
}

export interface RelatedEntry {
  sub: string;
  name: string | null;
  email: string | null;
  status: 'available' | 'unavailable';
  reason?: UpstreamFailureReason;
  resources: RelatedResource[];
}

interface OwnerDetails {
  name: string | null;
  email: string | null;
}

interface Assembled {
  delegated: readonly DelegatedResource[];
  ownerIds: string[];
  details: OwnerDetails[];
  entries: readonly RelatedEntry[];
}

const ASSEMBLED_MAX = 10_000;
const ASSEMBLED_MAX_RESOURCES = 200_000;

type OwnerOutcome = { kind: 'available'; details: OwnerDetails } | { kind: 'unavailable'; reason: UpstreamFailureReason } | { kind: 'dropped' };

/**
 * The `related` claim: one entry per owner with at least one active delegation to the caller.
 * Owner details come from the upstream userinfo fetched with the OWNER's stored tokens (through the
 * vault, refreshed if needed), concurrently with a bound, each owner within its own deadline, cached
 * briefly. One owner's dead tokens make that entry `unavailable` with a reason — never a failed call.
 */
@Injectable()
export class RelatedClaimService {
  private readonly logger = new Logger(RelatedClaimService.name);
  private readonly cache: TtlCache<OwnerDetails>;
  /**
   * Per caller, the last claim built entirely from cached owner details: reused while the caller's
   * delegations are the very same cached answer (same data revision) and every owner's cached
   * details are the very same objects (none refetched or lapsed). At most 10,000 callers and
   * 200,000 resources (a claim's JSON is about as big as its entries).
   */
  private readonly assembled = new RevisionCache<Assembled>({
    maxEntries: ASSEMBLED_MAX,
    maxWeight: ASSEMBLED_MAX_RESOURCES,
    weigh: (a) => a.delegated.length + a.ownerIds.length || 1,
  });
  private readonly serialized = new WeakMap<readonly RelatedEntry[], string>();

  constructor(
    private readonly policy: AccessPolicy,
    private readonly vault: UpstreamTokenVault,
    private readonly upstream: UpstreamClient,
    private readonly audit: AuditService,
    private readonly config: RsaConfig,
  ) {
    this.cache = new TtlCache(config.resourceManagement.relatedCacheTtlSeconds * 1000);
  }

  /**
   * `context.revision`: the data revision the request was authorised under (RsaPrincipal.revision).
   * With it, the caller's delegations are read once per revision (AccessPolicy); without it, on every call.
   */
  async relatedFor(callerId: string, context: { requestId?: string; revision?: string } = {}): Promise<readonly RelatedEntry[]> {
    const delegated = await this.policy.allDelegated(callerId, { revision: context.revision });
    const memo = context.revision === undefined ? undefined : this.assembled.get(callerId, context.revision);
    if (memo && memo.delegated === delegated && memo.ownerIds.every((id, i) => this.cache.get(id) === memo.details[i])) return memo.entries;
    const byOwner = new Map<string, DelegatedResource[]>();
    for (const resource of delegated) {
      const list = byOwner.get(resource.ownerAccountId) ?? [];
      list.push(resource);
      byOwner.set(resource.ownerAccountId, list);
    }
    const owners = [...byOwner.values()].map((resources) => resources[0]);
    // The cache is read once, here: an entry that lapses while this request waits for slower owners
    // must not cost its owner a token query (and an upstream call) of its own.
    const cached = new Map(owners.map((o) => [o.ownerAccountId, this.cache.get(o.ownerAccountId)]));
    // Owners not in the cache: their token rows in one query, whatever their number.
    const misses = owners.filter((o) => !cached.get(o.ownerAccountId));
    const rows = await this.vault.loadMany(misses.map((o) => o.ownerAccountId));
    // Only the misses go through the bounded fan-out; cached owners cost no promise at all.
    const fetched = await mapWithConcurrency(
      misses,
      this.config.resourceManagement.relatedConcurrency,
      (owner) => this.ownerOutcome(owner, rows.get(owner.ownerAccountId) ?? null, callerId, context.requestId),
    );
    let nextFetched = 0;
    const outcomes = owners.map((owner): OwnerOutcome => {
      const details = cached.get(owner.ownerAccountId);
      return details ? { kind: 'available', details } : fetched[nextFetched++];
    });
    const entries: RelatedEntry[] = [];
    owners.forEach((owner, index) => {
      const outcome = outcomes[index];
      if (outcome.kind === 'dropped') return;
      const resources = byOwner.get(owner.ownerAccountId)!.map(({ id, type, name, scopes }) => ({ id, type, name, scopes }));
      entries.push(
        outcome.kind === 'available'
          ? { sub: owner.ownerAccountId, ...outcome.details, status: 'available', resources }
          : { sub: owner.ownerAccountId, name: owner.ownerName, email: owner.ownerEmail, status: 'unavailable', reason: outcome.reason, resources },
      );
    });
    if (!misses.length && context.revision !== undefined) {
      const ownerIds = owners.map((o) => o.ownerAccountId);
      this.assembled.set(callerId, { delegated, ownerIds, details: ownerIds.map((id) => cached.get(id)!), entries: Object.freeze(entries) }, context.revision);
    }
    return entries;
  }

  /** The claim as JSON, serialized once per built claim (a reused claim is not serialized again). */
  toJson(entries: readonly RelatedEntry[]): string {
    let json = this.serialized.get(entries);
    if (json === undefined) {
      json = JSON.stringify(entries);
      this.serialized.set(entries, json);
    }
    return json;
  }

  private async ownerOutcome(
    owner: DelegatedResource,
    /** Preloaded by loadMany; null when the owner has no stored tokens. */
    tokenRow: UpstreamTokenEntity | null,
    callerId: string,
    requestId?: string,
  ): Promise<OwnerOutcome> {
    // Another request may have fetched this owner meanwhile.
    const cached = this.cache.get(owner.ownerAccountId);
    if (cached) return { kind: 'available', details: cached };
    const deadline = this.config.upstream.timeoutMs + 1000;
    try {
      const claims = await withDeadline(
        (async () => {
          const token = await this.vault.getUsableAccessToken(owner.ownerAccountId, tokenRow);
          return this.upstream.fetchUserInfo(token, owner.ownerUpstreamSub);
        })(),
        deadline,
        () => new UpstreamTimeoutError('owner details', deadline),
      );
      const details: OwnerDetails = {
        name: typeof claims.name === 'string' ? claims.name : owner.ownerName,
        email: typeof claims.email === 'string' ? claims.email : owner.ownerEmail,
      };
      this.cache.set(owner.ownerAccountId, details);
      return { kind: 'available', details };
    } catch (error) {
      if (error instanceof UpstreamSubjectMismatchError) {
        // The upstream vouched for someone else with this owner's token: show nothing of this owner.
        this.logger.warn(`owner ${owner.ownerAccountId} dropped from related claim: upstream subject mismatch`);
        await this.audit.record({
          actorType: 'system',
          action: 'related.owner_dropped',
          targetType: 'account',
          targetId: owner.ownerAccountId,
          requestId,
          outcome: 'failure',
          details: { reason: 'upstream_subject_mismatch', caller: callerId },
        });
        return { kind: 'dropped' };
      }
      if (error instanceof UpstreamTokenError) return { kind: 'unavailable', reason: error.reason };
      if (error instanceof UpstreamTimeoutError) return { kind: 'unavailable', reason: 'upstream_timeout' };
      this.logger.warn(`owner ${owner.ownerAccountId} unavailable: ${(error as Error).message}`);
      return { kind: 'unavailable', reason: 'upstream_error' };
    }
  }
}
