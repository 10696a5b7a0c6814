import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { clampLimit, DomainError } from '@rsa/common';
import { AuditActorType, AuditQueryService } from '@rsa/database';
import { uuidParam } from '../common/uuid-param.pipe';
import { AuditEventDto, AuditEventPageDto, ListAuditEventsQueryDto } from './dto/audit-event.dto';

/**
 * The audit trail, read-only: audit events are append-only (a database trigger refuses UPDATE and
 * DELETE), so this collection has no write routes.
 */
@ApiTags('Audit events')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('audit-events')
export class AuditEventsController {
  constructor(private readonly audit: AuditQueryService) {}

  @Get()
  @ApiOperation({
    summary: 'Search the audit trail',
    description:
      'Filters combine with AND: actor, actor_type, action (exact, or a prefix ending in `.` or `*`), target_type, target_id, outcome, request_id, ' +
      'time range [from, to). Newest first; cursor pagination on (occurred_at, id), `limit` ≤ 100.',
  })
  @ApiOkResponse({ type: AuditEventPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter; the failing field is named' })
  list(@Query() query: ListAuditEventsQueryDto): Promise<AuditEventPageDto> {
    // Compared here to the millisecond; PostgreSQL gets the strings, with their microseconds.
    if (query.from && query.to && new Date(query.from) > new Date(query.to)) {
      throw new DomainError('VALIDATION', 'from must not be after to', { field: 'from' });
    }
    return this.audit.list(
      {
        actorId: query.actor,
        actorType: query.actor_type as AuditActorType | undefined,
        action: query.action,
        targetType: query.target_type,
        targetId: query.target_id,
        outcome: query.outcome,
        requestId: query.request_id,
        from: query.from,
        to: query.to,
      },
      query.cursor,
      clampLimit(query.limit),
    );
  }

  @Get(':id')
  @ApiOperation({ summary: 'One audit event' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiOkResponse({ type: AuditEventDto })
  @ApiNotFoundResponse({ description: 'No such event' })
  get(@Param('id', uuidParam()) id: string): Promise<AuditEventDto> {
    return this.audit.get(id);
  }
}
