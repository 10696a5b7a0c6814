import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Stops the embedded database, then checks security case 15 over the WHOLE run: no credential that
 * any test created or saw (recorded by test/support/secret-registry.ts) appears in any log line any
 * worker wrote (captured by test/log-capture.ts). Only counts are printed, never the values.
 */
export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __RSA_EMBEDDED_PG__?: { stop(): Promise<void> } }).__RSA_EMBEDDED_PG__;
  if (embedded) await embedded.stop();

  const dir = process.env.RSA_TEST_LOG_DIR;
  if (!dir) return;
  try {
    const files = readdirSync(dir);
    const secrets = new Set(
      files.filter((f) => f.startsWith('secrets-')).flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean)),
    );
    const logFiles = files.filter((f) => f.startsWith('log-'));
    const logs = logFiles.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
    const leaked = [...secrets].filter((secret) => logs.includes(secret));
    console.log(`[log hygiene] ${secrets.size} credentials checked against ${logs.length} bytes of captured logs from ${logFiles.length} workers: ${leaked.length} found`);
    if (leaked.length) {
      throw new Error(`[log hygiene] ${leaked.length} credential(s) appeared in the logs of this test run (values not printed; search ${dir})`);
    }
    rmSync(dir, { recursive: true, force: true });
  } catch (error) {
    if ((error as Error).message.startsWith('[log hygiene]')) throw error;
    console.warn(`[log hygiene] could not check the captured logs: ${(error as Error).message}`);
  }
}
