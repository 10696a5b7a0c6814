import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { columnAad, TokenCipher, UpstreamClient, UpstreamTokenVault, UpstreamUnavailableError } from '@rsa/auth';
import { CatalogueService, DEMO_ACCOUNT_RESOURCE } from '@rsa/resources';
import { startAdmin, type AdminInstance } from '../support/admin';
import { json } from '../support/http';
import { devAccounts, newRmUser, type RmUser } from '../support/resource-users';
import type { TestStack } from '../support/stack';
import { startStackBehindUpstreamProxy, type ProxiedRequest, type UpstreamProxy } from '../support/upstream-proxy';

/**
 * Issue [4], fault cases 1, 2, 3, 4, 7: the real stack (api app, PostgreSQL, the dev upstream over
 * HTTP) with a fault-injecting proxy as the upstream's address. Nothing of ours is mocked: faults are
 * what the proxy does to the upstream's traffic, or (case 4, the store failing) a trigger in the
 * database. Each test uses a fresh owner who delegates one upstream account to a fresh delegate;
 * what the delegate sees is the `related` claim of its /userinfo.
 *
 * Case 6 (the upstream's userinfo answers for another `sub`: owner dropped, audited) is
 * test/delegation-rules.e2e-spec.ts › "the related claim" › "drops an owner whose upstream userinfo
 * answers for a different sub"; case 5 (two instances, one grant) is test/vault.e2e-spec.ts and
 * the two-instance suite of test/reliability.
 */

const TIMEOUT_MS = 2500;
const MAX_RETRIES = 2;
const BACKOFF_MS = 100;
const MAX_BYTES = 64 * 1024;
/** What a caller may wait beyond UPSTREAM_TIMEOUT_MS for the failure to show (HTTP, database, scheduling). */
const MARGIN_MS = 1000;

interface TokenRow {
  account_id: string;
  access_token_enc: string;
  refresh_token_enc: string | null;
  id_token_enc: string | null;
  access_token_expires_at: Date;
  status: string;
  last_refresh_outcome: string | null;
  consecutive_failures: number;
  refresh_lease_until: Date | null;
  refresh_lease_owner: string | null;
  version: number;
}

interface RelatedEntry {
  sub: string;
  status: 'available' | 'unavailable';
  reason?: string;
}

const isRefresh = (r: ProxiedRequest) =>
  r.method === 'POST' && /^\/token(\?|$)/.test(r.path) && new URLSearchParams(r.body).get('grant_type') === 'refresh_token';

describe('upstream faults (real stack, dev upstream behind a fault-injecting proxy)', () => {
  let stack: TestStack & { proxy: UpstreamProxy };
  let proxy: UpstreamProxy;
  let cipher: TokenCipher;
  // Started once and closed before the stack: closing an app while another still uses the database
  // leaves the other with "Driver not Connected" (embedded database).
  let admin: AdminInstance;

  beforeAll(async () => {
    stack = await startStackBehindUpstreamProxy({
      env: {
        UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
        UPSTREAM_REFRESH_MAX_RETRIES: String(MAX_RETRIES),
        UPSTREAM_REFRESH_BACKOFF_MS: String(BACKOFF_MS),
        UPSTREAM_MAX_RESPONSE_BYTES: String(MAX_BYTES),
        // Every /userinfo must show the owner's current state.
        RELATED_CACHE_TTL_SECONDS: '0',
        RATE_LIMIT_ENABLED: 'false',
      },
    });
    proxy = stack.proxy;
    cipher = stack.api.get(TokenCipher);
    // startStack registers the demo resource type; the proxied stack leaves it to its suites.
    await stack.api.get(CatalogueService).upsert(DEMO_ACCOUNT_RESOURCE);
    admin = await startAdmin(stack);
  });

  afterEach(() => {
    proxy.hold = null;
    proxy.delay = null;
    proxy.respond = null;
    proxy.resetAfterForward = null;
  });

  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  /** A fresh owner with one upstream account, delegated (read) to a fresh delegate. */
  async function ownerAndDelegate(label: string, delegate?: RmUser): Promise<{ owner: RmUser; delegate: RmUser }> {
    const owner = await newRmUser(stack, `${label}-own`, { accounts: devAccounts(1, label) });
    const viewer = delegate ?? (await newRmUser(stack, `${label}-del`));
    const [resource] = (await json(await owner.get('/resources'))).owned as { id: string }[];
    const res = await owner.send('POST', '/delegations', { aliases: [resource.id], scopes: ['read'], delegate: { sub: viewer.sub } });
    expect(res.status).toBe(201);
    return { owner, delegate: viewer };
  }

  async function tokenRow(accountId: string): Promise<TokenRow> {
    const rows = await stack.dataSource.query<TokenRow[]>('SELECT * FROM upstream_token WHERE account_id = $1', [accountId]);
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  async function expireAccessToken(accountId: string): Promise<void> {
    await stack.dataSource.query(`UPDATE upstream_token SET access_token_expires_at = now() - interval '1 minute' WHERE account_id = $1`, [accountId]);
  }

  function decrypt(row: TokenRow, column: 'access_token' | 'refresh_token'): string {
    return cipher.decrypt(row[`${column}_enc`]!, columnAad('upstream_token', column, row.account_id));
  }

  /** The delegate's /userinfo (must be 200) and its related entry for `owner`. */
  async function relatedEntry(delegate: RmUser, owner: RmUser): Promise<RelatedEntry> {
    const res = await delegate.get('/userinfo');
    expect(res.status).toBe(200);
    const related = (await json(res)).related as RelatedEntry[];
    const entry = related.find((e) => e.sub === owner.sub);
    expect(entry).toBeDefined();
    return entry!;
  }

  function expectTokensUnchanged(after: TokenRow, before: TokenRow): void {
    for (const column of ['access_token_enc', 'refresh_token_enc', 'id_token_enc', 'access_token_expires_at'] as const) {
      expect([column, after[column]]).toEqual([column, before[column]]);
    }
  }

  const refreshesAtProxy = () => proxy.requests.filter(isRefresh);

  function startFresh(): void {
    proxy.requests.length = 0;
    proxy.streams.length = 0;
    stack.upstream.resetStats();
  }

  describe('case 1: the token endpoint never answers', () => {
    it('the owner is unavailable/upstream_timeout within UPSTREAM_TIMEOUT_MS (+ margin), the delegate gets 200, tokens unchanged, one attempt', async () => {
      const { owner, delegate } = await ownerAndDelegate('silent');
      await expireAccessToken(owner.sub);
      const before = await tokenRow(owner.sub);
      startFresh();
      const heldBefore = proxy.held;
      proxy.hold = isRefresh;

      const started = Date.now();
      const entry = await relatedEntry(delegate, owner);
      const elapsed = Date.now() - started;

      expect(entry).toMatchObject({ status: 'unavailable', reason: 'upstream_timeout' });
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      // The attempt used the whole deadline: no retry after it (a retry could not finish in time).
      expect(proxy.held - heldBefore).toBe(1);
      expect(refreshesAtProxy()).toHaveLength(1);
      expect(stack.upstream.stats.refreshAttempts).toBe(0);
      const after = await tokenRow(owner.sub);
      expectTokensUnchanged(after, before);
      expect(after).toMatchObject({ status: 'refresh_failing', last_refresh_outcome: 'upstream_timeout', refresh_lease_owner: null });
    });
  });

  describe('case 2: the token endpoint answers 5xx / 429', () => {
    it('503 with Retry-After: bounded retries (1 + maxRetries attempts) spaced by Retry-After, no token change, refresh_failing; recovers when the upstream does', async () => {
      const { owner, delegate } = await ownerAndDelegate('busy');
      await expireAccessToken(owner.sub);
      const before = await tokenRow(owner.sub);
      startFresh();
      proxy.respond = (r) => (isRefresh(r) ? { status: 503, headers: { 'retry-after': '1', 'content-type': 'text/plain' }, body: 'busy' } : null);

      const started = Date.now();
      const entry = await relatedEntry(delegate, owner);
      const elapsed = Date.now() - started;

      expect(entry).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
      const attempts = refreshesAtProxy();
      expect(attempts).toHaveLength(1 + MAX_RETRIES);
      // Retry-After: 1 is longer than the backoff (100, 200 ms): it sets the pace.
      for (let i = 1; i < attempts.length; i++) expect(attempts[i].at - attempts[i - 1].at).toBeGreaterThanOrEqual(950);
      expect(elapsed).toBeLessThan(TIMEOUT_MS + MARGIN_MS);
      expect(stack.upstream.stats.refreshAttempts).toBe(0);
      const after = await tokenRow(owner.sub);
      expectTokensUnchanged(after, before);
      expect(after).toMatchObject({ status: 'refresh_failing', last_refresh_outcome: 'upstream_error', consecutive_failures: 1, refresh_lease_owner: null });

      // The upstream is back: the next use refreshes with the kept refresh token.
      proxy.respond = null;
      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'available' });
      expect(stack.upstream.stats.refreshGrants).toBe(1);
      const recovered = await tokenRow(owner.sub);
      expect(recovered).toMatchObject({ status: 'valid', last_refresh_outcome: 'success', consecutive_failures: 0 });
      expect(decrypt(recovered, 'refresh_token')).not.toBe(decrypt(before, 'refresh_token'));
    });

    it('500, 429, 502 without Retry-After: retries back off exponentially from backoffMs and stop after maxRetries', async () => {
      const { owner, delegate } = await ownerAndDelegate('flaky');
      await expireAccessToken(owner.sub);
      const before = await tokenRow(owner.sub);
      startFresh();
      const statuses = [500, 429, 502, 500];
      let n = 0;
      proxy.respond = (r) => (isRefresh(r) ? { status: statuses[n++], headers: { 'content-type': 'application/json' }, body: '{"error":"server_error"}' } : null);

      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
      const attempts = refreshesAtProxy();
      expect(attempts).toHaveLength(1 + MAX_RETRIES);
      const gaps = attempts.slice(1).map((a, i) => a.at - attempts[i].at);
      expect(gaps[0]).toBeGreaterThanOrEqual(BACKOFF_MS - 10);
      expect(gaps[1]).toBeGreaterThanOrEqual(2 * BACKOFF_MS - 10);
      expect(gaps[1]).toBeLessThan(TIMEOUT_MS);
      expectTokensUnchanged(await tokenRow(owner.sub), before);
    });

    it('a transient failure followed by success within the same call: served, one grant, valid', async () => {
      const { owner, delegate } = await ownerAndDelegate('blip');
      await expireAccessToken(owner.sub);
      startFresh();
      let n = 0;
      proxy.respond = (r) => (isRefresh(r) && n++ < 2 ? { status: 503, body: '' } : null);

      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'available' });
      expect(refreshesAtProxy()).toHaveLength(3);
      expect(stack.upstream.stats.refreshGrants).toBe(1);
      expect(await tokenRow(owner.sub)).toMatchObject({ status: 'valid', last_refresh_outcome: 'success' });
    });

    it('a Retry-After beyond the deadline is not waited for: one attempt, the failure shows at once', async () => {
      const { owner, delegate } = await ownerAndDelegate('later');
      await expireAccessToken(owner.sub);
      startFresh();
      proxy.respond = (r) => (isRefresh(r) ? { status: 503, headers: { 'retry-after': '120' }, body: '' } : null);

      const started = Date.now();
      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
      expect(Date.now() - started).toBeLessThan(1000);
      expect(refreshesAtProxy()).toHaveLength(1);
    });
  });

  describe('case 3: invalid_grant', () => {
    it('50 concurrent uses: exactly one attempt, reauth_required, no retry, every caller 200; visible in admin token health', async () => {
      const { owner, delegate } = await ownerAndDelegate('gone');
      expect(await stack.upstream.revokeGrantsOf(owner.upstream.sub)).toBeGreaterThan(0);
      await expireAccessToken(owner.sub);
      startFresh();

      const entries = await Promise.all(Array.from({ length: 50 }, () => relatedEntry(delegate, owner)));
      for (const entry of entries) expect(entry).toMatchObject({ status: 'unavailable', reason: 'owner_login_required' });
      expect(stack.upstream.stats.refreshAttempts).toBe(1);
      expect(refreshesAtProxy()).toHaveLength(1);
      expect(await tokenRow(owner.sub)).toMatchObject({ status: 'reauth_required', last_refresh_outcome: 'invalid_grant', refresh_lease_owner: null });

      // Later uses do not ask again.
      expect(await relatedEntry(delegate, owner)).toMatchObject({ reason: 'owner_login_required' });
      expect(stack.upstream.stats.refreshAttempts).toBe(1);

      // Token health lists the account under reauth_required (following pages: the database may be shared).
      const found: { account_id: string; status: string; last_refresh_outcome?: string }[] = [];
      let cursor: string | undefined;
      do {
        const res = await admin.request('GET', `/token-health/accounts?status=reauth_required&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.status).toBe(200);
        found.push(...res.body.items.filter((i: { account_id: string }) => i.account_id === owner.sub));
        cursor = res.body.next_cursor ?? undefined;
      } while (cursor && !found.length);
      expect(found).toEqual([expect.objectContaining({ account_id: owner.sub, status: 'reauth_required', last_refresh_outcome: 'invalid_grant' })]);
    });
  });

  describe('case 4: rotation and storage out of step', () => {
    it('the upstream rotates but the answer is lost (reset): next attempt invalid_grant → reauth_required; process up; another owner unaffected', async () => {
      const { owner, delegate } = await ownerAndDelegate('lost');
      const { owner: other } = await ownerAndDelegate('bystander', delegate);
      await expireAccessToken(owner.sub);
      await expireAccessToken(other.sub);
      const before = await tokenRow(owner.sub);
      const ownerRefreshToken = decrypt(before, 'refresh_token');
      startFresh();
      proxy.resetAfterForward = (r) => isRefresh(r) && new URLSearchParams(r.body).get('refresh_token') === ownerRefreshToken;

      const res = await delegate.get('/userinfo');
      expect(res.status).toBe(200);
      const related = (await json(res)).related as RelatedEntry[];
      expect(related.find((e) => e.sub === owner.sub)).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
      expect(related.find((e) => e.sub === other.sub)).toMatchObject({ status: 'available' });
      // The upstream committed both rotations; ours was lost on the way back and not retried.
      expect(stack.upstream.stats.refreshGrants).toBe(2);
      expect(refreshesAtProxy().filter((r) => new URLSearchParams(r.body).get('refresh_token') === ownerRefreshToken)).toHaveLength(1);
      const failing = await tokenRow(owner.sub);
      expectTokensUnchanged(failing, before);
      expect(failing).toMatchObject({ status: 'refresh_failing', last_refresh_outcome: 'upstream_error', refresh_lease_owner: null });

      // The next attempt presents the only refresh token we have: refused; reauth_required, once.
      proxy.resetAfterForward = null;
      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'owner_login_required' });
      expect(stack.upstream.stats.refreshAttempts).toBe(3);
      expect(await tokenRow(owner.sub)).toMatchObject({ status: 'reauth_required', last_refresh_outcome: 'invalid_grant' });
      expect(await relatedEntry(delegate, owner)).toMatchObject({ reason: 'owner_login_required' });
      expect(stack.upstream.stats.refreshAttempts).toBe(3);

      // The process is up and everything else works.
      expect((await fetch(`${stack.issuer}/.well-known/openid-configuration`)).status).toBe(200);
      expect(await relatedEntry(delegate, other)).toMatchObject({ status: 'available' });
      expect(await tokenRow(other.sub)).toMatchObject({ status: 'valid', last_refresh_outcome: 'success' });
    });

    describe('the upstream answers but storing the new tokens fails (a trigger on upstream_token)', () => {
      const triggers: string[] = [];
      afterEach(async () => {
        for (const name of triggers.splice(0)) {
          await stack.dataSource.query(`DROP TRIGGER IF EXISTS ${name} ON upstream_token`);
          await stack.dataSource.query(`DROP FUNCTION IF EXISTS ${name}()`);
        }
      });

      /** Makes UPDATEs of one account's row fail when `condition` (over OLD/NEW) holds. */
      async function failUpdatesOf(accountId: string, condition: string): Promise<void> {
        const name = `rsa_test_fail_${accountId.replace(/-/g, '')}`;
        triggers.push(name);
        await stack.dataSource.query(
          `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$`,
        );
        await stack.dataSource.query(
          `CREATE TRIGGER ${name} BEFORE UPDATE ON upstream_token FOR EACH ROW
             WHEN (OLD.account_id = '${accountId}'::uuid AND (${condition})) EXECUTE FUNCTION ${name}()`,
        );
      }

      it('fails closed: reauth_required without the dead refresh token, audited, the new one revoked; the old token is never sent again', async () => {
        const { owner, delegate } = await ownerAndDelegate('nostore');
        await expireAccessToken(owner.sub);
        const before = await tokenRow(owner.sub);
        startFresh();
        await failUpdatesOf(owner.sub, 'NEW.access_token_enc IS DISTINCT FROM OLD.access_token_enc');

        expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'owner_login_required' });
        expect(stack.upstream.stats.refreshGrants).toBe(1);
        // The refresh token we could not keep is revoked at the upstream (RFC 7009).
        expect(stack.upstream.stats.revocations).toBe(1);
        const after = await tokenRow(owner.sub);
        expect(after).toMatchObject({
          status: 'reauth_required',
          refresh_token_enc: null,
          access_token_enc: before.access_token_enc,
          refresh_lease_owner: null,
          refresh_lease_until: null,
        });
        const events = await stack.dataSource.query<{ details: Record<string, unknown> }[]>(
          `SELECT details FROM audit_event WHERE action = 'upstream_token.reauth_required' AND target_id = $1`,
          [owner.sub],
        );
        expect(events).toEqual([expect.objectContaining({ details: expect.objectContaining({ outcome: 'store_failed' }) })]);

        // Never replayed: later uses (the trigger still there or not) do not reach the token endpoint.
        for (let i = 0; i < 3; i++) expect(await relatedEntry(delegate, owner)).toMatchObject({ reason: 'owner_login_required' });
        expect(stack.upstream.stats.refreshAttempts).toBe(1);
        expect(refreshesAtProxy()).toHaveLength(1);
      });

      it('if even the reauth_required mark cannot be written, the lease is kept; once it expires the dead token is refused (invalid_grant), never a second grant', async () => {
        const { owner, delegate } = await ownerAndDelegate('nomark');
        await expireAccessToken(owner.sub);
        const before = await tokenRow(owner.sub);
        startFresh();
        await failUpdatesOf(owner.sub, `NEW.access_token_enc IS DISTINCT FROM OLD.access_token_enc OR NEW.status = 'reauth_required'`);

        expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'owner_login_required' });
        expect(stack.upstream.stats.refreshGrants).toBe(1);
        const held = await tokenRow(owner.sub);
        expect(held.refresh_token_enc).toBe(before.refresh_token_enc);
        expect(held.refresh_lease_owner).not.toBeNull();
        expect(held.refresh_lease_until!.getTime()).toBeGreaterThan(Date.now() + TIMEOUT_MS);

        // The database works again and the lease runs out (moved to the past rather than waited for).
        await stack.dataSource.query(`DROP TRIGGER ${triggers[0]} ON upstream_token`);
        await stack.dataSource.query(`UPDATE upstream_token SET refresh_lease_until = now() - interval '1 second' WHERE account_id = $1`, [owner.sub]);
        await expect(stack.api.get(UpstreamTokenVault).getUsableAccessToken(owner.sub)).rejects.toMatchObject({ reason: 'owner_login_required' });
        expect(stack.upstream.stats.refreshAttempts).toBe(2);
        expect(stack.upstream.stats.refreshGrants).toBe(1);
        expect(await tokenRow(owner.sub)).toMatchObject({ status: 'reauth_required', last_refresh_outcome: 'invalid_grant', refresh_lease_owner: null });
      });
    });
  });

  describe('case 7: answers we must not use', () => {
    async function expectRejectedRefresh(label: string, fault: (r: ProxiedRequest) => ReturnType<NonNullable<UpstreamProxy['respond']>>): Promise<void> {
      const { owner, delegate } = await ownerAndDelegate(label);
      await expireAccessToken(owner.sub);
      const before = await tokenRow(owner.sub);
      startFresh();
      proxy.respond = (r) => (isRefresh(r) ? fault(r) : null);

      expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
      expect(refreshesAtProxy()).toHaveLength(1); // not transient: no retry
      expect(stack.upstream.stats.refreshAttempts).toBe(0);
      const after = await tokenRow(owner.sub);
      expectTokensUnchanged(after, before);
      expect(after).toMatchObject({ status: 'refresh_failing', last_refresh_outcome: 'upstream_error', refresh_lease_owner: null });
    }

    it('non-JSON answers (HTML; "JSON" that does not parse) are rejected', async () => {
      await expectRejectedRefresh('html', () => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>maintenance</html>' }));
      await expectRejectedRefresh('badjson', () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"access_token": ' }));
    });

    it('a body over UPSTREAM_MAX_RESPONSE_BYTES is cut off: the request is aborted after about the cap, chunked or with Content-Length', async () => {
      const total = 128 * 1024 * 1024;
      // The proxy reports a stream when its socket closes, which may come a moment after our answer.
      const streamReport = async () => {
        for (let waited = 0; !proxy.streams.length && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
        expect(proxy.streams).toHaveLength(1);
        return proxy.streams[0];
      };
      await expectRejectedRefresh('huge', () => ({ status: 200, headers: { 'content-type': 'application/json' }, streamBytes: total }));
      const chunked = await streamReport();
      await expectRejectedRefresh('hugelen', () => ({ status: 200, headers: { 'content-type': 'application/json' }, streamBytes: total, declareLength: true }));
      const declared = await streamReport();
      for (const report of [chunked, declared]) {
        expect(report.clientClosedEarly).toBe(true);
        // What the socket took before we hung up: the cap plus socket buffers, nowhere near the body.
        expect(report.bytesWritten).toBeLessThan(16 * 1024 * 1024);
      }
      // The client itself says why.
      proxy.respond = (r) => (isRefresh(r) ? { status: 200, headers: { 'content-type': 'application/json' }, streamBytes: total } : null);
      const error = await stack.api
        .get(UpstreamClient)
        .refresh('not-a-real-token')
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect((error as Error).message).toMatch(new RegExp(`larger than ${MAX_BYTES} bytes`));
    });

    describe('redirects to another host', () => {
      let other: Server;
      let otherUrl: string;
      let otherHits = 0;
      beforeAll(async () => {
        other = createServer((req, res) => {
          otherHits += 1;
          req.resume();
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"evil","token_type":"Bearer","expires_in":300}');
        });
        await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
        otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
      });
      afterAll(() => new Promise<void>((resolve) => other.close(() => resolve())));

      it('on the token endpoint (302, 307): rejected, not followed', async () => {
        await expectRejectedRefresh('redir302', () => ({ status: 302, headers: { location: `${otherUrl}/token` } }));
        await expectRejectedRefresh('redir307', () => ({ status: 307, headers: { location: `${otherUrl}/token` } }));
        expect(otherHits).toBe(0);
      });

      it("on the owner's userinfo: the owner is unavailable/upstream_error, not followed", async () => {
        const { owner, delegate } = await ownerAndDelegate('redirme');
        const ownerAccessToken = decrypt(await tokenRow(owner.sub), 'access_token');
        startFresh();
        proxy.respond = (r) =>
          r.path.startsWith('/me') && r.headers?.authorization === `Bearer ${ownerAccessToken}` ? { status: 302, headers: { location: `${otherUrl}/me` } } : null;

        expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'unavailable', reason: 'upstream_error' });
        expect(proxy.requests.filter((r) => r.path.startsWith('/me') && r.headers?.authorization === `Bearer ${ownerAccessToken}`)).toHaveLength(1);
        expect(otherHits).toBe(0);
        proxy.respond = null;
        expect(await relatedEntry(delegate, owner)).toMatchObject({ status: 'available' });
      });
    });
  });
});
