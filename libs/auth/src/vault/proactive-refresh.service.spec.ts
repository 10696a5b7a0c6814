import type { RsaConfig } from '@rsa/config';
import { UpstreamTokenError } from '../upstream/upstream-errors';
import { ProactiveRefreshService } from './proactive-refresh.service';
import type { ClaimedRefresh, UpstreamTokenVault } from './upstream-token-vault.service';

const config = (maxPerRun: number, enabled = false) =>
  ({ proactiveRefresh: { enabled, intervalSeconds: 60, windowSeconds: 120, maxPerRun } }) as unknown as RsaConfig;

/** A vault whose due rows are `due` (account ids); claims hand them out in order, minus exclusions. */
function fakeVault(due: string[], fail: Record<string, Error> = {}) {
  const remaining = [...due];
  const claims: { limit: number; exclude: string[] }[] = [];
  const refreshed: string[] = [];
  const vault = {
    claimDueForRefresh: jest.fn(async ({ limit, exclude = [] }: { limit: number; exclude?: string[] }) => {
      claims.push({ limit, exclude: [...exclude] });
      const picked = remaining.filter((id) => !exclude.includes(id)).slice(0, limit);
      return picked.map((accountId): ClaimedRefresh => ({ accountId, version: 1 }));
    }),
    refreshClaimed: jest.fn(async ({ accountId }: ClaimedRefresh) => {
      if (fail[accountId]) throw fail[accountId];
      refreshed.push(accountId);
      remaining.splice(remaining.indexOf(accountId), 1);
    }),
  };
  return { vault: vault as unknown as UpstreamTokenVault, claims, refreshed, mock: vault };
}

describe('ProactiveRefreshService', () => {
  it('claims a few rows at a time until none is due', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `a${i}`);
    const { vault, claims, refreshed } = fakeVault(ids);
    const run = await new ProactiveRefreshService(vault, config(100)).runOnce();
    expect(run).toEqual({ claimed: 10, refreshed: 10, failed: 0, failures: {} });
    expect(refreshed.sort()).toEqual([...ids].sort());
    expect(claims.map((c) => c.limit)).toEqual([4, 4, 4, 4]);
  });

  it('stops at PROACTIVE_REFRESH_MAX_PER_RUN', async () => {
    const { vault, claims } = fakeVault(Array.from({ length: 10 }, (_, i) => `a${i}`));
    const run = await new ProactiveRefreshService(vault, config(6)).runOnce();
    expect(run.claimed).toBe(6);
    expect(claims.map((c) => c.limit)).toEqual([4, 2]);
  });

  it('counts failures by reason and does not claim a failed account again in the same run', async () => {
    const { vault, claims } = fakeVault(['ok', 'dead', 'broken'], {
      dead: new UpstreamTokenError('owner_login_required', 'refused'),
      broken: Object.assign(new Error('bad ciphertext'), { code: 'CRYPTO.DECRYPTION_FAILED' }),
    });
    const run = await new ProactiveRefreshService(vault, config(100)).runOnce();
    expect(run).toEqual({ claimed: 3, refreshed: 1, failed: 2, failures: { owner_login_required: 1, 'CRYPTO.DECRYPTION_FAILED': 1 } });
    expect(claims[claims.length - 1].exclude.sort()).toEqual(['broken', 'dead', 'ok']);
  });

  it('joins a run in progress instead of starting a second one', async () => {
    const { vault, mock } = fakeVault(['a']);
    const job = new ProactiveRefreshService(vault, config(100));
    const [first, second] = await Promise.all([job.runOnce(), job.runOnce()]);
    expect(first).toBe(second);
    expect(mock.refreshClaimed).toHaveBeenCalledTimes(1);
  });

  it('does not schedule itself when disabled, and stops claiming once the app shuts down', async () => {
    jest.useFakeTimers();
    try {
      const { vault, mock } = fakeVault(['a']);
      const disabled = new ProactiveRefreshService(vault, config(100, false));
      disabled.onApplicationBootstrap();
      await jest.advanceTimersByTimeAsync(120_000);
      expect(mock.claimDueForRefresh).not.toHaveBeenCalled();

      const enabled = new ProactiveRefreshService(vault, config(100, true));
      enabled.onApplicationBootstrap();
      await enabled.onApplicationShutdown();
      await jest.advanceTimersByTimeAsync(120_000);
      expect(mock.claimDueForRefresh).not.toHaveBeenCalled();
    } finally {
      jest.useRealTimers();
    }
  });
});
