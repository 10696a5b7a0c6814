import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  OneToMany,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
} from 'typeorm';
import { AccountEntity } from './account.entity';
import { GenericResourceAliasEntity } from './generic-resource-alias.entity';
import type { GenericResourceAuthorizationScopeEntity } from './generic-resource-authorization-scope.entity';

export const AUTHORIZATION_STATUSES = ['active', 'revoked', 'expired'] as const;
export type AuthorizationStatus = (typeof AUTHORIZATION_STATUSES)[number];

/**
 * A delegation of one alias from its owner to a delegate account — or, while pending, to an email
 * address not yet seen (bound at that user's first login with a verified email).
 * An `active` row whose `expires_at` has passed is ignored at read time: correctness never waits
 * for a background job.
 */
@Entity('generic_resource_authorization')
// By delegate and status, then alias id: "what was delegated to me" in keyset order (AccessPolicy.delegated
// reads one page of it and stops).
@Index('ix_authz_delegate_status_alias', ['delegateAccountId', 'status', 'aliasId'])
@Index('ix_authz_owner_status', ['ownerAccountId', 'status'])
@Index('ix_authz_alias_status', ['aliasId', 'status'])
@Index('ix_authz_pending_email', ['delegateEmail'], { where: `status = 'active' AND delegate_account_id IS NULL` })
@Index('uq_authz_active_alias_delegate', ['aliasId', 'delegateAccountId'], {
  unique: true,
  where: `status = 'active' AND delegate_account_id IS NOT NULL`,
})
@Index('uq_authz_active_alias_email', ['aliasId', 'delegateEmail'], {
  unique: true,
  where: `status = 'active' AND delegate_account_id IS NULL`,
})
export class GenericResourceAuthorizationEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'alias_id', type: 'uuid' })
  aliasId: string;

  @ManyToOne(() => GenericResourceAliasEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'alias_id', foreignKeyConstraintName: 'fk_authz_alias' })
  alias?: GenericResourceAliasEntity;

  /** The alias's owner, kept here so "what did I grant" needs no join. */
  @Column({ name: 'owner_account_id', type: 'uuid' })
  ownerAccountId: string;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'owner_account_id', foreignKeyConstraintName: 'fk_authz_owner' })
  owner?: AccountEntity;

  /** Null while the delegation waits for an account with `delegate_email`. */
  @Column({ name: 'delegate_account_id', type: 'uuid', nullable: true })
  delegateAccountId: string | null;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'delegate_account_id', foreignKeyConstraintName: 'fk_authz_delegate' })
  delegate?: AccountEntity;

  /** Lower-cased email the delegation was addressed to (kept after binding, for the record). */
  @Column({ name: 'delegate_email', type: 'varchar', length: 320, nullable: true })
  delegateEmail: string | null;

  @Column({ type: 'varchar', length: 16, default: 'active' })
  status: AuthorizationStatus;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  /** `account:<id>` or `admin:<name>`. */
  @Column({ name: 'created_by', type: 'varchar', length: 255 })
  createdBy: string;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  @Column({ name: 'revoked_by', type: 'varchar', length: 255, nullable: true })
  revokedBy: string | null;

  @OneToMany('GenericResourceAuthorizationScopeEntity', 'authorization')
  scopes?: GenericResourceAuthorizationScopeEntity[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
