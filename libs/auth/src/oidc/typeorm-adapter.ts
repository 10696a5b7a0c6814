import { createHash } from 'node:crypto';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { errors } from 'oidc-provider';
import { DataSource } from 'typeorm';
import { OidcPayloadEntity } from '@rsa/database';
import { ClientRegistry } from './client-registry.service';

/**
 * Models whose id IS the credential (opaque tokens and codes: the id is the value the client holds).
 * Their rows are keyed by a SHA-256 of the id and the `jti` is not stored, so the table never holds a
 * usable token value in clear; the id is put back into the payload when it is looked up by value.
 */
const CREDENTIAL_MODELS = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'ClientCredentials',
  'InitialAccessToken',
  'RegistrationAccessToken',
  'BackchannelAuthenticationRequest',
]);

const digest = (value: string) => createHash('sha256').update(value).digest('base64url');

/**
 * oidc-provider storage on PostgreSQL: one table keyed by (model, id), payload in jsonb, with the
 * lookup columns oidc-provider needs indexed. Expired rows are invisible to `find` and purged later.
 */
export function createTypeormAdapter(dataSource: DataSource, clients: ClientRegistry) {
  const repo = () => dataSource.getRepository(OidcPayloadEntity);

  return class TypeormAdapter implements Adapter {
    private readonly hidesId: boolean;

    constructor(private readonly model: string) {
      this.hidesId = CREDENTIAL_MODELS.has(model);
    }

    private key(id: string): string {
      return this.hidesId ? digest(id) : id;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (this.model === 'Client') throw new Error('clients are managed through the admin API, not dynamic registration');
      const stored: Record<string, unknown> = { ...payload };
      if (this.hidesId) delete stored.jti;
      await repo()
        .createQueryBuilder()
        .insert()
        .values({
          model: this.model,
          id: this.key(id),
          payload: stored as OidcPayloadEntity['payload'] & object,
          grantId: (payload.grantId as string | undefined) ?? null,
          userCode: (payload.userCode as string | undefined) ?? null,
          uid: (payload.uid as string | undefined) ?? null,
          expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
          consumedAt: null,
        })
        .orUpdate(['payload', 'grant_id', 'user_code', 'uid', 'expires_at', 'consumed_at'], ['model', 'id'])
        .execute();
    }

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.model === 'Client') return clients.findForProvider(id);
      const found = await this.findBy('id', this.key(id));
      return found && this.hidesId ? { ...found, jti: id } : found;
    }

    findByUid(uid: string): Promise<AdapterPayload | undefined> {
      return this.findBy('uid', uid);
    }

    findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
      return this.findBy('userCode', userCode);
    }

    /**
     * Atomic: of two parallel redemptions of one code (or one rotating refresh token) only the first
     * UPDATE matches; the second fails with invalid_grant instead of minting a second token set.
     */
    async consume(id: string): Promise<void> {
      const result = await repo()
        .createQueryBuilder()
        .update()
        .set({ consumedAt: () => 'now()' })
        .where('model = :model AND id = :id AND consumed_at IS NULL', { model: this.model, id: this.key(id) })
        .execute();
      if (!result.affected) throw new errors.InvalidGrant('grant request is invalid (already used)');
    }

    async destroy(id: string): Promise<void> {
      await repo().delete({ model: this.model, id: this.key(id) });
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await repo().delete({ model: this.model, grantId });
    }

    private async findBy(column: 'id' | 'uid' | 'userCode', value: string): Promise<AdapterPayload | undefined> {
      const row = await repo()
        .createQueryBuilder('p')
        .select(['p.model', 'p.id', 'p.payload', 'p.consumedAt'])
        .where('p.model = :model', { model: this.model })
        .andWhere(`p.${column} = :value`, { value })
        .andWhere('(p.expires_at IS NULL OR p.expires_at > now())')
        .getOne();
      if (!row) return undefined;
      return { ...(row.payload as AdapterPayload), ...(row.consumedAt ? { consumed: true } : {}) };
    }
  };
}
