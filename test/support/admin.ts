import type { NestExpressApplication } from '@nestjs/platform-express';
import { createAdminApp } from '../../apps/admin/src/bootstrap';
import { freePort } from './ports';
import type { TestStack } from './stack';
import { TEST_ADMIN_TOKEN } from './test-config';

/** A response of the admin API, its JSON body parsed (the raw text when not JSON, undefined when empty). */
export interface AdminResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface AdminRequestOptions {
  /** Bearer token; default TEST_ADMIN_TOKEN, null sends no Authorization header (unless `headers` has one). */
  token?: string | null;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface AdminInstance {
  /** Where the admin app listens, e.g. `http://127.0.0.1:40123`. */
  url: string;
  app: NestExpressApplication;
  request(method: string, path: string, options?: AdminRequestOptions): Promise<AdminResponse>;
  close(): Promise<void>;
}

/**
 * The admin app on the stack's configuration (same database, ADMIN_TOKENS of the stack —
 * TEST_ADMIN_TOKEN unless overridden), on its own free port. Close it before the stack.
 */
export async function startAdmin(stack: TestStack): Promise<AdminInstance> {
  const port = await freePort();
  const app = await createAdminApp(stack.config);
  await app.listen(port, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    app,
    async request(method, path, options = {}) {
      const token = options.token === undefined ? TEST_ADMIN_TOKEN : options.token;
      const headers: Record<string, string> = {};
      if (token !== null) headers.authorization = `Bearer ${token}`;
      if (options.body !== undefined && typeof options.body !== 'string') headers['content-type'] = 'application/json';
      Object.assign(headers, options.headers);
      const res = await fetch(`${url}${path}`, {
        method,
        headers,
        body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
      });
      const text = await res.text();
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      return { status: res.status, headers: res.headers, body };
    },
    close: () => app.close(),
  };
}
