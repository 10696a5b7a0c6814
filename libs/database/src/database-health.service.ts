import { Injectable, ServiceUnavailableException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** Readiness: the database answers a trivial query within the timeout. */
@Injectable()
export class DatabaseHealthService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async check(timeoutMs = 2000): Promise<{ ok: boolean; latencyMs: number; error?: string }> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      if (!this.dataSource.isInitialized) throw new Error('not connected');
      await Promise.race([
        this.dataSource.query('SELECT 1'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { ok: true, latencyMs: Date.now() - started };
    } catch (error) {
      return { ok: false, latencyMs: Date.now() - started, error: (error as Error).message };
    } finally {
      clearTimeout(timer);
    }
  }

  /** The body of `/health/ready`; throws 503 when the database does not answer. */
  async readiness(): Promise<{ status: 'ok'; checks: { database: { ok: boolean; latencyMs: number } } }> {
    const database = await this.check();
    if (!database.ok) throw new ServiceUnavailableException({ status: 'unavailable', checks: { database } });
    return { status: 'ok', checks: { database } };
  }
}
