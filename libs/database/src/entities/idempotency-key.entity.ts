import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * One `Idempotency-Key` of an admin POST: the first request's fingerprint and, once it finished, its
 * response. A replay with the same body gets that response without a second write; with another
 * body, a 422. Rows older than a day are purged.
 */
@Entity('idempotency_key')
@Index('ix_idempotency_key_created_at', ['createdAt'])
export class IdempotencyKeyEntity {
  /** Who used the key (admin actor) and the key itself: keys are scoped per caller. */
  @PrimaryColumn({ type: 'varchar', length: 128 })
  actor: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  key: string;

  /** SHA-256 of method, path and body. */
  @Column({ name: 'request_hash', type: 'varchar', length: 64 })
  requestHash: string;

  /** Null while the first request is still running. */
  @Column({ name: 'response_status', type: 'integer', nullable: true })
  responseStatus: number | null;

  @Column({ name: 'response_body', type: 'jsonb', nullable: true })
  responseBody: unknown;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
