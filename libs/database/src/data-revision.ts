import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * The database's data revision: a counter that every committed change to what the request path
 * caches (credentials, clients, accounts, the resource catalogue and delegations) moves forward, in
 * the same transaction as the change (triggers of the DataRevision migration).
 *
 * `current()` answers with a value read by a query that STARTED AFTER the call: whatever committed
 * before the request arrived — on any instance — is covered by it. Concurrent callers share one
 * query; a caller arriving while a query is already out waits for the next one instead of taking
 * the older answer. So a cache entry tagged with the revision it was computed under is fresh exactly
 * while `current()` still returns that revision: a revocation takes effect on the next request, and
 * each request costs at most a share of one tiny query instead of the lookups it replaces.
 */
@Injectable()
export class DataRevision {
  private inFlight: Promise<string> | null = null;
  private queued: Promise<string> | null = null;
  private era = 0;
  private server = NaN;
  private highest = 0n;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  current(): Promise<string> {
    if (!this.inFlight) return this.start();
    // The query out now may have started before this call: take the next one.
    this.queued ??= this.inFlight
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<string> {
    const query = this.read().finally(() => {
      if (this.inFlight === query) this.inFlight = null;
    });
    this.inFlight = query;
    return query;
  }

  private async read(): Promise<string> {
    const rows: { value: string; started: Date | string }[] = await this.dataSource.query(
      'SELECT "value", pg_postmaster_start_time() AS started FROM "data_revision" WHERE "id" = 1',
    );
    if (!rows.length) throw new Error('data_revision has no row: run the migrations');
    const value = BigInt(rows[0].value);
    const server = new Date(rows[0].started).getTime();
    // The counter only moves forward — unless the database is restored from a backup, fails over to
    // a replica that is behind, or the table is made again. A server start is a new era; so is a
    // counter seen going back. A value of another era never matches a cached one.
    if (server !== this.server || value < this.highest) {
      this.era++;
      this.server = server;
    }
    this.highest = value;
    return `${this.era}.${value}`;
  }
}

/**
 * A bounded in-process cache whose entries are valid only under the data revision they were
 * computed under, and only until their own deadline (a token's expiry, a delegation's end).
 * The caller must read the revision BEFORE reading the data it caches. Bounded by a number of
 * entries and, with `weigh`, by their total weight (e.g. the resources in cached lists): the least
 * recently used entries go first; an entry heavier than the whole bound is not kept.
 */
export class RevisionCache<V> {
  private readonly entries = new Map<string, { value: V; revision: string; validUntil: number; weight: number }>();
  private totalWeight = 0;
  private readonly flights = new Map<string, Promise<V>>();
  private readonly maxEntries: number;
  private readonly maxWeight: number;
  private readonly weigh: (value: V) => number;

  constructor(options: { maxEntries: number; maxWeight?: number; weigh?: (value: V) => number }) {
    this.maxEntries = options.maxEntries;
    this.maxWeight = options.maxWeight ?? Infinity;
    this.weigh = options.weigh ?? (() => 1);
  }

  get(key: string, revision: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.revision !== revision || entry.validUntil <= Date.now()) {
      this.remove(key);
      return undefined;
    }
    // Least recently used goes first: a hit moves the entry to the young end.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /**
   * The cached value, or `load()`'s. Callers that miss the same key under the same revision at the
   * same time share one load (its data is read after that revision was, so it covers every change
   * each of them must see); a failed load is shared by those callers only, never kept.
   */
  getOrLoad(key: string, revision: string, load: () => Promise<{ value: V; validUntil?: number }>): Promise<V> {
    const hit = this.get(key, revision);
    if (hit !== undefined) return Promise.resolve(hit);
    const flightKey = `${revision}\u0000${key}`;
    let flight = this.flights.get(flightKey);
    if (!flight) {
      flight = load()
        .then(({ value, validUntil }) => {
          this.set(key, value, revision, validUntil);
          return value;
        })
        .finally(() => this.flights.delete(flightKey));
      this.flights.set(flightKey, flight);
    }
    return flight;
  }

  /** `validUntil`: milliseconds since the epoch; Infinity when only the revision bounds it. */
  set(key: string, value: V, revision: string, validUntil = Infinity): void {
    this.remove(key);
    const weight = this.weigh(value);
    if (this.maxEntries <= 0 || weight > this.maxWeight || validUntil <= Date.now()) return;
    while (this.entries.size && (this.entries.size >= this.maxEntries || this.totalWeight + weight > this.maxWeight)) {
      this.remove(this.entries.keys().next().value as string);
    }
    this.entries.set(key, { value, revision, validUntil, weight });
    this.totalWeight += weight;
  }

  get size(): number {
    return this.entries.size;
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.totalWeight -= entry.weight;
  }
}
