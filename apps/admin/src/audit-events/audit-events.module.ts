import { Module } from '@nestjs/common';
import { AuditQueryService } from '@rsa/database';
import { AuditEventsController } from './audit-events.controller';

/** Admin: the audit trail (`/audit-events`), read-only. */
@Module({
  controllers: [AuditEventsController],
  providers: [AuditQueryService],
})
export class AdminAuditEventsModule {}
