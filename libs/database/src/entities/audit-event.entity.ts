import { Column, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export type AuditActorType = 'user' | 'admin' | 'client' | 'system' | 'anonymous';

/** Append-only record of every write and security event. Never holds a token or secret value. */
@Entity('audit_event')
@Index('ix_audit_event_occurred_at', ['occurredAt'])
@Index('ix_audit_event_action_occurred_at', ['action', 'occurredAt'])
@Index('ix_audit_event_actor', ['actorType', 'actorId', 'occurredAt'])
@Index('ix_audit_event_target', ['targetType', 'targetId', 'occurredAt'])
export class AuditEventEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'occurred_at', type: 'timestamptz', default: () => 'now()' })
  occurredAt: Date;

  @Column({ name: 'actor_type', type: 'varchar', length: 16 })
  actorType: AuditActorType;

  @Column({ name: 'actor_id', type: 'varchar', length: 255, nullable: true })
  actorId: string | null;

  /** Dotted verb, e.g. `account.login`, `upstream_token.refresh_failed`. */
  @Column({ type: 'varchar', length: 64 })
  action: string;

  @Column({ name: 'target_type', type: 'varchar', length: 64, nullable: true })
  targetType: string | null;

  @Column({ name: 'target_id', type: 'varchar', length: 255, nullable: true })
  targetId: string | null;

  @Column({ name: 'request_id', type: 'varchar', length: 128, nullable: true })
  requestId: string | null;

  @Column({ type: 'varchar', length: 16, default: 'success' })
  outcome: 'success' | 'failure';

  @Column({ type: 'jsonb' })
  details: Record<string, unknown>;
}
