import { Injectable } from '@nestjs/common';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KeyRingEntry, RsaConfig } from '@rsa/config';
import { DomainError } from '@rsa/common';

const VERSION = 'v1';
const IV_BYTES = 12; // 96-bit nonce, the GCM recommendation (NIST SP 800-38D §8.2)
const TAG_BYTES = 16;

export class DecryptionError extends DomainError {
  constructor(message: string) {
    super('CRYPTO.DECRYPTION_FAILED', message);
  }
}

/**
 * AES-256-GCM for secrets at rest. Output: `v1.<kid>.<iv>.<ciphertext>.<tag>` (base64url parts).
 * The additional authenticated data binds a ciphertext to where it lives (table, column, row
 * owner): a value copied into another row or column fails to decrypt instead of being accepted.
 * The first key of the ring encrypts; every key decrypts, so keys can be rotated without downtime.
 */
@Injectable()
export class TokenCipher {
  private readonly keys: Map<string, Buffer>;
  private readonly current: KeyRingEntry;

  constructor(config: RsaConfig) {
    if (!config.tokenEncryptionKeys.length) throw new Error('TOKEN_ENCRYPTION_KEYS is empty');
    this.keys = new Map(config.tokenEncryptionKeys.map((k) => [k.kid, k.key]));
    this.current = config.tokenEncryptionKeys[0];
  }

  /** A cipher for a key ring alone (scripts such as `keys:reencrypt` that need no other configuration). */
  static forKeyRing(keys: KeyRingEntry[]): TokenCipher {
    return new TokenCipher({ tokenEncryptionKeys: keys } as Pick<RsaConfig, 'tokenEncryptionKeys'> as RsaConfig);
  }

  /** The `kid` new ciphertexts are written with. */
  get currentKeyId(): string {
    return this.current.kid;
  }

  encrypt(plaintext: string, aad: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(`${VERSION}.${this.current.kid}.${aad}`, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, this.current.kid, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  decrypt(value: string, aad: string): string {
    const parts = value.split('.');
    if (parts.length !== 5 || parts[0] !== VERSION) throw new DecryptionError('unrecognised ciphertext format');
    const [, kid, ivB64, ctB64, tagB64] = parts;
    const key = this.keys.get(kid);
    if (!key) throw new DecryptionError(`no key with id "${kid}" in TOKEN_ENCRYPTION_KEYS`);
    const iv = decodeCanonical(ivB64);
    const ciphertext = decodeCanonical(ctB64);
    const tag = decodeCanonical(tagB64);
    if (!iv || !ciphertext || !tag || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) {
      throw new DecryptionError('malformed ciphertext');
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(`${VERSION}.${kid}.${aad}`, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      // GCM authentication failed: tampered, swapped between rows/columns, or the wrong key.
      throw new DecryptionError('ciphertext failed authentication');
    }
  }

  /** Key id a stored value was written with (for re-encryption after a key rotation). */
  keyIdOf(value: string): string | undefined {
    const parts = value.split('.');
    return parts.length === 5 ? parts[1] : undefined;
  }
}

/**
 * Decodes base64url only in the form `encrypt` writes it. Node's decoder is lenient (it accepts `+`
 * and `/`, skips unknown characters and ignores the unused bits of the last character), so without
 * this check some changes to a stored value would go unnoticed.
 */
function decodeCanonical(part: string): Buffer | null {
  const bytes = Buffer.from(part, 'base64url');
  return bytes.toString('base64url') === part ? bytes : null;
}

/** AAD for a column of a row, e.g. `upstream_token.refresh_token:<account id>`. */
export function columnAad(table: string, column: string, ownerId: string): string {
  return `${table}.${column}:${ownerId}`;
}
