import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  Unique,
  UpdateDateColumn,
} from 'typeorm';
import { AccountEntity } from './account.entity';

/** Stored status. `refreshable` is derived at read time (access token expired, refresh token alive). */
export const STORED_TOKEN_STATUSES = ['valid', 'refresh_failing', 'reauth_required', 'revoked'] as const;
export type StoredTokenStatus = (typeof STORED_TOKEN_STATUSES)[number];
export const TOKEN_STATUSES = ['valid', 'refreshable', 'reauth_required', 'refresh_failing', 'revoked'] as const;
export type TokenStatus = (typeof TOKEN_STATUSES)[number];

export const REFRESH_OUTCOMES = ['success', 'invalid_grant', 'upstream_timeout', 'upstream_error'] as const;
export type RefreshOutcome = (typeof REFRESH_OUTCOMES)[number];

/**
 * One row per account and upstream provider. Token values are only ever stored encrypted
 * (AES-256-GCM, see TokenCipher in libs/auth); the `*_enc` columns hold `v1.<kid>.<iv>.<ct>.<tag>`.
 */
@Entity('upstream_token')
@Unique('uq_upstream_token_account_provider', ['accountId', 'provider'])
@Index('ix_upstream_token_status_expiry', ['status', 'accessTokenExpiresAt'])
// An expression index for the proactive refresh claim; created by migration ProactiveRefreshIndex.
@Index('ix_upstream_token_proactive_due', { synchronize: false })
export class UpstreamTokenEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'account_id', type: 'uuid' })
  accountId: string;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'account_id', foreignKeyConstraintName: 'fk_upstream_token_account' })
  account?: AccountEntity;

  @Column({ type: 'varchar', length: 512 })
  provider: string;

  @Column({ name: 'access_token_enc', type: 'text' })
  accessTokenEnc: string;

  @Column({ name: 'refresh_token_enc', type: 'text', nullable: true })
  refreshTokenEnc: string | null;

  @Column({ name: 'id_token_enc', type: 'text', nullable: true })
  idTokenEnc: string | null;

  @Column({ type: 'varchar', length: 2048, default: '' })
  scope: string;

  @Column({ name: 'access_token_expires_at', type: 'timestamptz' })
  accessTokenExpiresAt: Date;

  /** Only known when the upstream says so (`refresh_expires_in`, a non-standard but common field). */
  @Column({ name: 'refresh_token_expires_at', type: 'timestamptz', nullable: true })
  refreshTokenExpiresAt: Date | null;

  @Column({ type: 'varchar', length: 32, default: 'valid' })
  status: StoredTokenStatus;

  @Column({ name: 'last_refresh_at', type: 'timestamptz', nullable: true })
  lastRefreshAt: Date | null;

  @Column({ name: 'last_refresh_outcome', type: 'varchar', length: 32, nullable: true })
  lastRefreshOutcome: RefreshOutcome | null;

  /** Error code and description from the upstream; never a token value. */
  @Column({ name: 'last_refresh_error', type: 'varchar', length: 1024, nullable: true })
  lastRefreshError: string | null;

  @Column({ name: 'consecutive_failures', type: 'integer', default: 0 })
  consecutiveFailures: number;

  /**
   * Cross-instance refresh claim: an instance takes the lease with a conditional UPDATE, calls the
   * upstream without holding a database connection, then stores the result and clears the lease.
   */
  @Column({ name: 'refresh_lease_until', type: 'timestamptz', nullable: true })
  refreshLeaseUntil: Date | null;

  @Column({ name: 'refresh_lease_owner', type: 'uuid', nullable: true })
  refreshLeaseOwner: string | null;

  /** Bumped on every change of the token material, so a waiter can tell a refresh happened. */
  @Column({ type: 'integer', default: 1 })
  version: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
