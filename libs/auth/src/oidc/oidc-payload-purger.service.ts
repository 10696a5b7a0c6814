import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/** How often expired OP rows are deleted, and how many per statement (short statements, no long locks). */
const PURGE_INTERVAL_MS = 10 * 60 * 1000;
const PURGE_BATCH = 1000;

/**
 * Deletes expired OP rows (codes, tokens, sessions, interactions). `find` already ignores them; this
 * only keeps the table small. Safe with any number of instances: deleting is idempotent.
 */
@Injectable()
export class OidcPayloadPurger implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(OidcPayloadPurger.name);
  private timer?: NodeJS.Timeout;

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.purge().catch((e: Error) => this.logger.warn(`purge failed: ${e.message}`)), PURGE_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Deletes expired rows in batches; returns how many were deleted. */
  async purge(): Promise<number> {
    let total = 0;
    for (;;) {
      const result = await this.dataSource.query(
        `DELETE FROM oidc_payload WHERE ctid IN (
           SELECT ctid FROM oidc_payload WHERE expires_at < now() LIMIT ${PURGE_BATCH})`,
      );
      const deleted = Array.isArray(result) ? Number(result[1] ?? 0) : 0;
      total += deleted;
      if (deleted < PURGE_BATCH) return total;
    }
  }
}
