import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  OneToMany,
  PrimaryGeneratedColumn,
  Unique,
  UpdateDateColumn,
} from 'typeorm';
import { AccountEntity } from './account.entity';
import { GenericResourceEntity } from './generic-resource.entity';
import type { GenericResourceAliasScopeEntity } from './generic-resource-alias-scope.entity';

export type AliasStatus = 'active' | 'gone';

/** One concrete resource owned by one account (e.g. alice's checking account). */
@Entity('generic_resource_alias')
@Unique('uq_alias_owner_resource_external', ['ownerAccountId', 'genericResourceId', 'externalId'])
@Index('ix_alias_owner_status_id', ['ownerAccountId', 'status', 'id'])
@Index('ix_alias_generic_resource', ['genericResourceId'])
export class GenericResourceAliasEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'owner_account_id', type: 'uuid' })
  ownerAccountId: string;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'owner_account_id', foreignKeyConstraintName: 'fk_alias_owner' })
  owner?: AccountEntity;

  @Column({ name: 'generic_resource_id', type: 'uuid' })
  genericResourceId: string;

  @ManyToOne(() => GenericResourceEntity, { onDelete: 'RESTRICT' })
  @JoinColumn({ name: 'generic_resource_id', foreignKeyConstraintName: 'fk_alias_generic_resource' })
  genericResource?: GenericResourceEntity;

  /** The resource's id at the upstream resource API. */
  @Column({ name: 'external_id', type: 'varchar', length: 255 })
  externalId: string;

  @Column({ name: 'display_name', type: 'varchar', length: 255 })
  displayName: string;

  /** `gone`: discovery no longer finds it upstream; its delegations were ended. */
  @Column({ type: 'varchar', length: 16, default: 'active' })
  status: AliasStatus;

  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt: Date | null;

  @OneToMany('GenericResourceAliasScopeEntity', 'alias')
  scopes?: GenericResourceAliasScopeEntity[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
