import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { AuditActorType, AuditEventEntity } from './entities';

export interface AuditEventInput {
  actorType: AuditActorType;
  actorId?: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  requestId?: string | null;
  outcome?: 'success' | 'failure';
  /** Context for operators; must never contain token or secret values. */
  details?: Record<string, unknown>;
}

/** Writes audit events. Pass the transaction's manager so the event commits with the change it records. */
@Injectable()
export class AuditService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async record(event: AuditEventInput, manager: EntityManager = this.dataSource.manager): Promise<void> {
    await manager.insert(AuditEventEntity, {
      actorType: event.actorType,
      actorId: event.actorId ?? null,
      action: event.action,
      targetType: event.targetType ?? null,
      targetId: event.targetId ?? null,
      requestId: event.requestId ?? null,
      outcome: event.outcome ?? 'success',
      details: (event.details ?? {}) as AuditEventEntity['details'] & object,
    });
  }
}
