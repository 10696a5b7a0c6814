import type { Adapter, AdapterFactory, AdapterPayload } from 'oidc-provider';

/**
 * In-memory storage for ONE dev-upstream instance.
 *
 * Why not oidc-provider's built-in MemoryAdapter: its storage is a module-level LRU (1000 entries)
 * shared by every Provider in the process. The test-suite runs the RSA's provider and one or more
 * dev upstreams in the same process, so entries would be shared and silently evicted. This store is
 * per instance, never evicts live entries, and lets us find grants by account (`revokeGrantsOf`).
 *
 * Payloads are cloned on the way in and out so callers cannot mutate stored state by accident —
 * the same semantics a database-backed adapter would have.
 */
interface Entry {
  payload: AdapterPayload;
  /** epoch milliseconds; undefined = does not expire */
  expiresAt?: number;
}

/** Expired entries are purged lazily on read, and in a full sweep every this many writes. */
const SWEEP_EVERY = 256;

export class DevMemoryStore {
  private readonly entries = new Map<string, Entry>();
  private writesSinceSweep = 0;

  private static key(model: string, id: string): string {
    return `${model}:${id}`;
  }

  upsert(model: string, id: string, payload: AdapterPayload, expiresIn?: number): void {
    this.entries.set(DevMemoryStore.key(model, id), {
      payload: structuredClone(payload),
      expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined,
    });
    if (++this.writesSinceSweep >= SWEEP_EVERY) this.sweep();
  }

  /** Live (not expired) payload by model and id, as the stored object (not cloned). */
  private live(model: string, id: string): AdapterPayload | undefined {
    const key = DevMemoryStore.key(model, id);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  find(model: string, id: string): AdapterPayload | undefined {
    const payload = this.live(model, id);
    return payload === undefined ? undefined : structuredClone(payload);
  }

  /** First live payload of `model` matching the predicate (linear scan; fine at dev scale). */
  findWhere(model: string, predicate: (payload: AdapterPayload) => boolean): AdapterPayload | undefined {
    for (const [id] of this.idsOf(model)) {
      const payload = this.live(model, id);
      if (payload && predicate(payload)) return structuredClone(payload);
    }
    return undefined;
  }

  /** Ids of live entries of `model` matching the predicate. */
  idsWhere(model: string, predicate: (payload: AdapterPayload) => boolean): string[] {
    const ids: string[] = [];
    for (const [id] of this.idsOf(model)) {
      const payload = this.live(model, id);
      if (payload && predicate(payload)) ids.push(id);
    }
    return ids;
  }

  consume(model: string, id: string): void {
    const payload = this.live(model, id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  destroy(model: string, id: string): void {
    this.entries.delete(DevMemoryStore.key(model, id));
  }

  revokeByGrantId(model: string, grantId: string): void {
    for (const id of this.idsWhere(model, (p) => p.grantId === grantId)) this.destroy(model, id);
  }

  clear(): void {
    this.entries.clear();
  }

  private *idsOf(model: string): Generator<[string, Entry]> {
    const prefix = `${model}:`;
    // Copy the keys first: callers may delete while iterating.
    for (const key of [...this.entries.keys()]) {
      if (!key.startsWith(prefix)) continue;
      const entry = this.entries.get(key);
      if (entry) yield [key.slice(prefix.length), entry];
    }
  }

  private sweep(): void {
    this.writesSinceSweep = 0;
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.entries.delete(key);
    }
  }
}

class DevMemoryAdapter implements Adapter {
  constructor(
    private readonly model: string,
    private readonly store: DevMemoryStore,
  ) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    this.store.upsert(this.model, id, payload, expiresIn);
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.store.find(this.model, id);
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.store.findWhere(this.model, (p) => p.uid === uid);
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.store.findWhere(this.model, (p) => p.userCode === userCode);
  }

  async consume(id: string): Promise<void> {
    this.store.consume(this.model, id);
  }

  async destroy(id: string): Promise<void> {
    this.store.destroy(this.model, id);
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.store.revokeByGrantId(this.model, grantId);
  }
}

export function devMemoryAdapterFactory(store: DevMemoryStore): AdapterFactory {
  return (model: string) => new DevMemoryAdapter(model, store);
}
