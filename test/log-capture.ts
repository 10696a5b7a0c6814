import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordSecret } from './support/secret-registry';
import { TEST_ADMIN_TOKEN, TEST_ENCRYPTION_KEY } from './support/test-config';

/**
 * Jest setup file: everything this worker writes to stdout/stderr (Nest's logger, oidc-provider) or
 * through `console` is also appended to a log file in RSA_TEST_LOG_DIR. The global teardown searches
 * those files for every recorded credential.
 */
const dir = process.env.RSA_TEST_LOG_DIR;
if (dir) {
  const file = join(dir, `log-${process.pid}.txt`);
  const capture = (chunk: unknown) => {
    try {
      appendFileSync(file, typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk : String(chunk));
    } catch {
      // never break a test because of the capture
    }
  };
  const g = globalThis as { __rsaLogCaptureInstalled?: boolean };
  if (!g.__rsaLogCaptureInstalled) {
    g.__rsaLogCaptureInstalled = true;
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
      stream.write = ((chunk: unknown, ...rest: unknown[]) => {
        capture(chunk);
        return write(chunk, ...rest);
      }) as typeof stream.write;
    }
  }
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const original = console[method].bind(console);
    console[method] = (...args: unknown[]) => {
      capture(`${args.map((a) => (typeof a === 'string' ? a : (() => { try { return JSON.stringify(a); } catch { return String(a); } })())).join(' ')}\n`);
      original(...args);
    };
  }
  recordSecret(TEST_ADMIN_TOKEN);
  recordSecret(TEST_ENCRYPTION_KEY);
}
