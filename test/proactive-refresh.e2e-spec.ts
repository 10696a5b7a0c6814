import { ProactiveRefreshService, UpstreamTokenVault } from '@rsa/auth';
import type { RsaConfig } from '@rsa/config';
import { createApiApp } from '../apps/api/src/bootstrap';
import { startSecondInstance, type ApiInstance } from './support/second-instance';
import { startStack, type TestStack } from './support/stack';
import { insertDelegation, loginOwners, setAccessTokenExpiry, tokenRow, type TokenOwner } from './support/token-fixtures';

const WINDOW_SECONDS = 120;
const PROACTIVE_ENV = { PROACTIVE_REFRESH_WINDOW_SECONDS: String(WINDOW_SECONDS), PROACTIVE_REFRESH_INTERVAL_SECONDS: '60', PROACTIVE_REFRESH_MAX_PER_RUN: '100' };

/** The stack's configuration with other proactive refresh settings (same database, upstream, keys). */
function withProactive(config: RsaConfig, settings: Partial<RsaConfig['proactiveRefresh']>): RsaConfig {
  return Object.assign(Object.create(Object.getPrototypeOf(config) as object) as RsaConfig, config, {
    proactiveRefresh: { ...config.proactiveRefresh, ...settings },
  });
}

/**
 * Owners with and without active delegations, some of them due (access token about to expire).
 * Every owner delegates to `delegate` unless said otherwise.
 */
async function scenario(stack: TestStack, delegate: TokenOwner, label: string, due: number) {
  const dueOwners = await loginOwners(stack, `${label}-due`, due);
  const [noDelegation, revokedDelegation, expiredDelegation, farFromExpiry, deadOwner] = await loginOwners(stack, `${label}-ctl`, 5);
  for (const owner of [...dueOwners, farFromExpiry, deadOwner]) await insertDelegation(stack, owner.accountId, delegate.accountId);
  await insertDelegation(stack, revokedDelegation.accountId, delegate.accountId, { status: 'revoked' });
  await insertDelegation(stack, expiredDelegation.accountId, delegate.accountId, { expiresAt: new Date(Date.now() - 60_000) });
  // Due: the access token expires within the window (half of them already expired).
  await setAccessTokenExpiry(stack, dueOwners.slice(0, Math.ceil(due / 2)).map((o) => o.accountId), 30);
  await setAccessTokenExpiry(stack, dueOwners.slice(Math.ceil(due / 2)).map((o) => o.accountId), -30);
  // Not due: no active delegation, or the tokens are fine (300 s left > window), or dead.
  await setAccessTokenExpiry(stack, [noDelegation.accountId, revokedDelegation.accountId, expiredDelegation.accountId], 30);
  await stack.dataSource.query(`UPDATE upstream_token SET status = 'reauth_required' WHERE account_id = $1`, [deadOwner.accountId]);
  await setAccessTokenExpiry(stack, [deadOwner.accountId], 30);
  const controls = [noDelegation, revokedDelegation, expiredDelegation, farFromExpiry, deadOwner];
  const versions = new Map<string, number>();
  for (const owner of [...dueOwners, ...controls]) versions.set(owner.accountId, (await tokenRow(stack, owner.accountId)).version);
  return { dueOwners, controls, versions };
}

describe('Proactive refresh on one api instance', () => {
  let stack: TestStack;
  let job: ProactiveRefreshService;
  let delegate: TokenOwner;

  beforeAll(async () => {
    stack = await startStack({ env: PROACTIVE_ENV });
    job = stack.api.get(ProactiveRefreshService);
    [delegate] = await loginOwners(stack, 'delegate', 1);
  });
  afterAll(() => stack?.close());

  it('refreshes the owners with active delegations whose tokens are about to lapse, and no one else', async () => {
    const { dueOwners, controls, versions } = await scenario(stack, delegate, 'one', 4);
    stack.upstream.resetStats();

    const run = await job.runOnce();

    expect(run).toEqual({ claimed: 4, refreshed: 4, failed: 0, failures: {} });
    expect(stack.upstream.stats).toMatchObject({ refreshGrants: 4, refreshAttempts: 4 });
    for (const owner of dueOwners) {
      const row = await tokenRow(stack, owner.accountId);
      expect(row).toMatchObject({ status: 'valid', last_refresh_outcome: 'success', version: versions.get(owner.accountId)! + 1, refresh_lease_owner: null });
      expect(row.access_token_expires_at.getTime()).toBeGreaterThan(Date.now() + WINDOW_SECONDS * 1000);
    }
    for (const owner of controls) expect((await tokenRow(stack, owner.accountId)).version).toBe(versions.get(owner.accountId));

    // Nothing is due any more: the next run does nothing.
    expect(await job.runOnce()).toMatchObject({ claimed: 0 });
    expect(stack.upstream.stats.refreshAttempts).toBe(4);
  });

  it('records a refused refresh (reauth_required, audited with trigger proactive) and does not retry it', async () => {
    const [owner] = await loginOwners(stack, 'refused', 1);
    await insertDelegation(stack, owner.accountId, delegate.accountId);
    await stack.upstream.revokeGrantsOf(owner.user.sub);
    await setAccessTokenExpiry(stack, [owner.accountId], 30);
    stack.upstream.resetStats();

    const run = await job.runOnce();

    expect(run).toMatchObject({ claimed: 1, refreshed: 0, failed: 1, failures: { owner_login_required: 1 } });
    expect(await tokenRow(stack, owner.accountId)).toMatchObject({ status: 'reauth_required', last_refresh_outcome: 'invalid_grant', refresh_lease_owner: null });
    const events = await stack.dataSource.query<{ details: Record<string, unknown> }[]>(
      `SELECT details FROM audit_event WHERE action = 'upstream_token.reauth_required' AND target_id = $1`,
      [owner.accountId],
    );
    expect(events).toEqual([{ details: expect.objectContaining({ outcome: 'invalid_grant', trigger: 'proactive' }) }]);
    expect(await job.runOnce()).toMatchObject({ claimed: 0 });
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
  });

  it('refreshes at most PROACTIVE_REFRESH_MAX_PER_RUN owners per run, the soonest to expire first', async () => {
    const owners = await loginOwners(stack, 'bounded', 5);
    for (const owner of owners) await insertDelegation(stack, owner.accountId, delegate.accountId);
    for (const [i, owner] of owners.entries()) await setAccessTokenExpiry(stack, [owner.accountId], 10 + i * 10);
    const bounded = new ProactiveRefreshService(stack.api.get(UpstreamTokenVault), withProactive(stack.config, { maxPerRun: 2 }));
    stack.upstream.resetStats();

    expect(await bounded.runOnce()).toMatchObject({ claimed: 2, refreshed: 2 });
    expect(stack.upstream.stats.refreshGrants).toBe(2);
    expect((await tokenRow(stack, owners[0].accountId)).last_refresh_outcome).toBe('success');
    expect((await tokenRow(stack, owners[1].accountId)).last_refresh_outcome).toBe('success');
    expect((await tokenRow(stack, owners[4].accountId)).last_refresh_outcome).toBeNull();
    expect(await bounded.runOnce()).toMatchObject({ claimed: 2 });
    expect(await bounded.runOnce()).toMatchObject({ claimed: 1 });
    expect(await bounded.runOnce()).toMatchObject({ claimed: 0 });
    expect(stack.upstream.stats.refreshGrants).toBe(5);
  });

  it('runs on its own every PROACTIVE_REFRESH_INTERVAL_SECONDS when enabled, and stops with the app', async () => {
    const [owner] = await loginOwners(stack, 'timer', 1);
    await insertDelegation(stack, owner.accountId, delegate.accountId);
    const timed = await createApiApp(withProactive(stack.config, { enabled: true, intervalSeconds: 1 }));
    try {
      await setAccessTokenExpiry(stack, [owner.accountId], 30);
      const deadline = Date.now() + 5000;
      while ((await tokenRow(stack, owner.accountId)).last_refresh_outcome !== 'success' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect((await tokenRow(stack, owner.accountId)).last_refresh_outcome).toBe('success');
    } finally {
      await timed.close();
    }
  });
});

// Two app instances with their own pools against one PostgreSQL server: the embedded database
// serialises every connection, so it cannot show instances racing for the same rows.
const onServer = process.env.RSA_TEST_DATABASE !== 'embedded';
if (!onServer) {
  console.warn('[proactive-refresh] skipping the two-instance suite: it needs a real PostgreSQL server (set DATABASE_URL)');
}

(onServer ? describe : describe.skip)('Proactive refresh on two api instances (real PostgreSQL)', () => {
  let stack: TestStack;
  let second: ApiInstance;
  let delegate: TokenOwner;

  beforeAll(async () => {
    stack = await startStack({ env: PROACTIVE_ENV });
    second = await startSecondInstance(stack);
    [delegate] = await loginOwners(stack, 'delegate', 1);
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  it('both instances run the job at once: each due owner is refreshed exactly once, controls not at all', async () => {
    const { dueOwners, controls, versions } = await scenario(stack, delegate, 'two', 12);
    stack.upstream.resetStats();

    const runs = await Promise.all([stack.api.get(ProactiveRefreshService).runOnce(), second.api.get(ProactiveRefreshService).runOnce()]);

    expect(stack.upstream.stats).toMatchObject({ refreshGrants: 12, refreshAttempts: 12 });
    expect(runs[0].claimed + runs[1].claimed).toBe(12);
    // Both took part (SKIP LOCKED lets them claim side by side), so this really was a race.
    expect(runs.map((r) => r.claimed > 0)).toEqual([true, true]);
    expect(runs.every((r) => r.failed === 0)).toBe(true);
    for (const owner of dueOwners) {
      expect(await tokenRow(stack, owner.accountId)).toMatchObject({
        status: 'valid',
        last_refresh_outcome: 'success',
        version: versions.get(owner.accountId)! + 1,
        refresh_lease_owner: null,
      });
    }
    for (const owner of controls) expect((await tokenRow(stack, owner.accountId)).version).toBe(versions.get(owner.accountId));
    const again = await Promise.all([stack.api.get(ProactiveRefreshService).runOnce(), second.api.get(ProactiveRefreshService).runOnce()]);
    expect(again.map((r) => r.claimed)).toEqual([0, 0]);
    expect(stack.upstream.stats.refreshAttempts).toBe(12);
  });

  it('while both jobs run, delegates’ requests for the same owners on both instances still cause one refresh per owner', async () => {
    const { dueOwners } = await scenario(stack, delegate, 'mixed', 8);
    // Already expired, so on-demand callers need a refresh too.
    await setAccessTokenExpiry(stack, dueOwners.map((o) => o.accountId), -30);
    stack.upstream.resetStats();
    const vaults = [stack.api.get(UpstreamTokenVault), second.api.get(UpstreamTokenVault)];

    const [tokens] = await Promise.all([
      Promise.all(dueOwners.flatMap((o) => [0, 1, 0, 1].map((i) => vaults[i].getUsableAccessToken(o.accountId)))),
      stack.api.get(ProactiveRefreshService).runOnce(),
      second.api.get(ProactiveRefreshService).runOnce(),
    ]);

    expect(stack.upstream.stats).toMatchObject({ refreshGrants: 8, refreshAttempts: 8 });
    // All four callers per owner got the same, fresh token.
    for (let i = 0; i < dueOwners.length; i++) expect(new Set(tokens.slice(i * 4, i * 4 + 4)).size).toBe(1);
  });
});
