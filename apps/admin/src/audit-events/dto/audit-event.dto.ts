import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { ListQueryDto } from '../../common/list-query.dto';

/** A date and time with a zone, at most microseconds (what PostgreSQL keeps), e.g. `2026-01-01T00:00:00Z`. */
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$/;

const ACTOR_TYPES = ['user', 'admin', 'client', 'system', 'anonymous'];

export class ListAuditEventsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'Exact actor id: an account id for users, `admin:<8 hex>` for admin tokens', example: 'admin:1a2b3c4d' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  actor?: string;

  @ApiPropertyOptional({ enum: ACTOR_TYPES })
  @IsOptional()
  @IsIn(ACTOR_TYPES)
  actor_type?: string;

  @ApiPropertyOptional({
    description: 'Exact action (`client.created`), or every action with a prefix when the value ends with `.` or `*` (`delegation.`, `delegation.*`)',
    example: 'delegation.',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  action?: string;

  @ApiPropertyOptional({ description: 'Exact target type (`account`, `oauth_client`, `generic_resource_authorization`, `admin_route`, …)' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  target_type?: string;

  @ApiPropertyOptional({ description: 'Exact target id' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  target_id?: string;

  @ApiPropertyOptional({ enum: ['success', 'failure'] })
  @IsOptional()
  @IsIn(['success', 'failure'])
  outcome?: 'success' | 'failure';

  @ApiPropertyOptional({ description: 'Request id (the `request_id` of an error body, or the `X-Request-Id` header)' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  request_id?: string;

  @ApiPropertyOptional({ description: 'Events at or after this time: ISO 8601 date and time with a time zone, up to microseconds', example: '2026-01-01T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  @Matches(DATE_TIME, { message: 'from must be an ISO 8601 date and time with a time zone (Z or ±hh:mm), e.g. 2026-01-01T00:00:00Z' })
  from?: string;

  @ApiPropertyOptional({ description: 'Events strictly before this time: ISO 8601 date and time with a time zone, up to microseconds', example: '2026-02-01T00:00:00Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  @Matches(DATE_TIME, { message: 'to must be an ISO 8601 date and time with a time zone (Z or ±hh:mm), e.g. 2026-01-01T00:00:00Z' })
  to?: string;
}

export class AuditEventDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'date-time', description: 'UTC, to the microsecond; events of one transaction share it' }) occurred_at: string;
  @ApiProperty({ enum: ACTOR_TYPES }) actor_type: string;
  @ApiProperty({ nullable: true, type: String }) actor_id: string | null;
  @ApiProperty({ example: 'client.created' }) action: string;
  @ApiProperty({ nullable: true, type: String }) target_type: string | null;
  @ApiProperty({ nullable: true, type: String }) target_id: string | null;
  @ApiProperty({ nullable: true, type: String }) request_id: string | null;
  @ApiProperty({ enum: ['success', 'failure'] }) outcome: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'Context for operators; never a token or secret' })
  details: Record<string, unknown>;
}

export class AuditEventPageDto {
  @ApiProperty({ type: [AuditEventDto] }) items: AuditEventDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next (older) page; null on the last page' })
  next_cursor: string | null;
}
