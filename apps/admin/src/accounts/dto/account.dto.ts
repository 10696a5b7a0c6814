import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { ListQueryDto } from '../../common/list-query.dto';

const TOKEN_STATUSES = ['valid', 'refreshable', 'reauth_required', 'refresh_failing', 'revoked'];

export class ListAccountsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'The RSA subject (account id, a UUID) or the upstream `sub`; exact match' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  sub?: string;

  @ApiPropertyOptional({ description: 'Email address; exact match, case-insensitive', example: 'alice@example.com' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(320)
  email?: string;
}

export class AccountDto {
  @ApiProperty({ format: 'uuid', description: 'The RSA subject (`sub` of RSA-issued tokens)' }) id: string;
  @ApiProperty({ description: 'Issuer of the upstream provider' }) provider: string;
  @ApiProperty({ description: 'The upstream provider’s subject' }) sub: string;
  @ApiProperty({ nullable: true, type: String }) email: string | null;
  @ApiProperty() email_verified: boolean;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({ nullable: true, type: String }) given_name: string | null;
  @ApiProperty({ nullable: true, type: String }) family_name: string | null;
  @ApiProperty({ format: 'date-time' }) first_login_at: string;
  @ApiProperty({ format: 'date-time' }) last_login_at: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'Last resource discovery at the upstream' })
  resources_synced_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
  @ApiProperty({ enum: TOKEN_STATUSES, nullable: true, description: 'Effective status of the upstream tokens; null when none are stored' })
  token_status: string | null;
}

export class AccountPageDto {
  @ApiProperty({ type: [AccountDto] }) items: AccountDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page' }) next_cursor: string | null;
}

export class AccountTokenSummaryDto {
  @ApiProperty({ enum: TOKEN_STATUSES }) status: string;
  @ApiProperty({ description: 'Scopes granted by the upstream' }) scope: string;
  @ApiProperty({ format: 'date-time' }) access_token_expires_at: string;
  @ApiProperty() has_refresh_token: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String, description: 'Known only when the upstream says so' })
  refresh_token_expires_at: string | null;
  @ApiProperty() has_id_token: boolean;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) last_refresh_at: string | null;
  @ApiProperty({ nullable: true, enum: ['success', 'invalid_grant', 'upstream_timeout', 'upstream_error'] }) last_refresh_outcome: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Error code and description from the upstream (never a token)' })
  last_refresh_error: string | null;
  @ApiProperty() consecutive_failures: number;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

export class ResourceCountsDto {
  @ApiProperty() active: number;
  @ApiProperty({ description: 'No longer found at the upstream' }) gone: number;
}

export class DelegationCountsDto {
  @ApiProperty() active: number;
  @ApiProperty({ description: 'Addressed to an email not yet bound to an account (given only)' }) pending: number;
  @ApiProperty() revoked: number;
  @ApiProperty({ description: 'Past their expiry' }) expired: number;
}

export class AccountDelegationCountsDto {
  @ApiProperty({ type: DelegationCountsDto, description: 'Delegations this account gave (as owner)' }) given: DelegationCountsDto;
  @ApiProperty({ type: DelegationCountsDto, description: 'Delegations this account received (as delegate)' }) received: DelegationCountsDto;
}

export class AccountDetailDto extends AccountDto {
  @ApiProperty({ type: AccountTokenSummaryDto, nullable: true, description: 'Upstream token metadata — never a token value' })
  tokens: AccountTokenSummaryDto | null;
  @ApiProperty({ type: ResourceCountsDto }) resources: ResourceCountsDto;
  @ApiProperty({ type: AccountDelegationCountsDto }) delegations: AccountDelegationCountsDto;
}
