import type { DataSource } from 'typeorm';
import type { DevAccount, DevUser } from '@rsa/dev-upstream';
import { bearer } from './http';
import type { TestStack } from './stack';
import { randomId } from './test-config';
import { loginAs, type WalletSession } from './wallet';

/** Scopes of a Wallet session that may list, use and delegate resources. */
export const RM_SCOPE = 'openid profile email offline_access fpx_rot delegations';

/** A user of the Resource Management API: upstream identity, Wallet session, RSA sub and a small HTTP client. */
export interface RmUser {
  upstream: DevUser;
  session: WalletSession;
  /** The RSA subject (= RSA account id). */
  sub: string;
  token: string;
  get(path: string, init?: RequestInit): Promise<Response>;
  send(method: string, path: string, body?: unknown): Promise<Response>;
}

/**
 * Pushes a user with random sub, user name and email into the stack's dev upstream (unique even on a
 * database other test files share), optionally with upstream accounts of its own.
 */
export function addRmUpstreamUser(
  stack: TestStack,
  prefix: string,
  options: { email?: string; emailVerified?: boolean; accounts?: DevAccount[] } = {},
): DevUser {
  const id = randomId(prefix);
  const user: DevUser = {
    sub: `${id}-sub`,
    username: id,
    password: id,
    name: `Name ${id}`,
    given_name: 'Name',
    family_name: id,
    email: options.email ?? `${id}@rm.example`,
    email_verified: options.emailVerified ?? true,
  };
  stack.upstream.users.push(user);
  if (options.accounts) stack.upstream.setAccountsOf(user.sub, options.accounts);
  return user;
}

/** Logs an upstream user in through the Wallet flow (scopes RM_SCOPE unless given). */
export async function rmLogin(stack: TestStack, upstream: DevUser, scope = RM_SCOPE): Promise<RmUser> {
  const session = await loginAs(stack, upstream.username, { scope, password: upstream.password });
  const token = session.tokens.access_token;
  const get = (path: string, init: RequestInit = {}) => fetch(`${stack.issuer}${path}`, bearer(token, init));
  return {
    upstream,
    session,
    sub: session.tokens.claims()!.sub,
    token,
    get,
    send: (method, path, body) =>
      get(path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) }),
  };
}

/** addRmUpstreamUser then rmLogin. */
export async function newRmUser(
  stack: TestStack,
  prefix: string,
  options: { email?: string; emailVerified?: boolean; accounts?: DevAccount[] } = {},
): Promise<RmUser> {
  return rmLogin(stack, addRmUpstreamUser(stack, prefix, options));
}

/** Upstream accounts with random ids (unique per test). */
export function devAccounts(count: number, label = 'acct'): DevAccount[] {
  return Array.from({ length: count }, (_, i) => ({ id: randomId(`${label}${i + 1}`), name: `${label} ${i + 1}`, currency: 'EUR', balance: 100 + i }));
}

/** The fields an error body names: the validation pipe's `fields[].field` or a domain error's `details.field`. */
export function errorFields(body: { fields?: { field: string }[]; details?: { field?: string } }): string[] {
  return [...(body.fields ?? []).map((f) => f.field), ...(body.details?.field ? [body.details.field] : [])];
}

/** Audit actions recorded for a target, oldest first. */
export async function auditActionsFor(dataSource: DataSource, targetId: string): Promise<string[]> {
  const rows: { action: string }[] = await dataSource.query(`SELECT action FROM audit_event WHERE target_id = $1 ORDER BY occurred_at, id`, [targetId]);
  return rows.map((r) => r.action);
}
