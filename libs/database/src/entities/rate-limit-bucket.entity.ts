import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One fixed rate-limit window of one key (`<rule>:<client ip>`): how many requests it has seen. All
 * instances count in the same row (an atomic upsert), so a limit holds across the deployment. Rows of
 * past windows are purged.
 */
@Entity('rate_limit_bucket')
@Index('ix_rate_limit_bucket_window_start', ['windowStart'])
export class RateLimitBucketEntity {
  @PrimaryColumn({ type: 'varchar', length: 255 })
  key: string;

  /** Start of the window (aligned to the window length on the database clock). */
  @PrimaryColumn({ name: 'window_start', type: 'timestamptz' })
  windowStart: Date;

  @Column({ type: 'integer', default: 0 })
  count: number;
}
