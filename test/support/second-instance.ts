import type { NestExpressApplication } from '@nestjs/platform-express';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { createApiApp } from '../../apps/api/src/bootstrap';
import { freePort } from './ports';
import type { TestStack } from './stack';

export interface ApiInstance {
  /** Where this instance listens (the issuer stays the stack's: both sit behind one public URL). */
  url: string;
  api: NestExpressApplication;
  /** Its own DataSource and connection pool, separate from the first instance's. */
  dataSource: DataSource;
  close(): Promise<void>;
}

/**
 * Another api app of the same deployment: the stack's configuration (same issuer, same upstream
 * client registration, same database and key ring), its own Nest container, connection pool, token
 * vault (own instance id) and upstream client, on its own port. Use it to exercise cross-instance
 * behaviour; close it before the stack.
 */
export async function startSecondInstance(stack: TestStack): Promise<ApiInstance> {
  const port = await freePort();
  const api = await createApiApp(stack.config);
  await api.listen(port, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${port}`,
    api,
    dataSource: api.get<DataSource>(getDataSourceToken()),
    close: () => api.close(),
  };
}
