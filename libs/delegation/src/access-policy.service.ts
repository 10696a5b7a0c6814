import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { RevisionCache } from '@rsa/database';

/** A resource as the caller may see it. */
export interface AccessibleResource {
  id: string;
  type: string;
  name: string;
  /** Owner: all alias scopes. Delegate: granted scopes that the alias still has. */
  scopes: string[];
}

export interface DelegatedResource extends AccessibleResource {
  ownerAccountId: string;
  ownerName: string | null;
  ownerEmail: string | null;
  /** The owner's `sub` at the upstream (to check the upstream userinfo answers for the right user). */
  ownerUpstreamSub: string;
  authorizationId: string;
  expiresAt: Date | null;
}

/** What the proxy needs to reach one resource, and with which rights. */
export interface ResolvedAccess extends AccessibleResource {
  role: 'owner' | 'delegate';
  ownerAccountId: string;
  externalId: string;
  pathTemplate: string;
  /** When the delegation ends (null: never, or the caller is the owner). */
  expiresAt: Date | null;
}

export interface ListOptions {
  type?: string;
  owner?: string;
  /** Keyset: aliases with an id greater than this. */
  afterId?: string;
  limit: number;
  /**
   * The data revision of the request (RsaPrincipal.revision). With it the answer is kept under that
   * revision (and until the first delegation in it expires) and reused while it is current.
   */
  revision?: string;
}

/**
 * The access decisions of the Resource Management API, each in one SQL statement whatever the number
 * of delegations. A delegation counts only while it is `active`, unexpired (checked against the
 * database clock at read time), bound to the caller, and its alias is still active and still owned
 * by the delegating owner; its effective scopes are the granted scopes the alias still carries.
 * Delegations are never transitive: only owners' aliases are delegated.
 */
@Injectable()
export class AccessPolicy {
  /**
   * Answers of owned/delegated/allDelegated kept under the data revision they were read at: any
   * change to a delegation, alias, scope, resource type or owner account moves the revision (see
   * DataRevision), so a cached answer is as fresh as a new query. At most 20,000 answers and 250,000
   * resources in all. Cached arrays are frozen and shared: callers copy, never mutate.
   */
  private readonly answers = new RevisionCache<readonly unknown[]>({ maxEntries: 20_000, maxWeight: 250_000, weigh: (rows) => rows.length || 1 });

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  private async remembered<T>(key: unknown[], revision: string | undefined, load: () => Promise<T[]>, expiryOf?: (row: T) => Date | null): Promise<readonly T[]> {
    if (revision === undefined) return load();
    const answer = await this.answers.getOrLoad(JSON.stringify(key), revision, async () => {
      const rows = Object.freeze(await load());
      // A delegation that expires leaves the answer at that moment, revision or not.
      let validUntil = Infinity;
      if (expiryOf) for (const row of rows) validUntil = Math.min(validUntil, expiryOf(row)?.getTime() ?? Infinity);
      return { value: rows, validUntil };
    });
    return answer as readonly T[];
  }

  owned(callerId: string, options: ListOptions): Promise<readonly AccessibleResource[]> {
    return this.remembered(['owned', callerId, options.type ?? null, options.afterId ?? null, options.limit], options.revision, () =>
      this.queryOwned(callerId, options),
    );
  }

  /** One page of the resources delegated to the caller, in alias id order (see DELEGATED_PAGE). */
  delegated(callerId: string, options: ListOptions): Promise<readonly DelegatedResource[]> {
    return this.remembered(
      ['delegated', callerId, options.type ?? null, options.owner ?? null, options.afterId ?? null, options.limit],
      options.revision,
      () => this.queryDelegated(callerId, options),
      (row) => row.expiresAt,
    );
  }

  /** Every resource delegated to the caller (for the `related` claim), ordered by owner. */
  allDelegated(callerId: string, options: { revision?: string } = {}): Promise<readonly DelegatedResource[]> {
    return this.remembered(['all', callerId], options.revision, () => this.queryAllDelegated(callerId), (row) => row.expiresAt);
  }

  private async queryOwned(callerId: string, options: ListOptions): Promise<AccessibleResource[]> {
    const rows: RawResource[] = await this.dataSource.query(
      `SELECT al.id, gr.identifier AS type, al.display_name AS name,
              COALESCE(array_agg(s.scope ORDER BY s.scope) FILTER (WHERE s.scope IS NOT NULL), '{}') AS scopes
         FROM generic_resource_alias al
         JOIN generic_resource gr ON gr.id = al.generic_resource_id
         LEFT JOIN generic_resource_alias_scope s ON s.alias_id = al.id
        WHERE al.owner_account_id = $1 AND al.status = 'active'
          AND ($2::text IS NULL OR gr.identifier = $2) AND ($3::uuid IS NULL OR al.id > $3)
        GROUP BY al.id, gr.identifier
        ORDER BY al.id
        LIMIT $4`,
      [callerId, options.type ?? null, options.afterId ?? null, options.limit],
    );
    return rows.map(toResource);
  }

  private async queryDelegated(callerId: string, options: ListOptions): Promise<DelegatedResource[]> {
    const rows: RawDelegated[] = await this.dataSource.query(DELEGATED_PAGE, [
      callerId,
      options.type ?? null,
      options.owner ?? null,
      options.afterId ?? null,
      options.limit,
    ]);
    return rows.map(toDelegated);
  }

  private async queryAllDelegated(callerId: string): Promise<DelegatedResource[]> {
    const rows: RawDelegated[] = await this.dataSource.query(
      `${DELEGATED_SELECT}
        GROUP BY al.id, gr.identifier, a.id, o.id
       HAVING count(s.scope) > 0
        ORDER BY o.id, al.id`,
      [callerId],
    );
    return rows.map(toDelegated);
  }

  /** The caller's access to one alias, or null — the same null whether it does not exist or is not theirs. */
  async resolve(callerId: string, aliasId: string, options: { revision?: string } = {}): Promise<ResolvedAccess | null> {
    const [access] = await this.remembered(['resolve', callerId, aliasId], options.revision, async () => {
      const found = await this.queryResolve(callerId, aliasId);
      return found ? [found] : [];
    }, (access) => access.expiresAt);
    return access ?? null;
  }

  private async queryResolve(callerId: string, aliasId: string): Promise<ResolvedAccess | null> {
    const rows: (RawResource & { role: 'owner' | 'delegate'; owner_account_id: string; external_id: string; path_template: string; expires_at: Date | null })[] =
      await this.dataSource.query(
        `SELECT al.id, gr.identifier AS type, al.display_name AS name, al.owner_account_id, al.external_id, gr.path_template,
                'owner' AS role, NULL::timestamptz AS expires_at,
                COALESCE((SELECT array_agg(s.scope ORDER BY s.scope) FROM generic_resource_alias_scope s WHERE s.alias_id = al.id), '{}') AS scopes
           FROM generic_resource_alias al
           JOIN generic_resource gr ON gr.id = al.generic_resource_id
          WHERE al.id = $2 AND al.status = 'active' AND al.owner_account_id = $1
         UNION ALL
         SELECT al.id, gr.identifier, al.display_name, al.owner_account_id, al.external_id, gr.path_template,
                'delegate', a.expires_at,
                COALESCE((SELECT array_agg(s.scope ORDER BY s.scope) FROM generic_resource_authorization_scope s
                           WHERE s.authorization_id = a.id
                             AND EXISTS (SELECT 1 FROM generic_resource_alias_scope x WHERE x.alias_id = al.id AND x.scope = s.scope)), '{}')
           FROM generic_resource_authorization a
           JOIN generic_resource_alias al ON al.id = a.alias_id AND al.status = 'active' AND al.owner_account_id = a.owner_account_id
           JOIN generic_resource gr ON gr.id = al.generic_resource_id
          WHERE al.id = $2 AND a.delegate_account_id = $1 AND a.status = 'active' AND (a.expires_at IS NULL OR a.expires_at > now())
          LIMIT 1`,
        [callerId, aliasId],
      );
    const row = rows[0];
    if (!row || (row.role === 'delegate' && !row.scopes.length)) return null;
    return {
      ...toResource(row),
      role: row.role,
      ownerAccountId: row.owner_account_id,
      externalId: row.external_id,
      pathTemplate: row.path_template,
      expiresAt: row.expires_at,
    };
  }
}

const DELEGATED_SELECT = `
  SELECT al.id, gr.identifier AS type, al.display_name AS name, a.id AS authorization_id, a.expires_at,
         o.id AS owner_id, o.name AS owner_name, o.email AS owner_email, o.sub AS owner_upstream_sub,
         COALESCE(array_agg(s.scope ORDER BY s.scope) FILTER (WHERE s.scope IS NOT NULL), '{}') AS scopes
    FROM generic_resource_authorization a
    JOIN generic_resource_alias al ON al.id = a.alias_id AND al.status = 'active' AND al.owner_account_id = a.owner_account_id
    JOIN generic_resource gr ON gr.id = al.generic_resource_id
    JOIN account o ON o.id = a.owner_account_id
    LEFT JOIN generic_resource_authorization_scope s ON s.authorization_id = a.id
         AND EXISTS (SELECT 1 FROM generic_resource_alias_scope x WHERE x.alias_id = al.id AND x.scope = s.scope)
   WHERE a.delegate_account_id = $1 AND a.status = 'active' AND (a.expires_at IS NULL OR a.expires_at > now())`;

/**
 * AccessPolicy.delegated — $1 caller, $2 type identifier, $3 owner account id, $4 keyset (alias id),
 * $5 limit — with the same rules as DELEGATED_SELECT, but the page is chosen before anything is
 * aggregated: the inner query walks the caller's active delegations in alias id order
 * (ix_authz_delegate_status_alias) and stops after $5 that count; only those get their scopes.
 * (At most one active delegation per alias and delegate — uq_authz_active_alias_delegate — so the
 * alias id alone is a keyset.)
 *
 * A delegation counts when, besides being active and unexpired, it has an effective scope: a granted
 * scope that the alias still carries, the alias being still active and still owned by the delegating
 * owner. That test is the EXISTS, applied before the LIMIT, so a delegation whose effective scopes
 * are empty never takes a page slot. It keeps the alias's status and owner checks on purpose, and
 * correlates through a JOIN condition so that PostgreSQL runs it as a per-row filter instead of
 * turning it into a join: as a join condition, `al.owner_account_id = a.owner_account_id` next to
 * `al.id = a.alias_id` (correlated, but the planner multiplies their selectivities) makes it expect a
 * handful of rows, and it then reads and sorts every delegation of the caller instead of stopping
 * at the page.
 */
const DELEGATED_PAGE = `
  SELECT p.id, p.type, p.name, p.authorization_id, p.expires_at, p.owner_id, p.owner_name, p.owner_email, p.owner_upstream_sub,
         COALESCE((SELECT array_agg(s.scope ORDER BY s.scope)
                     FROM generic_resource_authorization_scope s
                    WHERE s.authorization_id = p.authorization_id
                      AND EXISTS (SELECT 1 FROM generic_resource_alias_scope x WHERE x.alias_id = p.id AND x.scope = s.scope)), '{}') AS scopes
    FROM (SELECT al.id, gr.identifier AS type, al.display_name AS name, a.id AS authorization_id, a.expires_at,
                 o.id AS owner_id, o.name AS owner_name, o.email AS owner_email, o.sub AS owner_upstream_sub
            FROM generic_resource_authorization a
            JOIN generic_resource_alias al ON al.id = a.alias_id
            JOIN generic_resource gr ON gr.id = al.generic_resource_id
            JOIN account o ON o.id = a.owner_account_id
           WHERE a.delegate_account_id = $1 AND a.status = 'active' AND (a.expires_at IS NULL OR a.expires_at > now())
             AND EXISTS (SELECT 1
                           FROM generic_resource_alias live
                           JOIN generic_resource_alias_scope x ON x.alias_id = live.id
                           JOIN generic_resource_authorization_scope s ON s.authorization_id = a.id AND s.scope = x.scope
                          WHERE live.id = a.alias_id AND live.status = 'active' AND live.owner_account_id = a.owner_account_id)
             AND ($2::text IS NULL OR gr.identifier = $2) AND ($3::uuid IS NULL OR a.owner_account_id = $3) AND ($4::uuid IS NULL OR a.alias_id > $4)
           ORDER BY a.alias_id
           LIMIT $5) p
   ORDER BY p.id`;

interface RawResource {
  id: string;
  type: string;
  name: string;
  scopes: string[];
}
interface RawDelegated extends RawResource {
  authorization_id: string;
  expires_at: Date | null;
  owner_id: string;
  owner_name: string | null;
  owner_email: string | null;
  owner_upstream_sub: string;
}

const toResource = (r: RawResource): AccessibleResource => ({ id: r.id, type: r.type, name: r.name, scopes: r.scopes });
const toDelegated = (r: RawDelegated): DelegatedResource => ({
  ...toResource(r),
  ownerAccountId: r.owner_id,
  ownerName: r.owner_name,
  ownerEmail: r.owner_email,
  ownerUpstreamSub: r.owner_upstream_sub,
  authorizationId: r.authorization_id,
  expiresAt: r.expires_at,
});
