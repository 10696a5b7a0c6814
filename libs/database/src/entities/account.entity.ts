import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, Unique, UpdateDateColumn } from 'typeorm';

/** A user known to the RSA, keyed by the upstream provider's `sub` (unique per provider). */
@Entity('account')
@Unique('uq_account_provider_sub', ['provider', 'sub'])
@Index('ix_account_email', ['email'])
export class AccountEntity {
  /** The RSA's own subject identifier for this user (the `sub` of RSA-issued tokens). */
  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** Issuer of the upstream provider this account came from. */
  @Column({ type: 'varchar', length: 512 })
  provider: string;

  /** The upstream `sub`. */
  @Column({ type: 'varchar', length: 255 })
  sub: string;

  @Column({ type: 'varchar', length: 320, nullable: true })
  email: string | null;

  @Column({ name: 'email_verified', type: 'boolean', default: false })
  emailVerified: boolean;

  @Column({ type: 'varchar', length: 255, nullable: true })
  name: string | null;

  @Column({ name: 'given_name', type: 'varchar', length: 255, nullable: true })
  givenName: string | null;

  @Column({ name: 'family_name', type: 'varchar', length: 255, nullable: true })
  familyName: string | null;

  @Column({ name: 'first_login_at', type: 'timestamptz' })
  firstLoginAt: Date;

  @Column({ name: 'last_login_at', type: 'timestamptz' })
  lastLoginAt: Date;

  /** Last time this account's resources were listed at the upstream (resource discovery). */
  @Column({ name: 'resources_synced_at', type: 'timestamptz', nullable: true })
  resourcesSyncedAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
