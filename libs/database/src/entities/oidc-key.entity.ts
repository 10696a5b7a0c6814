import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** The OP's signing keys and cookie keys, persisted (encrypted) so restarts and instances agree. */
@Entity('oidc_key')
@Index('ix_oidc_key_kind_created', ['kind', 'createdAt'])
export class OidcKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 16 })
  kind: 'signing' | 'cookie';

  @Column({ type: 'varchar', length: 128 })
  kid: string;

  /** Private JWK (signing) or random secret (cookie), encrypted like upstream tokens. */
  @Column({ name: 'material_enc', type: 'text' })
  materialEnc: string;

  @Column({ type: 'boolean', default: true })
  active: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
