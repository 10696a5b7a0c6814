import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** What oidc-provider persists (sessions, grants, codes, tokens, interactions), one row per model and id. */
@Entity('oidc_payload')
@Index('ix_oidc_payload_grant_id', ['grantId'])
@Index('ix_oidc_payload_uid', ['uid'])
@Index('ix_oidc_payload_user_code', ['userCode'])
@Index('ix_oidc_payload_expires_at', ['expiresAt'])
export class OidcPayloadEntity {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  model: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  id: string;

  @Column({ type: 'jsonb' })
  payload: Record<string, unknown>;

  @Column({ name: 'grant_id', type: 'varchar', length: 255, nullable: true })
  grantId: string | null;

  @Column({ name: 'user_code', type: 'varchar', length: 255, nullable: true })
  userCode: string | null;

  @Column({ type: 'varchar', length: 255, nullable: true })
  uid: string | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ name: 'consumed_at', type: 'timestamptz', nullable: true })
  consumedAt: Date | null;
}
