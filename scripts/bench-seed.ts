/**
 * Seeding helpers of `npm run bench` (scripts/bench.ts). DEVELOPMENT/BENCHMARK ONLY.
 *
 * - Users are pushed into the dev upstream's `users` array and signed in through the real Wallet
 *   flow (authorization request with PKCE at the RSA, the dev upstream's login form, the RSA's
 *   callback, the code exchange), so their accounts and upstream tokens are real ones.
 * - Aliases are inserted with SQL (users pushed into the dev upstream own no upstream accounts);
 *   delegations go through the real API, each owner with their own token.
 * - The token-health accounts are inserted in bulk with generate_series: synthetic, encrypted-looking
 *   token columns that are never decrypted nor sent upstream (proactive refresh is off in the bench).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { DevAccount, DevUpstream, DevUser } from '@rsa/dev-upstream';

export interface BenchWallet {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export interface BenchUser {
  upstream: DevUser;
  /** RSA access token */
  token: string;
  /** RSA subject = RSA account id */
  accountId: string;
}

export const RESOURCE_SCOPES = 'openid profile email offline_access fpx_rot delegations';

/** Adds a user to the dev upstream (password = user name), optionally with upstream accounts. */
export function addBenchUser(upstream: DevUpstream, prefix: string, accounts?: DevAccount[]): DevUser {
  const id = `${prefix}-${randomBytes(5).toString('hex')}`;
  const user: DevUser = {
    sub: `${id}-sub`,
    username: id,
    password: id,
    name: `Bench ${id}`,
    given_name: 'Bench',
    family_name: id,
    email: `${id}@bench.example`,
    email_verified: true,
  };
  upstream.users.push(user);
  if (accounts) upstream.setAccountsOf(user.sub, accounts);
  return user;
}

/** The Wallet flow as a browser would drive it; returns the RSA access token and subject. */
export async function walletLogin(issuer: string, wallet: BenchWallet, user: DevUser, scope = RESOURCE_SCOPES): Promise<BenchUser> {
  const cookies = new Map<string, string>();
  const request = async (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (cookies.size) headers.set('cookie', [...cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0/i.test(a) || /^\s*expires=Thu, 01 Jan 1970/i.test(a));
      if (expired || value === '') cookies.delete(name);
      else cookies.set(name, value);
    }
    return res;
  };
  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL(`${issuer}/oidc/auth`);
  authorize.search = new URLSearchParams({
    client_id: wallet.clientId,
    response_type: 'code',
    scope,
    redirect_uri: wallet.redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    state: randomBytes(8).toString('hex'),
    prompt: 'consent',
  }).toString();

  let next: { url: string; init?: RequestInit } = { url: authorize.href };
  let code: string | null = null;
  for (let hop = 0; hop < 30 && !code; hop++) {
    const res = await request(next.url, next.init);
    const location = res.headers.get('location');
    if (location) {
      await res.arrayBuffer();
      const target = new URL(location, next.url);
      if (target.href.startsWith(wallet.redirectUri)) {
        code = target.searchParams.get('code');
        if (!code) throw new Error(`login of ${user.username} failed: ${target.searchParams.get('error')} ${target.searchParams.get('error_description') ?? ''}`);
        break;
      }
      next = { url: target.href };
      continue;
    }
    const body = await res.text();
    const form = /<form method="post" action="([^"]*\/login)"/.exec(body);
    if (!form) throw new Error(`login of ${user.username}: unexpected page at ${next.url} (HTTP ${res.status}): ${body.slice(0, 200)}`);
    next = {
      url: new URL(form[1].replace(/&amp;/g, '&'), next.url).href,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: user.username, password: user.password }).toString(),
      },
    };
  }
  if (!code) throw new Error(`login of ${user.username} did not finish`);
  const res = await fetch(`${issuer}/oidc/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${wallet.clientId}:${wallet.clientSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: wallet.redirectUri, code_verifier: verifier }).toString(),
  });
  const tokens = (await res.json()) as { access_token?: string; id_token?: string; error?: string };
  if (!tokens.access_token || !tokens.id_token) throw new Error(`token exchange for ${user.username} failed: ${tokens.error ?? res.status}`);
  const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString('utf8')) as { sub: string };
  return { upstream: user, token: tokens.access_token, accountId: claims.sub };
}

/** Signs users in, `batchSize` at a time. */
export async function loginMany(issuer: string, wallet: BenchWallet, users: DevUser[], batchSize = 8, scope = RESOURCE_SCOPES): Promise<BenchUser[]> {
  const result: BenchUser[] = [];
  for (let i = 0; i < users.length; i += batchSize) {
    result.push(...(await Promise.all(users.slice(i, i + batchSize).map((u) => walletLogin(issuer, wallet, u, scope)))));
  }
  return result;
}

/**
 * `perOwner` aliases of the `account` generic resource (scopes read, write) per owner, with SQL.
 * Returns the alias ids per owner, in creation order.
 */
export async function insertAliases(dataSource: DataSource, ownerIds: string[], perOwner: number): Promise<Map<string, string[]>> {
  const rows: { id: string; owner_account_id: string }[] = await dataSource.query(
    `WITH kind AS (SELECT id FROM generic_resource WHERE identifier = 'account'),
          created AS (
            INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status, last_seen_at)
            SELECT o.owner, kind.id, 'bench-' || o.owner || '-' || lpad(n::text, 4, '0'), 'Account ' || n, 'active', now()
              FROM unnest($1::uuid[]) AS o(owner), generate_series(1, $2::int) AS n, kind
            RETURNING id, owner_account_id, external_id),
          scoped AS (
            INSERT INTO generic_resource_alias_scope (alias_id, scope)
            SELECT created.id, s.scope FROM created, unnest(ARRAY['read', 'write']) AS s(scope)
            RETURNING alias_id)
     SELECT id, owner_account_id FROM created ORDER BY external_id`,
    [ownerIds, perOwner],
  );
  const byOwner = new Map<string, string[]>(ownerIds.map((id) => [id, []]));
  for (const row of rows) byOwner.get(row.owner_account_id)!.push(row.id);
  return byOwner;
}

/** Delegates `aliases` of `owner` to `delegate` (scope read) through the real API. */
export async function delegate(issuer: string, owner: BenchUser, aliases: string[], to: BenchUser, scopes = ['read']): Promise<void> {
  for (let i = 0; i < aliases.length; i += 100) {
    const res = await fetch(`${issuer}/delegations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ aliases: aliases.slice(i, i + 100), scopes, delegate: { sub: to.accountId } }),
    });
    if (res.status !== 201) throw new Error(`delegation failed: HTTP ${res.status} ${await res.text()}`);
  }
}

/**
 * `count` accounts of `provider` with synthetic upstream tokens, in one statement each (generate_series).
 * The token columns look like the vault's ciphertexts (`v1.<kid>.<iv>.<ct>.<tag>`) but decrypt with no
 * key: they are only ever listed by the token-health endpoints. Statuses and expiries are mixed
 * (mostly valid, some refreshable, failing, reauth_required) so filters and the CASE see real variety.
 */
export async function insertBulkAccounts(dataSource: DataSource, provider: string, count: number): Promise<void> {
  const prefix = `bench-bulk-${randomBytes(4).toString('hex')}`;
  await dataSource.query(
    `INSERT INTO account (provider, sub, email, email_verified, name, given_name, family_name, first_login_at, last_login_at)
     SELECT $1, $2 || '-' || n, $2 || '-' || n || '@bulk.bench.example', true, 'Bulk ' || n, 'Bulk', n::text,
            now() - interval '30 days', now() - (n % 1000) * interval '1 minute'
       FROM generate_series(1, $3::int) AS n`,
    [provider, prefix, count],
  );
  const fake = (len: number) => `substr(encode(sha256((random()::text || n::text)::bytea), 'base64'), 1, ${len})`;
  await dataSource.query(
    `INSERT INTO upstream_token (account_id, provider, access_token_enc, refresh_token_enc, scope, access_token_expires_at,
                                 refresh_token_expires_at, status, last_refresh_at, last_refresh_outcome, consecutive_failures)
     SELECT a.id, $1,
            'v1.bench-synthetic.' || ${fake(16)} || '.' || ${fake(43)} || ${fake(43)} || '.' || ${fake(22)},
            CASE WHEN n % 10 = 0 THEN NULL ELSE 'v1.bench-synthetic.' || ${fake(16)} || '.' || ${fake(43)} || '.' || ${fake(22)} END,
            'openid profile email offline_access',
            now() + ((n % 120) - 30) * interval '1 minute',
            CASE WHEN n % 10 = 0 THEN NULL ELSE now() + interval '14 days' END,
            CASE WHEN n % 50 = 0 THEN 'reauth_required' WHEN n % 37 = 0 THEN 'refresh_failing' ELSE 'valid' END,
            CASE WHEN n % 3 = 0 THEN now() - interval '1 hour' END,
            CASE WHEN n % 37 = 0 THEN 'upstream_error' WHEN n % 3 = 0 THEN 'success' END,
            CASE WHEN n % 37 = 0 THEN 2 ELSE 0 END
       FROM (SELECT id, row_number() OVER () AS n FROM account WHERE provider = $1 AND sub LIKE $2 || '-%') AS a`,
    [provider, prefix],
  );
  await dataSource.query('ANALYZE account');
  await dataSource.query('ANALYZE upstream_token');
}
