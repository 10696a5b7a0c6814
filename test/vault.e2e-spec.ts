import * as oidc from 'openid-client';
import { DataSource } from 'typeorm';
import { columnAad, DecryptionError, TokenCipher, UpstreamTokenError, UpstreamTokenVault } from '@rsa/auth';
import type { DevUser } from '@rsa/dev-upstream';
import { startSecondInstance, type ApiInstance } from './support/second-instance';
import { startStack, type TestStack } from './support/stack';
import { randomId } from './support/test-config';
import { startStackBehindUpstreamProxy, type UpstreamProxy } from './support/upstream-proxy';
import { loginAs, type WalletSession } from './support/wallet';

/** The upstream_token row as stored (snake_case, straight from SQL). */
interface TokenRow {
  id: string;
  account_id: string;
  access_token_enc: string;
  refresh_token_enc: string | null;
  id_token_enc: string | null;
  access_token_expires_at: Date;
  status: string;
  last_refresh_outcome: string | null;
  last_refresh_error: string | null;
  consecutive_failures: number;
  refresh_lease_until: Date | null;
  refresh_lease_owner: string | null;
  version: number;
}

type TokenColumn = 'access_token' | 'refresh_token' | 'id_token';

/** A user of its own at this stack's upstream, so every test works on a fresh account. */
function newUpstreamUser(stack: TestStack, label: string): DevUser {
  const username = randomId(label);
  const user: DevUser = {
    sub: `${username}-sub`,
    username,
    password: randomId('pw'),
    name: `Test ${label}`,
    given_name: 'Test',
    family_name: label,
    email: `${username}@example.com`,
    email_verified: true,
  };
  stack.upstream.users.push(user);
  return user;
}

/** Logs a new user in through the Wallet flow; returns the RSA account id and the Wallet session. */
async function loginNewUser(stack: TestStack, label: string): Promise<{ user: DevUser; accountId: string; session: WalletSession }> {
  const user = newUpstreamUser(stack, label);
  const session = await loginAs(stack, user.username, { password: user.password });
  const rows = await stack.dataSource.query<{ id: string }[]>('SELECT id FROM account WHERE provider = $1 AND sub = $2', [
    stack.config.upstream.issuer,
    user.sub,
  ]);
  expect(rows).toHaveLength(1);
  return { user, accountId: rows[0].id, session };
}

async function tokenRow(dataSource: DataSource, accountId: string): Promise<TokenRow> {
  const rows = await dataSource.query<TokenRow[]>('SELECT * FROM upstream_token WHERE account_id = $1', [accountId]);
  expect(rows).toHaveLength(1);
  return rows[0];
}

async function expireAccessToken(dataSource: DataSource, accountId: string): Promise<void> {
  await dataSource.query(`UPDATE upstream_token SET access_token_expires_at = now() - interval '1 minute' WHERE account_id = $1`, [accountId]);
}

function decryptColumn(cipher: TokenCipher, row: TokenRow, column: TokenColumn): string {
  const value = row[`${column}_enc`];
  if (!value) throw new Error(`${column}_enc is empty`);
  return cipher.decrypt(value, columnAad('upstream_token', column, row.account_id));
}

/** The same base64url text with one character (inside a part, so every bit of it is data) changed. */
function flipCharacterOfPart(value: string, partIndex: number): string {
  const parts = value.split('.');
  const part = parts[partIndex];
  const at = Math.floor(part.length / 2);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const flipped = alphabet[alphabet.indexOf(part[at]) ^ 0b100000];
  parts[partIndex] = part.slice(0, at) + flipped + part.slice(at + 1);
  return parts.join('.');
}

async function callResourceApi(stack: TestStack, accessToken: string): Promise<number> {
  const res = await fetch(`${stack.upstream.resourceBaseUrl}/accounts`, { headers: { authorization: `Bearer ${accessToken}` } });
  await res.arrayBuffer();
  return res.status;
}

describe('UpstreamTokenVault on the real stack (dev upstream over HTTP, PostgreSQL)', () => {
  let stack: TestStack;
  let second: ApiInstance;
  let vault: UpstreamTokenVault;
  let secondVault: UpstreamTokenVault;
  let cipher: TokenCipher;

  beforeAll(async () => {
    stack = await startStack();
    second = await startSecondInstance(stack);
    vault = stack.api.get(UpstreamTokenVault);
    secondVault = second.api.get(UpstreamTokenVault);
    cipher = stack.api.get(TokenCipher);
  });

  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  it('twenty concurrent callers on two app instances cause exactly one upstream refresh and all get the new token', async () => {
    expect(secondVault).not.toBe(vault);
    expect(second.dataSource).not.toBe(stack.dataSource);
    const { accountId } = await loginNewUser(stack, 'stampede');
    const before = await tokenRow(stack.dataSource, accountId);
    const oldAccessToken = decryptColumn(cipher, before, 'access_token');
    await expireAccessToken(stack.dataSource, accountId);
    stack.upstream.resetStats();

    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? vault : secondVault).getUsableAccessToken(accountId)),
    );

    expect(stack.upstream.stats.refreshGrants).toBe(1);
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
    expect(new Set(tokens).size).toBe(1);
    const [fresh] = tokens;
    expect(fresh).not.toBe(oldAccessToken);
    expect(await callResourceApi(stack, fresh)).toBe(200);

    const after = await tokenRow(stack.dataSource, accountId);
    expect(decryptColumn(cipher, after, 'access_token')).toBe(fresh);
    expect(after.version).toBe(before.version + 1);
    expect(after).toMatchObject({ status: 'valid', last_refresh_outcome: 'success', refresh_lease_until: null, refresh_lease_owner: null });
    expect(after.access_token_expires_at.getTime()).toBeGreaterThan(Date.now());

    // Served from the database now, by either instance, without another upstream call.
    await expect(secondVault.getUsableAccessToken(accountId)).resolves.toBe(fresh);
    await expect(vault.getUsableAccessToken(accountId)).resolves.toBe(fresh);
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
  });

  it('stores the rotated refresh token, so the next refresh works; the replaced one is dead at the upstream', async () => {
    const { accountId } = await loginNewUser(stack, 'rotation');
    const initial = await tokenRow(stack.dataSource, accountId);
    const firstRefreshToken = decryptColumn(cipher, initial, 'refresh_token');

    await expireAccessToken(stack.dataSource, accountId);
    stack.upstream.resetStats();
    const secondAccessToken = await vault.getUsableAccessToken(accountId);
    const afterFirst = await tokenRow(stack.dataSource, accountId);
    const secondRefreshToken = decryptColumn(cipher, afterFirst, 'refresh_token');
    expect(secondRefreshToken).not.toBe(firstRefreshToken);

    // The second refresh presents the stored (rotated) token; a stale one would be refused.
    await expireAccessToken(stack.dataSource, accountId);
    const thirdAccessToken = await secondVault.getUsableAccessToken(accountId);
    expect(stack.upstream.stats.refreshGrants).toBe(2);
    expect(stack.upstream.stats.refreshAttempts).toBe(2);
    expect(thirdAccessToken).not.toBe(secondAccessToken);
    expect(await callResourceApi(stack, thirdAccessToken)).toBe(200);
    const afterSecond = await tokenRow(stack.dataSource, accountId);
    expect(decryptColumn(cipher, afterSecond, 'refresh_token')).not.toBe(secondRefreshToken);
    expect(afterSecond).toMatchObject({ status: 'valid', last_refresh_outcome: 'success', consecutive_failures: 0 });

    // Control: put the first, replaced refresh token back; the upstream refuses it (rotation is real).
    await stack.dataSource.query('UPDATE upstream_token SET refresh_token_enc = $2 WHERE account_id = $1', [
      accountId,
      cipher.encrypt(firstRefreshToken, columnAad('upstream_token', 'refresh_token', accountId)),
    ]);
    await expireAccessToken(stack.dataSource, accountId);
    await expect(vault.getUsableAccessToken(accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });
    expect(stack.upstream.stats.refreshGrants).toBe(2);
    expect(stack.upstream.stats.refreshAttempts).toBe(3);
  });

  it('a refresh token the upstream refuses (invalid_grant) marks the account reauth_required, audits it, and stops calling the upstream', async () => {
    const { user, accountId } = await loginNewUser(stack, 'revoked');
    expect(await stack.upstream.revokeGrantsOf(user.sub)).toBeGreaterThan(0);
    await expireAccessToken(stack.dataSource, accountId);
    stack.upstream.resetStats();

    const error = await vault.getUsableAccessToken(accountId).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamTokenError);
    expect(error).toMatchObject({ reason: 'owner_login_required', code: 'UPSTREAM.OWNER_LOGIN_REQUIRED' });
    expect(stack.upstream.stats.refreshAttempts).toBe(1);
    expect(stack.upstream.stats.refreshGrants).toBe(0);

    const row = await tokenRow(stack.dataSource, accountId);
    expect(row).toMatchObject({
      status: 'reauth_required',
      last_refresh_outcome: 'invalid_grant',
      consecutive_failures: 1,
      refresh_lease_until: null,
      refresh_lease_owner: null,
    });
    const events = await stack.dataSource.query<{ outcome: string; actor_type: string; details: Record<string, unknown> }[]>(
      `SELECT outcome, actor_type, details FROM audit_event WHERE action = 'upstream_token.reauth_required' AND target_type = 'account' AND target_id = $1`,
      [accountId],
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ outcome: 'failure', actor_type: 'system', details: { outcome: 'invalid_grant' } });

    // Dead until the owner logs in again: no further upstream call, from either instance.
    await expect(vault.getUsableAccessToken(accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });
    await expect(secondVault.getUsableAccessToken(accountId)).rejects.toMatchObject({ reason: 'owner_login_required' });
    expect(stack.upstream.stats.refreshAttempts).toBe(1);

    // A new login revives it.
    await loginAs(stack, user.username, { password: user.password });
    const revived = await tokenRow(stack.dataSource, accountId);
    expect(revived.status).toBe('valid');
    expect(await callResourceApi(stack, await vault.getUsableAccessToken(accountId))).toBe(200);
  });

  it('a tampered access token ciphertext is rejected with DecryptionError', async () => {
    const { accountId } = await loginNewUser(stack, 'tamper');
    const row = await tokenRow(stack.dataSource, accountId);
    const tampered = flipCharacterOfPart(row.access_token_enc, 3);
    expect(tampered).not.toBe(row.access_token_enc);
    await stack.dataSource.query('UPDATE upstream_token SET access_token_enc = $2 WHERE account_id = $1', [accountId, tampered]);

    const error = await vault.getUsableAccessToken(accountId).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ code: 'CRYPTO.DECRYPTION_FAILED' });
  });

  it('a tampered refresh token ciphertext is rejected without calling the upstream, and the refresh lease is released', async () => {
    const { accountId } = await loginNewUser(stack, 'tamper-rt');
    const row = await tokenRow(stack.dataSource, accountId);
    await stack.dataSource.query('UPDATE upstream_token SET refresh_token_enc = $2 WHERE account_id = $1', [
      accountId,
      flipCharacterOfPart(row.refresh_token_enc!, 3),
    ]);
    await expireAccessToken(stack.dataSource, accountId);
    stack.upstream.resetStats();

    await expect(vault.getUsableAccessToken(accountId)).rejects.toMatchObject({ code: 'CRYPTO.DECRYPTION_FAILED' });
    expect(stack.upstream.stats.refreshAttempts).toBe(0);
    const after = await tokenRow(stack.dataSource, accountId);
    expect(after.refresh_lease_until).toBeNull();
    expect(after.refresh_lease_owner).toBeNull();
    // Not stuck behind a lease: the other instance sees the same error at once, not a wait and a timeout.
    const started = Date.now();
    await expect(secondVault.getUsableAccessToken(accountId)).rejects.toMatchObject({ code: 'CRYPTO.DECRYPTION_FAILED' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("another account's ciphertext copied into a row does not decrypt there", async () => {
    const a = await loginNewUser(stack, 'owner-a');
    const b = await loginNewUser(stack, 'owner-b');
    const rowA = await tokenRow(stack.dataSource, a.accountId);
    const rowB = await tokenRow(stack.dataSource, b.accountId);
    expect(decryptColumn(cipher, rowA, 'access_token')).not.toBe(decryptColumn(cipher, rowB, 'access_token'));

    await stack.dataSource.query('UPDATE upstream_token SET access_token_enc = $2 WHERE account_id = $1', [b.accountId, rowA.access_token_enc]);
    await expect(vault.getUsableAccessToken(b.accountId)).rejects.toBeInstanceOf(DecryptionError);
    await expect(secondVault.getUsableAccessToken(b.accountId)).rejects.toMatchObject({ code: 'CRYPTO.DECRYPTION_FAILED' });
    // Bound to the column too: A's access token ciphertext is not A's refresh token.
    expect(() => cipher.decrypt(rowA.access_token_enc, columnAad('upstream_token', 'refresh_token', a.accountId))).toThrow(DecryptionError);
    // A itself is unaffected.
    await expect(vault.getUsableAccessToken(a.accountId)).resolves.toBe(decryptColumn(cipher, rowA, 'access_token'));
  });

  it('no token value is stored in clear in any text, varchar or json column of any table', async () => {
    const { accountId, session } = await loginNewUser(stack, 'at-rest');
    const cleartexts = new Map<string, string>();
    const collectUpstream = async (when: string) => {
      const row = await tokenRow(stack.dataSource, accountId);
      for (const column of ['access_token', 'refresh_token', 'id_token'] as const) {
        cleartexts.set(`upstream ${column} (${when})`, decryptColumn(cipher, row, column));
      }
      return row;
    };
    await collectUpstream('login');
    await expireAccessToken(stack.dataSource, accountId);
    await vault.getUsableAccessToken(accountId);
    const stored = await collectUpstream('refreshed');

    cleartexts.set('RSA access token (login)', session.tokens.access_token);
    cleartexts.set('RSA refresh token (login)', session.tokens.refresh_token!);
    const refreshed = await oidc.refreshTokenGrant(session.configuration, session.tokens.refresh_token!);
    cleartexts.set('RSA access token (refreshed)', refreshed.access_token);
    cleartexts.set('RSA refresh token (refreshed)', refreshed.refresh_token!);
    for (const [label, value] of cleartexts) expect([label, value.length > 20]).toEqual([label, true]);

    const columns = await stack.dataSource.query<{ table_name: string; column_name: string }[]>(
      `SELECT c.table_name, c.column_name
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
          AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
        ORDER BY 1, 2`,
    );
    const tables = new Set(columns.map((c) => c.table_name));
    for (const table of ['account', 'upstream_token', 'oidc_payload', 'audit_event', 'oauth_client']) expect(tables).toContain(table);

    const search = async (needles: string[]) => {
      const hits: string[] = [];
      for (const { table_name, column_name } of columns) {
        const found = await stack.dataSource.query<{ needle: string }[]>(
          `SELECT DISTINCT n.needle FROM "${table_name}" r, unnest($1::text[]) AS n(needle)
            WHERE position(n.needle in r."${column_name}"::text) > 0`,
          [needles],
        );
        for (const { needle } of found) hits.push(`${table_name}.${column_name} contains ${needle.slice(0, 12)}…`);
      }
      return hits;
    };

    // The search does find what is there (the ciphertext itself, the account's upstream sub).
    expect(await search([stored.access_token_enc])).toEqual([expect.stringMatching(/^upstream_token\.access_token_enc /)]);
    expect(await search([flipCharacterOfPart(stored.access_token_enc, 3)])).toEqual([]);

    const hits = await search([...cleartexts.values()]);
    const labelled = hits.map((hit) => `${hit} (${[...cleartexts].find(([, v]) => hit.includes(v.slice(0, 12)))?.[0]})`);
    expect(labelled).toEqual([]);
  });
});

describe('UpstreamTokenVault when upstream access tokens live shorter than the refresh skew', () => {
  let stack: TestStack & { proxy: UpstreamProxy };
  let second: ApiInstance;

  beforeAll(async () => {
    // 30 s tokens, 60 s skew: a token fresh from the upstream is already "about to expire".
    stack = await startStackBehindUpstreamProxy({ upstreamAccessTokenTtlSeconds: 30, env: { UPSTREAM_REFRESH_SKEW_SECONDS: '60' } });
    second = await startSecondInstance(stack);
  });
  afterAll(async () => {
    await second?.close();
    await stack?.close();
  });

  it('callers already waiting on two instances take the refreshed token instead of refreshing once more each', async () => {
    const user = newUpstreamUser(stack, 'short-ttl');
    await loginAs(stack, user.username, { password: user.password });
    const [{ id: accountId }] = await stack.dataSource.query<{ id: string }[]>('SELECT id FROM account WHERE provider = $1 AND sub = $2', [
      stack.config.upstream.issuer,
      user.sub,
    ]);
    stack.upstream.resetStats();
    // The refresh answers late, so all twenty callers have found the old token unusable and wait.
    stack.proxy.delay = (r) => (new URLSearchParams(r.body).get('grant_type') === 'refresh_token' ? 300 : 0);
    const vaults = [stack.api.get(UpstreamTokenVault), second.api.get(UpstreamTokenVault)];

    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => vaults[i % 2].getUsableAccessToken(accountId)));

    expect(stack.upstream.stats.refreshAttempts).toBe(1);
    expect(new Set(tokens).size).toBe(1);
    expect(await callResourceApi(stack, tokens[0])).toBe(200);
  });
});

describe('UpstreamTokenVault when the upstream token endpoint never answers', () => {
  const TIMEOUT_MS = 1000;
  let stack: TestStack & { proxy: UpstreamProxy };

  beforeAll(async () => {
    stack = await startStackBehindUpstreamProxy({ env: { UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS) } });
  });
  afterAll(() => stack?.close());

  it('fails with upstream_timeout within UPSTREAM_TIMEOUT_MS, keeps the stored tokens, marks refresh_failing and releases the lease', async () => {
    const vault = stack.api.get(UpstreamTokenVault);
    const cipher = stack.api.get(TokenCipher);
    const user = newUpstreamUser(stack, 'silent');
    await loginAs(stack, user.username, { password: user.password });
    const [{ id: accountId }] = await stack.dataSource.query<{ id: string }[]>('SELECT id FROM account WHERE provider = $1 AND sub = $2', [
      stack.config.upstream.issuer,
      user.sub,
    ]);
    await expireAccessToken(stack.dataSource, accountId);
    const before = await tokenRow(stack.dataSource, accountId);
    stack.upstream.resetStats();
    stack.proxy.hold = (r) => r.method === 'POST' && r.path.startsWith('/token') && new URLSearchParams(r.body).get('grant_type') === 'refresh_token';

    const started = Date.now();
    const error = await vault.getUsableAccessToken(accountId).then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;

    expect(error).toBeInstanceOf(UpstreamTokenError);
    expect(error).toMatchObject({ reason: 'upstream_timeout' });
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 1000);
    expect(stack.proxy.held).toBe(1);
    expect(stack.upstream.stats.refreshAttempts).toBe(0);

    const after = await tokenRow(stack.dataSource, accountId);
    for (const column of ['access_token_enc', 'refresh_token_enc', 'id_token_enc', 'access_token_expires_at'] as const) {
      expect([column, after[column]]).toEqual([column, before[column]]);
    }
    expect(after).toMatchObject({
      status: 'refresh_failing',
      last_refresh_outcome: 'upstream_timeout',
      consecutive_failures: 1,
      refresh_lease_until: null,
      refresh_lease_owner: null,
    });

    // Once the upstream answers again, the kept refresh token works (the lease is not in the way).
    stack.proxy.hold = null;
    const fresh = await vault.getUsableAccessToken(accountId);
    expect(fresh).not.toBe(decryptColumn(cipher, before, 'access_token'));
    expect(stack.upstream.stats.refreshGrants).toBe(1);
    expect(await tokenRow(stack.dataSource, accountId)).toMatchObject({ status: 'valid', last_refresh_outcome: 'success', consecutive_failures: 0 });
  });
});
