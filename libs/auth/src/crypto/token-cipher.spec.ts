import { randomBytes } from 'node:crypto';
import { loadConfig } from '@rsa/config';
import { columnAad, DecryptionError, TokenCipher } from './token-cipher';

const key = () => randomBytes(32).toString('base64');
const OLD = `old:${key()}`;
const NEW = `new:${key()}`;

/** A cipher built the way the apps build it: from a validated environment. */
function cipherWith(keyRing: string): TokenCipher {
  return new TokenCipher(
    loadConfig({
      RSA_ISSUER: 'http://127.0.0.1:3000',
      UPSTREAM_ISSUER: 'http://127.0.0.1:3002',
      UPSTREAM_CLIENT_ID: 'rsa',
      UPSTREAM_CLIENT_SECRET: 'secret',
      UPSTREAM_RESOURCE_BASE_URL: 'http://127.0.0.1:3002/api',
      TOKEN_ENCRYPTION_KEYS: keyRing,
    }),
  );
}

const AAD = columnAad('upstream_token', 'refresh_token', '5f0c8c1e-0000-4000-8000-000000000001');
const SECRET = 'refresh-token-value-ÄÖÜ-✓';

/** Decodes part `index` of the ciphertext, lets `change` alter the bytes, and re-encodes. */
function alterPart(value: string, index: number, change: (bytes: Buffer) => void): string {
  const parts = value.split('.');
  const bytes = Buffer.from(parts[index], 'base64url');
  change(bytes);
  parts[index] = bytes.toString('base64url');
  return parts.join('.');
}

function decryptionError(run: () => unknown): DecryptionError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error).toMatchObject({ code: 'CRYPTO.DECRYPTION_FAILED' });
    return error as DecryptionError;
  }
  throw new Error('expected a DecryptionError, but decryption succeeded');
}

describe('TokenCipher', () => {
  const cipher = cipherWith(NEW);

  it('decrypts what it encrypted, for the same AAD', () => {
    for (const plaintext of [SECRET, '', 'x'.repeat(5000)]) {
      expect(cipher.decrypt(cipher.encrypt(plaintext, AAD), AAD)).toBe(plaintext);
    }
  });

  it('writes v1.<kid>.<iv>.<ciphertext>.<tag> without the plaintext in it', () => {
    const value = cipher.encrypt(SECRET, AAD);
    const [version, kid, iv, ciphertext, tag] = value.split('.');
    expect([version, kid]).toEqual(['v1', 'new']);
    expect(Buffer.from(iv, 'base64url')).toHaveLength(12);
    expect(Buffer.from(tag, 'base64url')).toHaveLength(16);
    expect(Buffer.from(ciphertext, 'base64url')).toHaveLength(Buffer.byteLength(SECRET));
    expect(value).not.toContain(SECRET);
    expect(value).not.toContain(Buffer.from(SECRET).toString('base64url'));
  });

  it('two encryptions of the same plaintext differ (random nonce) and both decrypt', () => {
    const a = cipher.encrypt(SECRET, AAD);
    const b = cipher.encrypt(SECRET, AAD);
    expect(a).not.toBe(b);
    expect(a.split('.')[2]).not.toBe(b.split('.')[2]);
    expect(cipher.decrypt(a, AAD)).toBe(SECRET);
    expect(cipher.decrypt(b, AAD)).toBe(SECRET);
  });

  it('refuses a ciphertext under a different AAD (other row, other column, other table)', () => {
    const value = cipher.encrypt(SECRET, AAD);
    for (const other of [
      columnAad('upstream_token', 'refresh_token', '5f0c8c1e-0000-4000-8000-000000000002'),
      columnAad('upstream_token', 'access_token', '5f0c8c1e-0000-4000-8000-000000000001'),
      columnAad('oauth_client', 'refresh_token', '5f0c8c1e-0000-4000-8000-000000000001'),
      '',
    ]) {
      expect(decryptionError(() => cipher.decrypt(value, other)).message).toBe('ciphertext failed authentication');
    }
  });

  it.each([
    ['iv', 2],
    ['ciphertext', 3],
    ['tag', 4],
  ])('detects a tampered %s', (_part, index) => {
    const value = cipher.encrypt(SECRET, AAD);
    for (const at of [0, 5]) {
      decryptionError(() =>
        cipher.decrypt(
          alterPart(value, index, (bytes) => {
            bytes[at % bytes.length] ^= 0x01;
          }),
          AAD,
        ),
      );
    }
  });

  it('detects a changed character anywhere in the stored text', () => {
    const value = cipher.encrypt(SECRET, AAD);
    const accepted: string[] = [];
    for (let i = 0; i < value.length; i++) {
      for (const replacement of ['A', 'B', 'g', '_', '=', '+', ' ']) {
        if (replacement === value[i]) continue;
        const changed = value.slice(0, i) + replacement + value.slice(i + 1);
        try {
          cipher.decrypt(changed, AAD);
          accepted.push(`position ${i}: ${value[i]} -> ${replacement}`);
        } catch (error) {
          expect(error).toBeInstanceOf(DecryptionError);
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  it('refuses truncated, extended and foreign formats with a DecryptionError', () => {
    const value = cipher.encrypt(SECRET, AAD);
    const parts = value.split('.');
    for (const bad of [
      '',
      'not a ciphertext',
      parts.slice(0, 4).join('.'),
      `${value}.extra`,
      ['v2', ...parts.slice(1)].join('.'),
      [...parts.slice(0, 2), parts[2].slice(0, 8), ...parts.slice(3)].join('.'), // short iv
      [...parts.slice(0, 4), parts[4].slice(0, 10)].join('.'), // short tag
      [...parts.slice(0, 3), `${parts[3]}=`, parts[4]].join('.'), // padding: not how it was written
    ]) {
      decryptionError(() => cipher.decrypt(bad, AAD));
    }
  });

  it('a ciphertext relabelled with another kid of the ring does not decrypt', () => {
    const ring = cipherWith(`${NEW},${OLD}`);
    const value = ring.encrypt(SECRET, AAD);
    decryptionError(() => ring.decrypt(value.replace(/^v1\.new\./, 'v1.old.'), AAD));
  });

  describe('key rotation (TOKEN_ENCRYPTION_KEYS = new,old)', () => {
    const before = cipherWith(OLD);
    const after = cipherWith(`${NEW},${OLD}`);

    it('still decrypts what the old key wrote, and writes with the new key', () => {
      const old = before.encrypt(SECRET, AAD);
      expect(before.currentKeyId).toBe('old');
      expect(before.keyIdOf(old)).toBe('old');

      expect(after.currentKeyId).toBe('new');
      expect(after.decrypt(old, AAD)).toBe(SECRET);
      const rewritten = after.encrypt(after.decrypt(old, AAD), AAD);
      expect(after.keyIdOf(rewritten)).toBe('new');
      expect(after.decrypt(rewritten, AAD)).toBe(SECRET);
    });

    it('an instance without the new key refuses its ciphertexts, naming the unknown kid', () => {
      const fresh = after.encrypt(SECRET, AAD);
      expect(decryptionError(() => before.decrypt(fresh, AAD)).message).toBe('no key with id "new" in TOKEN_ENCRYPTION_KEYS');
    });

    it('keyIdOf is undefined for something that is not a ciphertext', () => {
      expect(after.keyIdOf('plain-text-token')).toBeUndefined();
    });
  });

  it('a key with the same kid but other bytes does not decrypt (wrong key)', () => {
    const value = cipherWith(`k1:${key()}`).encrypt(SECRET, AAD);
    expect(decryptionError(() => cipherWith(`k1:${key()}`).decrypt(value, AAD)).message).toBe('ciphertext failed authentication');
  });

  it('columnAad names table, column and row owner', () => {
    expect(columnAad('upstream_token', 'access_token', 'acc-1')).toBe('upstream_token.access_token:acc-1');
  });
});
