import { Column, Entity, JoinColumn, ManyToOne, PrimaryGeneratedColumn, Unique } from 'typeorm';
import type { GenericResourceAliasEntity } from './generic-resource-alias.entity';

/** A scope available on an alias (e.g. `read`, `write`). */
@Entity('generic_resource_alias_scope')
@Unique('uq_alias_scope', ['aliasId', 'scope'])
export class GenericResourceAliasScopeEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'alias_id', type: 'uuid' })
  aliasId: string;

  @ManyToOne('GenericResourceAliasEntity', 'scopes', { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'alias_id', foreignKeyConstraintName: 'fk_alias_scope_alias' })
  alias?: GenericResourceAliasEntity;

  @Column({ type: 'varchar', length: 64 })
  scope: string;
}
