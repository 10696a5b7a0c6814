import { Module } from '@nestjs/common';

/** Admin: audit-events (being built). */
@Module({})
export class AdminAuditEventsModule {}
