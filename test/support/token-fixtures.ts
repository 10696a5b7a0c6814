import type { DevUser } from '@rsa/dev-upstream';
import { columnAad, TokenCipher } from '@rsa/auth';
import type { TestStack } from './stack';
import { randomId } from './test-config';
import { loginAs } from './wallet';

/**
 * Fixtures for token-health and proactive-refresh suites: owners logged in through the real Wallet
 * flow (so their upstream tokens come from the dev upstream), and delegations of theirs inserted in
 * SQL (these suites test what happens to tokens, not the delegation rules).
 */
export interface TokenOwner {
  user: DevUser;
  /** The RSA account id (= the `sub` of RSA tokens). */
  accountId: string;
}

/** The upstream_token row as stored (snake_case, straight from SQL). */
export interface UpstreamTokenRow {
  id: string;
  account_id: string;
  access_token_enc: string;
  refresh_token_enc: string | null;
  id_token_enc: string | null;
  access_token_expires_at: Date;
  refresh_token_expires_at: Date | null;
  status: string;
  last_refresh_at: Date | null;
  last_refresh_outcome: string | null;
  consecutive_failures: number;
  refresh_lease_until: Date | null;
  refresh_lease_owner: string | null;
  version: number;
}

export function newUpstreamUser(stack: TestStack, label: string): DevUser {
  const id = randomId(label);
  const user: DevUser = {
    sub: `${id}-sub`,
    username: id,
    password: id,
    name: `Owner ${id}`,
    given_name: 'Owner',
    family_name: id,
    email: `${id}@tokens.example`,
    email_verified: true,
  };
  stack.upstream.users.push(user);
  return user;
}

/** New upstream users logged in at the RSA (a few at a time). */
export async function loginOwners(stack: TestStack, label: string, count: number): Promise<TokenOwner[]> {
  const owners: TokenOwner[] = [];
  for (let i = 0; i < count; i += 4) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(4, count - i) }, async () => {
        const user = newUpstreamUser(stack, label);
        const session = await loginAs(stack, user.username, { password: user.password });
        return { user, accountId: session.tokens.claims()!.sub };
      }),
    );
    owners.push(...batch);
  }
  return owners;
}

/**
 * A delegation of a new alias of `ownerId` (the `account` generic resource) to `delegateId`, inserted
 * in SQL. Returns the delegation id.
 */
export async function insertDelegation(
  stack: TestStack,
  ownerId: string,
  delegateId: string,
  options: { status?: 'active' | 'revoked' | 'expired'; expiresAt?: Date | null } = {},
): Promise<string> {
  const [row] = await stack.dataSource.query<{ id: string }[]>(
    `WITH kind AS (SELECT id FROM generic_resource WHERE identifier = 'account'),
          alias AS (
            INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status, last_seen_at)
            SELECT $1, kind.id, $3::text, 'Account ' || $3::text, 'active', now() FROM kind
            RETURNING id)
     INSERT INTO generic_resource_authorization (alias_id, owner_account_id, delegate_account_id, status, expires_at, created_by)
     SELECT alias.id, $1, $2, $4, $5, 'test' FROM alias
     RETURNING id`,
    [ownerId, delegateId, randomId('ext'), options.status ?? 'active', options.expiresAt ?? null],
  );
  if (!row) throw new Error('the `account` generic resource is missing (startStack upserts it)');
  return row.id;
}

export async function tokenRow(stack: TestStack, accountId: string): Promise<UpstreamTokenRow> {
  const rows = await stack.dataSource.query<UpstreamTokenRow[]>('SELECT * FROM upstream_token WHERE account_id = $1', [accountId]);
  if (rows.length !== 1) throw new Error(`expected one upstream_token row for ${accountId}, found ${rows.length}`);
  return rows[0];
}

/** Moves the access token's expiry (seconds from now; negative: already expired). */
export async function setAccessTokenExpiry(stack: TestStack, accountIds: string[], secondsFromNow: number): Promise<void> {
  await stack.dataSource.query(
    `UPDATE upstream_token SET access_token_expires_at = now() + make_interval(secs => $2) WHERE account_id = ANY($1::uuid[])`,
    [accountIds, secondsFromNow],
  );
}

export function decryptColumn(stack: TestStack, row: UpstreamTokenRow, column: 'access_token' | 'refresh_token' | 'id_token'): string {
  const value = row[`${column}_enc`];
  if (!value) throw new Error(`${column}_enc is empty`);
  return stack.api.get(TokenCipher).decrypt(value, columnAad('upstream_token', column, row.account_id));
}
