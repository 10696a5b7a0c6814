import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import type { AdapterPayload } from 'oidc-provider';
import { Repository } from 'typeorm';
import { OAuthClientEntity } from '@rsa/database';
import { columnAad, TokenCipher } from '../crypto/token-cipher';

export interface ClientRegistration {
  client_id: string;
  /** Absent for public clients (`token_endpoint_auth_method: none`). */
  client_secret?: string;
  client_name?: string;
  redirect_uris: string[];
  post_logout_redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  /** Space-separated scopes the client may request. */
  scope?: string;
  token_endpoint_auth_method?: string;
}

const secretAad = (clientId: string) => columnAad('oauth_client', 'client_secret', clientId);

/**
 * OAuth clients of the RSA, stored in `oauth_client` with the secret encrypted. oidc-provider reads
 * them through the adapter's `Client` model, so a client added by the admin app is usable at once.
 */
@Injectable()
export class ClientRegistry {
  constructor(
    @InjectRepository(OAuthClientEntity) private readonly clients: Repository<OAuthClientEntity>,
    private readonly cipher: TokenCipher,
  ) {}

  async upsert(registration: ClientRegistration): Promise<void> {
    const { client_id, client_secret, ...metadata } = registration;
    await this.clients.upsert(
      {
        clientId: client_id,
        name: registration.client_name ?? null,
        metadata: {
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: client_secret ? 'client_secret_basic' : 'none',
          ...metadata,
        },
        clientSecretEnc: client_secret ? this.cipher.encrypt(client_secret, secretAad(client_id)) : null,
      },
      ['clientId'],
    );
  }

  /**
   * A client secret as stored in `client_secret_enc`: encrypted, bound to the client id (a value copied
   * to another client's row fails to decrypt). For writers other than `upsert` (the admin API).
   */
  encryptSecret(clientId: string, secret: string): string {
    return this.cipher.encrypt(secret, secretAad(clientId));
  }

  /** Client metadata as oidc-provider expects it, secret decrypted; undefined for unknown ids. */
  async findForProvider(clientId: string): Promise<AdapterPayload | undefined> {
    const row = await this.clients.findOne({ where: { clientId } });
    if (!row) return undefined;
    return {
      ...(row.metadata as AdapterPayload),
      client_id: row.clientId,
      ...(row.clientSecretEnc ? { client_secret: this.cipher.decrypt(row.clientSecretEnc, secretAad(row.clientId)) } : {}),
    };
  }
}
