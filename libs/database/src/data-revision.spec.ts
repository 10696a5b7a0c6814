import { RevisionCache } from './data-revision';

describe('RevisionCache', () => {
  afterEach(() => jest.useRealTimers());

  it('answers only under the revision the entry was computed under', () => {
    const cache = new RevisionCache<string>({ maxEntries: 10 });
    cache.set('k', 'v', '7');
    expect(cache.get('k', '7')).toBe('v');
    expect(cache.get('k', '8')).toBeUndefined();
    // A stale entry is dropped, not kept for an older revision.
    expect(cache.get('k', '7')).toBeUndefined();
  });

  it('answers only until the entry is due, and keeps nothing already due', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const cache = new RevisionCache<string>({ maxEntries: 10 });
    cache.set('k', 'v', '1', 1_000_500);
    cache.set('past', 'v', '1', 999_999);
    expect(cache.get('k', '1')).toBe('v');
    expect(cache.get('past', '1')).toBeUndefined();
    jest.setSystemTime(1_000_500);
    expect(cache.get('k', '1')).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('drops the least recently used entries beyond its entry bound', () => {
    const cache = new RevisionCache<number>({ maxEntries: 2 });
    for (const key of ['a', 'b', 'c']) cache.set(key, 1, '1');
    expect([cache.get('a', '1'), cache.get('b', '1'), cache.get('c', '1')]).toEqual([undefined, 1, 1]);
    // b was used before c: d pushes out b.
    cache.set('d', 1, '1');
    expect([cache.get('b', '1'), cache.get('c', '1'), cache.get('d', '1')]).toEqual([undefined, 1, 1]);
  });

  it('drops the oldest entries beyond its weight bound, and never keeps an entry heavier than the bound', () => {
    const cache = new RevisionCache<number[]>({ maxEntries: 100, maxWeight: 5, weigh: (list) => list.length });
    cache.set('a', [1, 2], '1');
    cache.set('b', [1, 2], '1');
    cache.set('c', [1, 2], '1');
    expect(cache.get('a', '1')).toBeUndefined();
    expect(cache.get('b', '1')).toEqual([1, 2]);
    cache.set('huge', [1, 2, 3, 4, 5, 6], '1');
    expect(cache.get('huge', '1')).toBeUndefined();
    expect(cache.get('c', '1')).toEqual([1, 2]);
    // Replacing an entry gives its weight back first.
    cache.set('b', [1, 2, 3], '1');
    expect(cache.get('b', '1')).toEqual([1, 2, 3]);
    expect(cache.get('c', '1')).toEqual([1, 2]);
  });

  it('shares one load among callers that miss the same key under the same revision, and keeps no failure', async () => {
    const cache = new RevisionCache<string>({ maxEntries: 10 });
    let loads = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const load = async () => {
      const n = ++loads;
      await gate;
      return { value: `v${n}` };
    };
    const together = [cache.getOrLoad('k', '1', load), cache.getOrLoad('k', '1', load)];
    // Another revision is another question: its own load.
    const other = cache.getOrLoad('k', '2', load);
    release();
    expect(await Promise.all(together)).toEqual(['v1', 'v1']);
    expect(await other).toBe('v2');
    expect(loads).toBe(2);

    const failing = () => Promise.reject(new Error('down'));
    await expect(Promise.all([cache.getOrLoad('f', '1', failing), cache.getOrLoad('f', '1', failing)])).rejects.toThrow('down');
    expect(await cache.getOrLoad('f', '1', async () => ({ value: 'recovered' }))).toBe('recovered');
  });
});
