import type { DevUser } from '@rsa/dev-upstream';
import type { TestStack } from './stack';
import { randomId } from './test-config';
import { loginAs, type WalletSession } from './wallet';

/** Scopes for a Wallet session that may list, use and delegate resources. */
export const RESOURCE_SCOPES = 'openid profile email offline_access fpx_rot delegations';

/** A user pushed into the stack's dev upstream, logged in at the RSA through the Wallet flow. */
export interface ExtraUser {
  upstream: DevUser;
  session: WalletSession;
  /** The RSA subject, which is the RSA account id. */
  accountId: string;
}

/**
 * Adds a user to the stack's dev upstream (password = user name). Subjects and emails are random,
 * so they collide with nobody else's, even on a database other test files share.
 */
export function addUpstreamUser(stack: TestStack, prefix: string, options: { emailVerified?: boolean } = {}): DevUser {
  const id = randomId(prefix);
  const user: DevUser = {
    sub: `${id}-sub`,
    username: id,
    password: id,
    name: `User ${id}`,
    given_name: 'User',
    family_name: id,
    email: `${id}@users.example`,
    email_verified: options.emailVerified ?? true,
  };
  stack.upstream.users.push(user);
  return user;
}

/** Logs users in through the real Wallet flow, `batchSize` at a time. */
export async function loginUsers(
  stack: TestStack,
  users: DevUser[],
  options: { scope?: string; batchSize?: number } = {},
): Promise<ExtraUser[]> {
  const result: ExtraUser[] = [];
  const batchSize = options.batchSize ?? 8;
  for (let i = 0; i < users.length; i += batchSize) {
    const batch = await Promise.all(
      users.slice(i, i + batchSize).map(async (upstream) => {
        const session = await loginAs(stack, upstream.username, { scope: options.scope ?? RESOURCE_SCOPES, password: upstream.password });
        return { upstream, session, accountId: session.tokens.claims()!.sub };
      }),
    );
    result.push(...batch);
  }
  return result;
}

/**
 * Gives each owner `perOwner` aliases of the `account` generic resource with scopes read and write,
 * straight in the database (users pushed into the dev upstream have no upstream accounts to
 * discover). Keep discovery from running again for these owners (RESOURCE_DISCOVERY_STALE_SECONDS),
 * or it would mark the aliases gone. Returns the alias ids per owner, in creation order.
 */
export async function insertAccountAliases(stack: TestStack, ownerIds: string[], perOwner = 1): Promise<Map<string, string[]>> {
  const rows: { id: string; owner_account_id: string }[] = await stack.dataSource.query(
    `WITH kind AS (SELECT id FROM generic_resource WHERE identifier = 'account'),
          created AS (
            INSERT INTO generic_resource_alias (owner_account_id, generic_resource_id, external_id, display_name, status, last_seen_at)
            SELECT o.owner, kind.id, 'sql-' || o.owner || '-' || n, 'Account ' || n || ' of ' || o.owner, 'active', now()
              FROM unnest($1::uuid[]) WITH ORDINALITY AS o(owner, ord), generate_series(1, $2::int) AS n, kind
             ORDER BY o.ord, n
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
