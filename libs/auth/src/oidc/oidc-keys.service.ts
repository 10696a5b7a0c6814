import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { OidcKeyEntity } from '@rsa/database';
import { columnAad, TokenCipher } from '../crypto/token-cipher';

/** Arbitrary constant: serialises first-start key generation across instances. */
const KEY_GENERATION_LOCK = 734_221_901;

export interface OidcKeys {
  signing: JWK[];
  cookies: string[];
}

/**
 * Signing keys and cookie keys of the RSA's OP, persisted encrypted so that tokens and sessions
 * survive restarts and every instance signs and verifies with the same keys.
 */
@Injectable()
export class OidcKeyStore {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly cipher: TokenCipher,
  ) {}

  async loadOrCreate(): Promise<OidcKeys> {
    return this.dataSource.transaction(async (manager) => {
      // Two instances starting together on an empty database must not both generate keys.
      await manager.query('SELECT pg_advisory_xact_lock($1)', [KEY_GENERATION_LOCK]);
      const rows = await manager.find(OidcKeyEntity, { where: { active: true }, order: { createdAt: 'DESC' } });
      if (!rows.some((r) => r.kind === 'signing')) rows.unshift(await this.insert(manager, 'signing', await newSigningKey()));
      if (!rows.some((r) => r.kind === 'cookie')) rows.unshift(await this.insert(manager, 'cookie', randomBytes(32).toString('base64url')));
      const open = (r: OidcKeyEntity) => this.cipher.decrypt(r.materialEnc, columnAad('oidc_key', 'material', r.kid));
      return {
        signing: rows.filter((r) => r.kind === 'signing').map((r) => JSON.parse(open(r)) as JWK),
        cookies: rows.filter((r) => r.kind === 'cookie').map(open),
      };
    });
  }

  private async insert(
    manager: import('typeorm').EntityManager,
    kind: OidcKeyEntity['kind'],
    material: string | { kid: string; jwk: JWK },
  ): Promise<OidcKeyEntity> {
    const kid = typeof material === 'string' ? randomUUID() : material.kid;
    const plaintext = typeof material === 'string' ? material : JSON.stringify(material.jwk);
    return manager.save(
      manager.create(OidcKeyEntity, {
        kind,
        kid,
        materialEnc: this.cipher.encrypt(plaintext, columnAad('oidc_key', 'material', kid)),
        active: true,
      }),
    );
  }
}

async function newSigningKey(): Promise<{ kid: string; jwk: JWK }> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true, modulusLength: 2048 });
  const kid = randomUUID();
  return { kid, jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}
