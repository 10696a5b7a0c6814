import * as fc from 'fast-check';
import { effectiveStatusSql, UpstreamClient, UpstreamTokenVault } from '@rsa/auth';
import { CatalogueService, DEMO_ACCOUNT_RESOURCE } from '@rsa/resources';
import { startAdmin, type AdminInstance } from './support/admin';
import {
  decryptColumn,
  insertDelegation,
  loginOwners,
  setAccessTokenExpiry,
  tokenRow,
  type TokenOwner,
} from './support/token-fixtures';
import { startStackBehindUpstreamProxy, type UpstreamProxy } from './support/upstream-proxy';
import type { TestStack } from './support/stack';
import { loginAs } from './support/wallet';

const STATUSES = ['valid', 'refreshable', 'reauth_required', 'refresh_failing', 'revoked'] as const;
type Status = (typeof STATUSES)[number];
const TIMEOUT_MS = 1000;

interface Summary {
  by_status: Record<Status, { accounts: number; active_delegations: number }>;
  totals: { accounts: number; active_delegations: number };
}

describe('Admin token health (dev upstream over HTTP, PostgreSQL)', () => {
  let stack: TestStack & { proxy: UpstreamProxy };
  let admin: AdminInstance;
  let vault: UpstreamTokenVault;
  /** Receives every delegation; its own tokens are never touched. */
  let delegate: TokenOwner;

  beforeAll(async () => {
    stack = await startStackBehindUpstreamProxy({ env: { UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS) } });
    await stack.api.get(CatalogueService).upsert(DEMO_ACCOUNT_RESOURCE);
    admin = await startAdmin(stack);
    vault = stack.api.get(UpstreamTokenVault);
    [delegate] = await loginOwners(stack, 'delegate', 1);
  });

  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  const detail = async (accountId: string) => {
    const res = await admin.request('GET', `/accounts/${accountId}/tokens`);
    expect(res.status).toBe(200);
    return res.body;
  };
  const summary = async (): Promise<Summary> => {
    const res = await admin.request('GET', '/token-health');
    expect(res.status).toBe(200);
    return res.body as Summary;
  };
  /** Every page of a list, following next_cursor. */
  const allPages = async (path: string, limit: number) => {
    const items: { account_id?: string; delegation?: { id: string } }[] = [];
    const pages: number[] = [];
    let cursor: string | null = null;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const res = await admin.request('GET', `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(limit);
      items.push(...res.body.items);
      pages.push(res.body.items.length);
      cursor = res.body.next_cursor;
    } while (cursor);
    return { items, pages };
  };
  const auditEvents = (accountId: string, action: string) =>
    stack.dataSource.query<{ actor_type: string; actor_id: string | null; outcome: string; request_id: string | null; details: Record<string, unknown> }[]>(
      `SELECT actor_type, actor_id, outcome, request_id, details FROM audit_event
        WHERE action = $2 AND target_type = 'account' AND target_id = $1 ORDER BY occurred_at`,
      [accountId, action],
    );

  it('the status rule in SQL (counts, filters) agrees with the vault’s effectiveStatus on any row', async () => {
    // Offsets stay clear of "now" so the database's clock and ours cannot disagree about a row.
    const offset = fc.oneof(fc.integer({ min: -86_400, max: -5 }), fc.integer({ min: 5, max: 86_400 }));
    const rowArb = fc.record({
      status: fc.constantFrom('valid', 'refresh_failing', 'reauth_required', 'revoked'),
      at: offset,
      hasRefreshToken: fc.boolean(),
      rt: fc.option(offset, { nil: null }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(rowArb, { minLength: 1, maxLength: 50 }), async (rows) => {
        const sql = await stack.dataSource.query<{ i: string; status: string }[]>(
          `SELECT u.i, ${effectiveStatusSql('t')} AS status
             FROM unnest($1::text[], $2::int[], $3::bool[], $4::int[]) WITH ORDINALITY AS u(status, at_off, has_rt, rt_off, i)
             CROSS JOIN LATERAL (SELECT u.status,
                                        now() + make_interval(secs => u.at_off) AS access_token_expires_at,
                                        CASE WHEN u.has_rt THEN 'x' END AS refresh_token_enc,
                                        now() + make_interval(secs => u.rt_off) AS refresh_token_expires_at) t
            ORDER BY u.i`,
          [rows.map((r) => r.status), rows.map((r) => r.at), rows.map((r) => r.hasRefreshToken), rows.map((r) => r.rt)],
        );
        const now = Date.now();
        const js = rows.map((r) =>
          vault.effectiveStatus({
            status: r.status as never,
            accessTokenExpiresAt: new Date(now + r.at * 1000),
            refreshTokenEnc: r.hasRefreshToken ? 'x' : null,
            refreshTokenExpiresAt: r.rt === null ? null : new Date(now + r.rt * 1000),
          }),
        );
        expect(sql.map((r) => r.status)).toEqual(js);
      }),
      { numRuns: 30 },
    );
  });

  it('an expired access token with a live refresh token reads refreshable, and is usable for delegates', async () => {
    const [owner] = await loginOwners(stack, 'refreshable', 1);
    expect(await detail(owner.accountId)).toMatchObject({ status: 'valid', usable: true, has_refresh_token: true });

    await setAccessTokenExpiry(stack, [owner.accountId], -60);

    const body = await detail(owner.accountId);
    expect(body).toMatchObject({
      account_id: owner.accountId,
      sub: owner.user.sub,
      email: owner.user.email,
      status: 'refreshable',
      stored_status: 'valid',
      usable: true,
      has_refresh_token: true,
      last_refresh_at: null,
      last_refresh_outcome: null,
      consecutive_failures: 0,
      refresh_in_progress: false,
      active_delegations: 0,
    });
    expect(body.reason).toBeUndefined();
    expect(new Date(body.access_token_expires_at).getTime()).toBeLessThan(Date.now());
    // The vault agrees: usable, and the next use refreshes it.
    expect((await vault.statusesFor([owner.accountId])).get(owner.accountId)).toEqual({ status: 'refreshable', usable: true });
    stack.upstream.resetStats();
    await vault.getUsableAccessToken(owner.accountId);
    expect(stack.upstream.stats.refreshGrants).toBe(1);
    expect(await detail(owner.accountId)).toMatchObject({ status: 'valid', last_refresh_outcome: 'success' });
  });

  it('a grant revoked at the upstream reads reauth_required after the next use, with reason owner_login_required', async () => {
    const [owner] = await loginOwners(stack, 'revoked-upstream', 1);
    expect(await stack.upstream.revokeGrantsOf(owner.user.sub)).toBeGreaterThan(0);
    await setAccessTokenExpiry(stack, [owner.accountId], -60);
    // Before anyone uses it, the RSA cannot know: the token still looks refreshable.
    expect((await detail(owner.accountId)).status).toBe('refreshable');

    await expect(vault.getUsableAccessToken(owner.accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });

    expect(await detail(owner.accountId)).toMatchObject({
      status: 'reauth_required',
      stored_status: 'reauth_required',
      usable: false,
      reason: 'owner_login_required',
      last_refresh_outcome: 'invalid_grant',
      consecutive_failures: 1,
    });
    expect((await detail(owner.accountId)).last_refresh_error).toMatch(/invalid_grant/);
  });

  it('a forced refresh of a grant revoked at the upstream answers 409 with the new status reauth_required, audited in the admin’s name', async () => {
    const [owner] = await loginOwners(stack, 'force-dead', 1);
    await stack.upstream.revokeGrantsOf(owner.user.sub);
    stack.upstream.resetStats();

    const res = await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`, { headers: { 'x-request-id': 'force-dead-1' } });

    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({
      error: 'UPSTREAM.OWNER_LOGIN_REQUIRED',
      details: { account_id: owner.accountId, status: 'reauth_required', last_refresh_outcome: 'invalid_grant' },
      request_id: 'force-dead-1',
    });
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
    expect((await detail(owner.accountId)).status).toBe('reauth_required');
    const [event] = await auditEvents(owner.accountId, 'upstream_token.refresh');
    expect(event).toMatchObject({
      actor_type: 'admin',
      actor_id: expect.stringMatching(/^admin:[0-9a-f]{8}$/),
      outcome: 'failure',
      request_id: 'force-dead-1',
      details: { result: 'failed', refresh_outcome: 'invalid_grant', status: 'reauth_required' },
    });
    expect(await auditEvents(owner.accountId, 'upstream_token.reauth_required')).toHaveLength(1);

    // Dead until the owner logs in: a second forced refresh does not call the upstream.
    expect((await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`)).status).toBe(409);
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
  });

  it('a forced refresh that succeeds rotates the tokens at the upstream, answers the new state and audits it', async () => {
    const [owner] = await loginOwners(stack, 'force-ok', 1);
    const before = await tokenRow(stack, owner.accountId);
    stack.upstream.resetStats();

    const res = await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`);

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ account_id: owner.accountId, status: 'valid', usable: true, last_refresh_outcome: 'success', consecutive_failures: 0 });
    expect(new Date(res.body.last_refresh_at).getTime()).toBeGreaterThan(Date.now() - 10_000);
    expect(stack.upstream.stats).toMatchObject({ refreshGrants: 1, refreshAttempts: 1 });
    const after = await tokenRow(stack, owner.accountId);
    expect(after.version).toBe(before.version + 1);
    expect(decryptColumn(stack, after, 'access_token')).not.toBe(decryptColumn(stack, before, 'access_token'));
    expect(decryptColumn(stack, after, 'refresh_token')).not.toBe(decryptColumn(stack, before, 'refresh_token'));
    const events = await auditEvents(owner.accountId, 'upstream_token.refresh');
    expect(events).toEqual([expect.objectContaining({ actor_type: 'admin', outcome: 'success', details: expect.objectContaining({ result: 'refreshed', status: 'valid' }) })]);
  });

  it('ten concurrent forced refreshes of one account go through the vault’s lock: one upstream refresh, every answer valid', async () => {
    const [owner] = await loginOwners(stack, 'force-many', 1);
    stack.upstream.resetStats();
    // The upstream answers slowly, so all ten requests arrive while the first refresh is in flight.
    stack.proxy.delay = (r) => (new URLSearchParams(r.body).get('grant_type') === 'refresh_token' ? 400 : 0);

    const responses = await Promise.all(Array.from({ length: 10 }, () => admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`))).finally(
      () => (stack.proxy.delay = null),
    );

    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(responses.every((r) => r.body.status === 'valid')).toBe(true);
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
    // Every admin request is audited, whether it refreshed or shared the refresh.
    expect(await auditEvents(owner.accountId, 'upstream_token.refresh')).toHaveLength(10);
  });

  it('a forced refresh the upstream does not answer fails with 504 and leaves refresh_failing (upstream_timeout), kept tokens', async () => {
    const [owner] = await loginOwners(stack, 'force-timeout', 1);
    const before = await tokenRow(stack, owner.accountId);
    stack.proxy.hold = (r) => r.method === 'POST' && r.path.startsWith('/token') && new URLSearchParams(r.body).get('grant_type') === 'refresh_token';
    try {
      const res = await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`);
      expect(res.status).toBe(504);
      expect(res.body).toMatchObject({ error: 'UPSTREAM.UPSTREAM_TIMEOUT', details: { status: 'refresh_failing', last_refresh_outcome: 'upstream_timeout' } });
    } finally {
      stack.proxy.hold = null;
    }
    expect(await detail(owner.accountId)).toMatchObject({
      status: 'refresh_failing',
      usable: false,
      reason: 'upstream_timeout',
      consecutive_failures: 1,
      refresh_in_progress: false,
    });
    expect((await tokenRow(stack, owner.accountId)).refresh_token_enc).toBe(before.refresh_token_enc);
    // Transient: the next forced refresh works with the kept refresh token.
    expect((await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`)).body).toMatchObject({ status: 'valid', consecutive_failures: 0 });
  });

  it('a local revoke revokes at the upstream (RFC 7009), deletes the token values, reads revoked and is audited; a new login revives it', async () => {
    const [owner] = await loginOwners(stack, 'revoke', 1);
    const before = await tokenRow(stack, owner.accountId);
    const refreshToken = decryptColumn(stack, before, 'refresh_token');
    stack.upstream.resetStats();

    const res = await admin.request('DELETE', `/accounts/${owner.accountId}/tokens`, { headers: { 'x-request-id': 'revoke-1' } });

    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      account_id: owner.accountId,
      status: 'revoked',
      usable: false,
      reason: 'owner_login_required',
      has_refresh_token: false,
      upstream_revocation: { refresh_token: 'revoked', access_token: 'revoked' },
    });
    expect(stack.upstream.stats.revocations).toBe(2);
    const after = await tokenRow(stack, owner.accountId);
    expect(after).toMatchObject({ status: 'revoked', access_token_enc: '', refresh_token_enc: null, id_token_enc: null, refresh_lease_owner: null });
    // The refresh token is dead at the upstream, not just forgotten here.
    await expect(stack.api.get(UpstreamClient).refresh(refreshToken)).rejects.toMatchObject({ oauthError: 'invalid_grant' });
    stack.upstream.resetStats();
    const [event] = await auditEvents(owner.accountId, 'upstream_token.revoke');
    expect(event).toMatchObject({
      actor_type: 'admin',
      outcome: 'success',
      request_id: 'revoke-1',
      details: { previous_status: 'valid', upstream_revocation: { refresh_token: 'revoked', access_token: 'revoked' } },
    });

    // Delegates see owner_login_required; nothing calls the upstream for it any more.
    await expect(vault.getUsableAccessToken(owner.accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });
    expect((await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`)).status).toBe(409);
    expect(stack.upstream.stats.refreshAttempts).toBe(0);

    // Idempotent: a second revoke has nothing left to revoke.
    const again = await admin.request('DELETE', `/accounts/${owner.accountId}/tokens`);
    expect(again.status).toBe(200);
    expect(again.body.upstream_revocation).toEqual({ refresh_token: 'absent', access_token: 'absent' });
    expect(stack.upstream.stats.revocations).toBe(0);

    await loginAs(stack, owner.user.username, { password: owner.user.password });
    expect(await detail(owner.accountId)).toMatchObject({ status: 'valid', has_refresh_token: true });
  });

  it('the detail never contains a token value or a ciphertext', async () => {
    const [owner] = await loginOwners(stack, 'no-values', 1);
    const row = await tokenRow(stack, owner.accountId);
    const secrets = [
      row.access_token_enc,
      row.refresh_token_enc!,
      row.id_token_enc!,
      decryptColumn(stack, row, 'access_token'),
      decryptColumn(stack, row, 'refresh_token'),
      decryptColumn(stack, row, 'id_token'),
    ];
    const texts = [
      JSON.stringify((await admin.request('GET', `/accounts/${owner.accountId}/tokens`)).body),
      JSON.stringify((await admin.request('POST', `/accounts/${owner.accountId}/tokens/refresh`)).body),
      JSON.stringify((await admin.request('GET', '/token-health/accounts?limit=100')).body),
    ];
    for (const text of texts) for (const secret of secrets) expect(text.includes(secret)).toBe(false);
  });

  it('unknown accounts are 404, malformed ids and filters 400, and every route needs the admin token', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    for (const [method, path] of [
      ['GET', `/accounts/${unknown}/tokens`],
      ['POST', `/accounts/${unknown}/tokens/refresh`],
      ['DELETE', `/accounts/${unknown}/tokens`],
    ]) {
      const res = await admin.request(method, path);
      expect([path, res.status, res.body.error]).toEqual([path, 404, 'NOT_FOUND']);
    }
    const badId = await admin.request('GET', '/accounts/not-a-uuid/tokens');
    expect([badId.status, badId.body.fields?.[0]?.field]).toEqual([400, 'id']);
    for (const query of ['status=bogus', 'has_active_delegations=maybe', 'expiring_within=-1', 'limit=101', 'cursor=%%%', 'unknown=1']) {
      const res = await admin.request('GET', `/token-health/accounts?${query}`);
      expect([query, res.status]).toEqual([query, 400]);
    }
    expect((await admin.request('GET', '/delegations/at-risk?within=abc')).status).toBe(400);
    for (const [method, path] of [
      ['GET', '/token-health'],
      ['GET', '/token-health/accounts'],
      ['GET', `/accounts/${delegate.accountId}/tokens`],
      ['POST', `/accounts/${delegate.accountId}/tokens/refresh`],
      ['DELETE', `/accounts/${delegate.accountId}/tokens`],
      ['GET', '/delegations/at-risk'],
    ]) {
      const res = await admin.request(method, path, { token: null });
      expect([path, res.status]).toEqual([path, 401]);
    }
    expect((await detail(delegate.accountId)).status).toBe('valid');
  });

  it('counts accounts per status and the active delegations hanging on each, matching the filtered lists', async () => {
    const before = await summary();
    const [valid, refreshable, reauth, failing, revoked] = await loginOwners(stack, 'count', 5);
    const delegations: [TokenOwner, number][] = [
      [valid, 1],
      [refreshable, 2],
      [reauth, 3],
      [failing, 1],
      [revoked, 2],
    ];
    for (const [owner, n] of delegations) {
      for (let i = 0; i < n; i++) await insertDelegation(stack, owner.accountId, delegate.accountId);
    }
    // Not counted: revoked and expired delegations, and those of another provider's owners.
    await insertDelegation(stack, valid.accountId, delegate.accountId, { status: 'revoked' });
    await insertDelegation(stack, valid.accountId, delegate.accountId, { expiresAt: new Date(Date.now() - 60_000) });

    await setAccessTokenExpiry(stack, [refreshable.accountId], -60);
    await stack.upstream.revokeGrantsOf(reauth.user.sub);
    expect((await admin.request('POST', `/accounts/${reauth.accountId}/tokens/refresh`)).status).toBe(409);
    stack.proxy.hold = (r) => r.path.startsWith('/token') && new URLSearchParams(r.body).get('grant_type') === 'refresh_token';
    try {
      expect((await admin.request('POST', `/accounts/${failing.accountId}/tokens/refresh`)).status).toBe(504);
    } finally {
      stack.proxy.hold = null;
    }
    expect((await admin.request('DELETE', `/accounts/${revoked.accountId}/tokens`)).status).toBe(200);

    const after = await summary();
    const expected: Record<Status, [number, number]> = {
      valid: [1, 1],
      refreshable: [1, 2],
      reauth_required: [1, 3],
      refresh_failing: [1, 1],
      revoked: [1, 2],
    };
    for (const status of STATUSES) {
      expect([status, after.by_status[status].accounts - before.by_status[status].accounts]).toEqual([status, expected[status][0]]);
      expect([status, after.by_status[status].active_delegations - before.by_status[status].active_delegations]).toEqual([status, expected[status][1]]);
    }
    expect(after.totals.accounts - before.totals.accounts).toBe(5);
    expect(after.totals.active_delegations - before.totals.active_delegations).toBe(9);

    // The summary and the status filter of the list agree (and each item has the status asked for).
    for (const status of STATUSES) {
      const { items } = await allPages(`/token-health/accounts?status=${status}`, 100);
      expect([status, items.length]).toEqual([status, after.by_status[status].accounts]);
      expect(items.every((i) => (i as { status: string }).status === status)).toBe(true);
    }
    expect(await detail(refreshable.accountId)).toMatchObject({ status: 'refreshable', active_delegations: 2 });
  });

  it('pages through accounts by cursor without gaps or repeats, and filters by delegations and expiry', async () => {
    const owners = await loginOwners(stack, 'page', 5);
    await insertDelegation(stack, owners[0].accountId, delegate.accountId);
    await insertDelegation(stack, owners[1].accountId, delegate.accountId);
    await setAccessTokenExpiry(stack, [owners[2].accountId, owners[3].accountId], 90);

    const full = await allPages('/token-health/accounts', 100);
    const paged = await allPages('/token-health/accounts', 2);
    const ids = paged.items.map((i) => i.account_id!);
    expect(ids).toEqual(full.items.map((i) => i.account_id));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(paged.pages.slice(0, -1).every((n) => n === 2)).toBe(true);
    for (const owner of owners) expect(ids).toContain(owner.accountId);

    const withDelegations = (await allPages('/token-health/accounts?has_active_delegations=true', 100)).items.map((i) => i.account_id);
    const withoutDelegations = (await allPages('/token-health/accounts?has_active_delegations=false', 100)).items.map((i) => i.account_id);
    expect(withDelegations).toEqual(expect.arrayContaining([owners[0].accountId, owners[1].accountId]));
    expect(withDelegations).not.toContain(owners[2].accountId);
    expect(withoutDelegations).toEqual(expect.arrayContaining([owners[2].accountId, owners[3].accountId, owners[4].accountId]));
    expect(withDelegations.length + withoutDelegations.length).toBe(ids.length);

    // Access token expiring within 2 minutes (and not yet expired): just the two moved to 90 s.
    const expiring = (await allPages('/token-health/accounts?expiring_within=120', 100)).items.map((i) => i.account_id);
    expect(expiring).toEqual(expect.arrayContaining([owners[2].accountId, owners[3].accountId]));
    expect(expiring).not.toContain(owners[4].accountId);
    const expiringWithout = (await allPages('/token-health/accounts?expiring_within=120&has_active_delegations=false&status=valid', 1)).items.map(
      (i) => i.account_id,
    );
    expect(expiringWithout).toEqual(expect.arrayContaining([owners[2].accountId, owners[3].accountId]));
    expect(expiringWithout).not.toContain(owners[0].accountId);
  });

  it('lists the active delegations at risk because of their owner’s tokens, now and within the window', async () => {
    const [healthy, dead, revokedOwner, failing, rtSoon, rtLater, noRefresh, endsFirst] = await loginOwners(stack, 'risk', 8);
    const d = {
      healthy: await insertDelegation(stack, healthy.accountId, delegate.accountId),
      dead: await insertDelegation(stack, dead.accountId, delegate.accountId),
      deadRevokedDelegation: await insertDelegation(stack, dead.accountId, delegate.accountId, { status: 'revoked' }),
      deadExpiredDelegation: await insertDelegation(stack, dead.accountId, delegate.accountId, { expiresAt: new Date(Date.now() - 1000) }),
      revoked: await insertDelegation(stack, revokedOwner.accountId, delegate.accountId),
      failing: await insertDelegation(stack, failing.accountId, delegate.accountId),
      rtSoon: await insertDelegation(stack, rtSoon.accountId, delegate.accountId),
      rtLater: await insertDelegation(stack, rtLater.accountId, delegate.accountId),
      noRefresh: await insertDelegation(stack, noRefresh.accountId, delegate.accountId),
      endsFirst: await insertDelegation(stack, endsFirst.accountId, delegate.accountId, { expiresAt: new Date(Date.now() + 300_000) }),
    };
    // dead: grant revoked at the upstream, found out by a use.
    await stack.upstream.revokeGrantsOf(dead.user.sub);
    await setAccessTokenExpiry(stack, [dead.accountId], -60);
    await expect(vault.getUsableAccessToken(dead.accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });
    expect((await admin.request('DELETE', `/accounts/${revokedOwner.accountId}/tokens`)).status).toBe(200);
    stack.proxy.hold = (r) => r.path.startsWith('/token') && new URLSearchParams(r.body).get('grant_type') === 'refresh_token';
    try {
      expect((await admin.request('POST', `/accounts/${failing.accountId}/tokens/refresh`)).status).toBe(504);
    } finally {
      stack.proxy.hold = null;
    }
    // Refresh token expiries as an upstream sending refresh_expires_in would record them.
    await stack.dataSource.query(`UPDATE upstream_token SET refresh_token_expires_at = now() + interval '10 minutes' WHERE account_id = ANY($1::uuid[])`, [
      [rtSoon.accountId, endsFirst.accountId],
    ]);
    await stack.dataSource.query(`UPDATE upstream_token SET refresh_token_expires_at = now() + interval '3 hours' WHERE account_id = $1`, [rtLater.accountId]);
    // An upstream that issued no refresh token: usable until the access token expires.
    await stack.dataSource.query(`UPDATE upstream_token SET refresh_token_enc = NULL WHERE account_id = $1`, [noRefresh.accountId]);
    await setAccessTokenExpiry(stack, [noRefresh.accountId], 900);

    const mine = new Set(Object.values(d));
    const atRisk = async (within: number, limit = 100) => {
      const { items } = await allPages(`/delegations/at-risk?within=${within}`, limit);
      return new Map(
        (items as unknown as { delegation: { id: string }; risk: { reason: string; usable_now: boolean; unusable_from: string | null }; owner: { account_id: string; token_status: string } }[])
          .filter((i) => mine.has(i.delegation.id))
          .map((i) => [i.delegation.id, i]),
      );
    };

    const now = await atRisk(0);
    expect([...now.keys()].sort()).toEqual([d.dead, d.revoked, d.failing].sort());
    expect(now.get(d.dead)).toMatchObject({
      owner: { account_id: dead.accountId, token_status: 'reauth_required' },
      risk: { reason: 'reauth_required', usable_now: false, unusable_from: null },
    });
    expect(now.get(d.revoked)!.risk).toMatchObject({ reason: 'revoked', usable_now: false });
    expect(now.get(d.failing)!.risk).toMatchObject({ reason: 'refresh_failing', usable_now: false });

    const hour = await atRisk(3600);
    expect([...hour.keys()].sort()).toEqual([d.dead, d.revoked, d.failing, d.rtSoon, d.noRefresh].sort());
    expect(hour.get(d.rtSoon)!.risk).toMatchObject({ reason: 'refresh_token_expiring', usable_now: true });
    expect(new Date(hour.get(d.rtSoon)!.risk.unusable_from!).getTime()).toBeGreaterThan(Date.now());
    expect(hour.get(d.noRefresh)!.risk).toMatchObject({ reason: 'access_token_expiring_without_refresh_token', usable_now: true });

    const day = await atRisk(86400);
    expect([...day.keys()].sort()).toEqual([d.dead, d.revoked, d.failing, d.rtSoon, d.noRefresh, d.rtLater].sort());
    // Same list page by page.
    expect([...(await atRisk(86400, 1)).keys()]).toEqual([...day.keys()]);
    // Default window: one day.
    const res = await admin.request('GET', '/delegations/at-risk?limit=100');
    expect(res.status).toBe(200);

    // Fixing the owner (a new login) takes the delegation off the list.
    await loginAs(stack, dead.user.username, { password: dead.user.password });
    expect((await atRisk(0)).has(d.dead)).toBe(false);
  });
});
