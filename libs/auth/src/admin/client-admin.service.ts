import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import type { ClientMetadata, Provider } from 'oidc-provider';
import { DataSource, EntityManager } from 'typeorm';
import { decodeCursor, encodeCursor } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { AuditService, OAuthClientEntity } from '@rsa/database';
import { ClientRegistry } from '../oidc/client-registry.service';
import { OIDC_PROVIDER } from '../oidc/oidc-provider.factory';
import { AdminError, isUniqueViolation } from './admin.errors';

/** Who does an admin write (the `actor` of audit events) and the request it came with. */
export interface AdminActorContext {
  /** `admin:<8 hex of the token's digest>` */
  actor: string;
  requestId?: string;
}

export const CLIENT_GRANT_TYPES = ['authorization_code', 'refresh_token'] as const;
export const CLIENT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'none'] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

/** client_id: URL- and Basic-auth-safe (no `:`; RFC 6749 §2.3.1 form-encoding is often skipped by clients). */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$/;
/** Hosts for which a plain-http redirect URI is accepted: the loopback interface (RFC 8252 §7.3). */
export const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A client as operators see it. Never carries the secret. */
export interface ClientView {
  client_id: string;
  client_name: string | null;
  /** `confidential`: authenticates with a secret; `public`: `token_endpoint_auth_method: none` (PKCE only). */
  client_type: 'confidential' | 'public';
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  scope: string;
  token_endpoint_auth_method: string;
  has_secret: boolean;
  created_at: string;
  updated_at: string;
}

export interface ClientMetadataInput {
  client_name?: string | null;
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: string[];
  scope?: string;
  token_endpoint_auth_method?: string;
}

export interface CreateClientInput extends ClientMetadataInput {
  /** Generated (a UUID) when absent. */
  client_id?: string;
  redirect_uris: string[];
  scope: string;
}

/** What oidc-provider reads from `oauth_client.metadata` (the secret is kept apart, encrypted). */
interface StoredMetadata {
  client_name?: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  scope: string;
  token_endpoint_auth_method: ClientAuthMethod;
}

/**
 * Why a redirect URI (or post-logout redirect URI) is refused, or undefined when it is acceptable:
 * absolute, no fragment (RFC 6749 §3.1.2), no credentials, and `https` — except plain `http` to the
 * loopback interface, for Wallets run on a developer's machine (RFC 8252 §7.3: the redirect never
 * leaves the host). Custom schemes are refused: the RSA's clients are servers, not native apps.
 */
export function redirectUriProblem(value: string): string | undefined {
  if (typeof value !== 'string' || !value.length) return 'must be a non-empty string';
  if (value.length > 2000) return 'must be at most 2000 characters';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (value.includes('#')) return 'must not contain a fragment';
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:') {
    return LOOPBACK_HOSTS.has(url.hostname) ? undefined : 'must use https (plain http only for localhost, 127.0.0.1 or [::1])';
  }
  return 'must use https (plain http only for localhost, 127.0.0.1 or [::1])';
}

const uniq = <T>(values: T[]) => [...new Set(values)];

/**
 * OAuth clients of the RSA, for the admin API: list, read, register, change, rotate the secret and
 * delete. Metadata is checked by our rules (allowed grant types, scopes, redirect URIs) and then by
 * oidc-provider's own client schema, so nothing is stored that the OP would refuse to load. Secrets
 * are generated here (32 random bytes), returned once, stored encrypted and never read back out.
 */
@Injectable()
export class ClientAdminService {
  private readonly allowedScopes: Set<string>;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(OIDC_PROVIDER) private readonly provider: Provider,
    private readonly registry: ClientRegistry,
    private readonly audit: AuditService,
    config: RsaConfig,
  ) {
    this.allowedScopes = new Set(['openid', 'profile', 'email', 'offline_access', config.scopes.related, config.scopes.delegations]);
  }

  /** The scopes a client may be allowed (the RSA's scopes). */
  get supportedScopes(): string[] {
    return [...this.allowedScopes];
  }

  async list(cursor: string | undefined, limit: number): Promise<{ items: ClientView[]; next_cursor: string | null }> {
    const after = decodeCursor<{ id: string }>(cursor, ['id']);
    const qb = this.dataSource.getRepository(OAuthClientEntity).createQueryBuilder('c').orderBy('c.clientId', 'ASC').take(limit + 1);
    if (after) qb.where('c.clientId > :after', { after: after.id });
    const rows = await qb.getMany();
    const page = rows.slice(0, limit);
    return {
      items: page.map((row) => this.view(row)),
      next_cursor: rows.length > limit ? encodeCursor({ id: page[page.length - 1].clientId }) : null,
    };
  }

  async get(clientId: string): Promise<ClientView> {
    const row = await this.dataSource.getRepository(OAuthClientEntity).findOne({ where: { clientId } });
    if (!row) throw AdminError.notFound('client');
    return this.view(row);
  }

  /** Registers a client. A confidential client's generated secret is in the result, and nowhere else ever again. */
  async create(input: CreateClientInput, context: AdminActorContext): Promise<ClientView & { client_secret?: string }> {
    const clientId = input.client_id ?? randomUUID();
    if (!CLIENT_ID_PATTERN.test(clientId)) {
      throw AdminError.invalid('client_id', 'client_id must be 1–128 characters of A–Z a–z 0–9 . _ ~ - and start with a letter or digit');
    }
    const metadata = this.normalize({
      client_name: input.client_name ?? undefined,
      redirect_uris: input.redirect_uris,
      post_logout_redirect_uris: input.post_logout_redirect_uris ?? [],
      grant_types: input.grant_types ?? [...CLIENT_GRANT_TYPES],
      response_types: ['code'],
      scope: input.scope,
      token_endpoint_auth_method: (input.token_endpoint_auth_method ?? 'client_secret_basic') as ClientAuthMethod,
    });
    const secret = metadata.token_endpoint_auth_method === 'none' ? undefined : generateSecret();
    await this.validateWithProvider(clientId, metadata, secret);
    try {
      const row = await this.dataSource.transaction(async (manager) => {
        await manager.insert(OAuthClientEntity, {
          clientId,
          name: metadata.client_name ?? null,
          metadata: metadata as unknown as OAuthClientEntity['metadata'] & object,
          clientSecretEnc: secret ? this.registry.encryptSecret(clientId, secret) : null,
        });
        await this.record(manager, context, 'client.created', clientId, { ...auditMetadata(metadata), secret_generated: Boolean(secret) });
        return manager.findOneOrFail(OAuthClientEntity, { where: { clientId } });
      });
      return { ...this.view(row), ...(secret ? { client_secret: secret } : {}) };
    } catch (error) {
      if (isUniqueViolation(error)) throw AdminError.conflict(`a client with client_id "${clientId}" already exists`, { field: 'client_id' });
      throw error;
    }
  }

  /**
   * Changes metadata (the fields given). A client cannot switch between confidential and public:
   * that would mint or silently drop its secret, so register a new client instead.
   */
  async update(clientId: string, patch: ClientMetadataInput, context: AdminActorContext): Promise<ClientView> {
    const row = await this.dataSource.transaction(async (manager) => {
      const current = await this.lock(manager, clientId);
      const before = this.storedMetadata(current);
      const merged = this.normalize({
        ...before,
        ...definedOnly({
          redirect_uris: patch.redirect_uris,
          post_logout_redirect_uris: patch.post_logout_redirect_uris,
          grant_types: patch.grant_types,
          scope: patch.scope,
          token_endpoint_auth_method: patch.token_endpoint_auth_method as ClientAuthMethod | undefined,
        }),
        client_name: patch.client_name === undefined ? before.client_name : (patch.client_name ?? undefined),
      });
      if ((before.token_endpoint_auth_method === 'none') !== (merged.token_endpoint_auth_method === 'none')) {
        throw AdminError.invalid(
          'token_endpoint_auth_method',
          'a client cannot switch between public (none) and confidential; register a new client instead',
        );
      }
      // The stored secret is not needed to check the metadata; a placeholder satisfies the schema.
      await this.validateWithProvider(clientId, merged, merged.token_endpoint_auth_method === 'none' ? undefined : 'placeholder');
      const keys = [...new Set([...Object.keys(before), ...Object.keys(merged)])] as (keyof StoredMetadata)[];
      const changed = keys.filter((key) => JSON.stringify(merged[key]) !== JSON.stringify(before[key]));
      await manager.update(
        OAuthClientEntity,
        { clientId },
        { name: merged.client_name ?? null, metadata: merged as unknown as OAuthClientEntity['metadata'] & object },
      );
      await this.record(manager, context, 'client.updated', clientId, {
        changed,
        ...Object.fromEntries(changed.map((key) => [key, merged[key] ?? null])),
      });
      return manager.findOneOrFail(OAuthClientEntity, { where: { clientId } });
    });
    return this.view(row);
  }

  /**
   * A new generated secret, returned once; the old one stops working at once (oidc-provider re-reads
   * the client on every use). Tokens already issued stay valid: they are bound to the client, not to
   * its secret — delete the client to cut them off.
   */
  async rotateSecret(clientId: string, context: AdminActorContext): Promise<{ client_id: string; client_secret: string }> {
    const secret = generateSecret();
    await this.dataSource.transaction(async (manager) => {
      const row = await this.lock(manager, clientId);
      if (this.storedMetadata(row).token_endpoint_auth_method === 'none') {
        throw AdminError.conflict('a public client (token_endpoint_auth_method none) has no secret to rotate');
      }
      await manager.update(OAuthClientEntity, { clientId }, { clientSecretEnc: this.registry.encryptSecret(clientId, secret) });
      await this.record(manager, context, 'client.secret_rotated', clientId, {});
    });
    return { client_id: clientId, client_secret: secret };
  }

  /**
   * Deletes the client and, in the same transaction, everything the OP stored for it: grants, access
   * and refresh tokens, authorization codes and pending login interactions. Its tokens stop working
   * at once (the bearer check also refuses tokens whose client is gone, as a second line).
   */
  async delete(clientId: string, context: AdminActorContext): Promise<{ revoked: Record<string, number> }> {
    return this.dataSource.transaction(async (manager) => {
      const row = await this.lock(manager, clientId);
      const rows: { model: string; n: number }[] = await manager.query(
        `WITH gone AS (
           DELETE FROM oidc_payload
            WHERE payload->>'clientId' = $1
               OR (model = 'Interaction' AND payload->'params'->>'client_id' = $1)
           RETURNING model)
         SELECT model, count(*)::int AS n FROM gone GROUP BY model ORDER BY model`,
        [clientId],
      );
      const revoked = Object.fromEntries(rows.map((r) => [r.model, Number(r.n)]));
      await manager.delete(OAuthClientEntity, { clientId });
      await this.record(manager, context, 'client.deleted', clientId, { client_name: row.name, revoked });
      return { revoked };
    });
  }

  private async lock(manager: EntityManager, clientId: string): Promise<OAuthClientEntity> {
    const row = await manager.findOne(OAuthClientEntity, { where: { clientId }, lock: { mode: 'pessimistic_write' } });
    if (!row) throw AdminError.notFound('client');
    return row;
  }

  /** Our rules, field by field, before oidc-provider's schema. */
  private normalize(metadata: StoredMetadata): StoredMetadata {
    const redirectUris = uniq(metadata.redirect_uris ?? []);
    if (!redirectUris.length) throw AdminError.invalid('redirect_uris', 'redirect_uris must contain at least one URI');
    for (const [field, uris] of [
      ['redirect_uris', redirectUris],
      ['post_logout_redirect_uris', metadata.post_logout_redirect_uris ?? []],
    ] as const) {
      for (const uri of uris) {
        const problem = redirectUriProblem(uri);
        if (problem) throw AdminError.invalid(field, `${field}: "${String(uri).slice(0, 200)}" ${problem}`);
      }
    }
    const grantTypes = uniq(metadata.grant_types ?? []);
    const badGrant = grantTypes.find((g) => !(CLIENT_GRANT_TYPES as readonly string[]).includes(g));
    if (badGrant !== undefined) throw AdminError.invalid('grant_types', `grant_types: "${badGrant}" is not one of ${CLIENT_GRANT_TYPES.join(', ')}`);
    if (!grantTypes.includes('authorization_code')) throw AdminError.invalid('grant_types', 'grant_types must include authorization_code');
    const scopes = uniq((metadata.scope ?? '').split(' ').filter(Boolean));
    if (!scopes.length) throw AdminError.invalid('scope', 'scope must name at least one scope');
    const badScope = scopes.find((s) => !this.allowedScopes.has(s));
    if (badScope !== undefined) {
      throw AdminError.invalid('scope', `scope: "${badScope.slice(0, 64)}" is not a scope of the RSA (${this.supportedScopes.join(' ')})`);
    }
    if (!(CLIENT_AUTH_METHODS as readonly string[]).includes(metadata.token_endpoint_auth_method)) {
      throw AdminError.invalid('token_endpoint_auth_method', `token_endpoint_auth_method must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
    }
    return {
      ...(metadata.client_name ? { client_name: metadata.client_name } : {}),
      redirect_uris: redirectUris,
      post_logout_redirect_uris: uniq(metadata.post_logout_redirect_uris ?? []),
      grant_types: grantTypes,
      response_types: ['code'],
      scope: scopes.join(' '),
      token_endpoint_auth_method: metadata.token_endpoint_auth_method,
    };
  }

  /** oidc-provider's own client schema: what the OP would refuse to load is refused here, field named. */
  private async validateWithProvider(clientId: string, metadata: StoredMetadata, secret: string | undefined): Promise<void> {
    try {
      await this.provider.Client.validate({ ...metadata, client_id: clientId, ...(secret ? { client_secret: secret } : {}) } as ClientMetadata);
    } catch (error) {
      const description = (error as { error_description?: unknown }).error_description;
      if (typeof description !== 'string') throw error;
      const field = /^([a-z_]+)\b/.exec(description)?.[1] ?? 'metadata';
      throw AdminError.invalid(field, description);
    }
  }

  private storedMetadata(row: OAuthClientEntity): StoredMetadata {
    const md = row.metadata as Partial<StoredMetadata> & Record<string, unknown>;
    const method = (md.token_endpoint_auth_method ?? (row.clientSecretEnc ? 'client_secret_basic' : 'none')) as ClientAuthMethod;
    return {
      ...((md.client_name ?? row.name) ? { client_name: (md.client_name ?? row.name) as string } : {}),
      redirect_uris: Array.isArray(md.redirect_uris) ? md.redirect_uris : [],
      post_logout_redirect_uris: Array.isArray(md.post_logout_redirect_uris) ? md.post_logout_redirect_uris : [],
      grant_types: Array.isArray(md.grant_types) ? md.grant_types : ['authorization_code'],
      response_types: Array.isArray(md.response_types) ? md.response_types : ['code'],
      scope: typeof md.scope === 'string' ? md.scope : '',
      token_endpoint_auth_method: method,
    };
  }

  private view(row: OAuthClientEntity): ClientView {
    const md = this.storedMetadata(row);
    return {
      client_id: row.clientId,
      client_name: md.client_name ?? null,
      client_type: md.token_endpoint_auth_method === 'none' ? 'public' : 'confidential',
      redirect_uris: md.redirect_uris,
      post_logout_redirect_uris: md.post_logout_redirect_uris,
      grant_types: md.grant_types,
      response_types: md.response_types,
      scope: md.scope,
      token_endpoint_auth_method: md.token_endpoint_auth_method,
      has_secret: Boolean(row.clientSecretEnc),
      created_at: row.createdAt.toISOString(),
      updated_at: row.updatedAt.toISOString(),
    };
  }

  private record(manager: EntityManager, context: AdminActorContext, action: string, clientId: string, details: Record<string, unknown>) {
    return this.audit.record(
      { actorType: 'admin', actorId: context.actor, action, targetType: 'oauth_client', targetId: clientId, requestId: context.requestId, details },
      manager,
    );
  }
}

/** 256 bits from the CSPRNG, base64url: 43 characters, safe in Basic auth and form bodies. */
function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Metadata for the audit trail (never the secret). */
function auditMetadata(metadata: StoredMetadata): Record<string, unknown> {
  return {
    client_name: metadata.client_name ?? null,
    redirect_uris: metadata.redirect_uris,
    post_logout_redirect_uris: metadata.post_logout_redirect_uris,
    grant_types: metadata.grant_types,
    scope: metadata.scope,
    token_endpoint_auth_method: metadata.token_endpoint_auth_method,
  };
}

function definedOnly<T extends Record<string, unknown>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
