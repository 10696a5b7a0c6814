import { Column, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn, Unique } from 'typeorm';
import type { GenericResourceAuthorizationEntity } from './generic-resource-authorization.entity';

/** A scope granted by a delegation: always a subset of the alias's scopes. */
@Entity('generic_resource_authorization_scope')
@Unique('uq_authz_scope', ['authorizationId', 'scope'])
export class GenericResourceAuthorizationScopeEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'authorization_id', type: 'uuid' })
  authorizationId: string;

  @ManyToOne('GenericResourceAuthorizationEntity', 'scopes', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'authorization_id', foreignKeyConstraintName: 'fk_authz_scope_authorization' })
  authorization?: GenericResourceAuthorizationEntity;

  @Column({ type: 'varchar', length: 64 })
  scope: string;
}
