import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every credential a test run creates or sees is written here (one per line, per worker process), so
 * that the global teardown can check that none of them ever reached a log line (security case 15:
 * the whole suite runs with its logs captured — see test/log-capture.ts).
 */
export function recordSecret(value: string | undefined | null): void {
  const dir = process.env.RSA_TEST_LOG_DIR;
  if (!dir || !value || value.length < 16) return;
  appendFileSync(join(dir, `secrets-${process.pid}.txt`), `${value.replace(/\n/g, '')}\n`);
}

/** Records every token an oidc-provider instance saves (opaque token values are their `jti`). */
export function recordTokensOf(provider: { on(event: string, listener: (token: { jti?: string }) => void): unknown }): void {
  for (const event of ['access_token.saved', 'refresh_token.saved', 'authorization_code.saved', 'client_credentials.saved']) {
    provider.on(event, (token) => recordSecret(token.jti));
  }
}
