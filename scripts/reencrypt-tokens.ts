/**
 * `npm run keys:reencrypt`: moves every value encrypted at rest (upstream tokens, OAuth client
 * secrets, the OP's signing and cookie keys, encrypted Idempotency-Key responses) to the FIRST key
 * of TOKEN_ENCRYPTION_KEYS, in batches. Idempotent: run it again and it finds nothing to do.
 *
 * Needs DATABASE_URL and TOKEN_ENCRYPTION_KEYS (the new key first, every old key still in the ring).
 * Run it after every instance runs with the new key first; when it reports `failed: 0` and the key
 * usage shows only the new key id, the old keys can be removed from the ring.
 * Options: `--batch-size=N` (default 200). Exit code 1 when a value could not be decrypted.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { TokenCipher, TokenReencryption } from '@rsa/auth';
import { parseKeyRing } from '@rsa/config';
import { buildDataSourceOptions } from '@rsa/database';

async function main(): Promise<number> {
  const url = process.env.DATABASE_URL;
  const ring = process.env.TOKEN_ENCRYPTION_KEYS;
  if (!url) throw new Error('DATABASE_URL is required (the PostgreSQL database of the deployment)');
  if (!ring) throw new Error('TOKEN_ENCRYPTION_KEYS is required (the new key first, then the old ones)');
  const batchArg = process.argv.find((a) => a.startsWith('--batch-size='));
  const batchSize = batchArg ? Number(batchArg.split('=')[1]) : 200;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error('--batch-size must be a positive integer');

  const cipher = TokenCipher.forKeyRing(parseKeyRing(ring));
  const dataSource = new DataSource(buildDataSourceOptions({ url, poolSize: 2, applicationName: 'rsa-reencrypt' }));
  await dataSource.initialize();
  try {
    console.log(`re-encrypting to key "${cipher.currentKeyId}" (batches of ${batchSize})`);
    const report = await new TokenReencryption(dataSource, cipher).run({ batchSize, log: (line) => console.log(line) });
    for (const c of report.columns) {
      console.log(
        `${c.column.padEnd(30)} found ${c.found}, re-encrypted ${c.reencrypted}, changed concurrently ${c.changedConcurrently}, failed ${c.failed}`,
      );
    }
    const usage = await new TokenReencryption(dataSource, cipher).keyUsage();
    console.log('values per key id now:');
    for (const [column, byKid] of Object.entries(usage)) {
      console.log(`  ${column.padEnd(30)} ${Object.entries(byKid).map(([kid, n]) => `${kid}: ${n}`).join(', ') || '(none)'}`);
    }
    if (report.failed) {
      console.error(`${report.failed} value(s) could not be decrypted with this key ring: do NOT remove any key yet`);
      return 1;
    }
    console.log('done: every encrypted value uses the current key');
    return 0;
  } finally {
    await dataSource.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
