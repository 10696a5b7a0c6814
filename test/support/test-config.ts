import { randomBytes } from 'node:crypto';

/** Fixed test keys: every stack in the run must decrypt what the others wrote (OP keys are shared). */
export const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');
export const TEST_KEY_RING = `test1:${TEST_ENCRYPTION_KEY}`;
export const TEST_ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';

export function randomId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`;
}
