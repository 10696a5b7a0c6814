import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { TOKEN_STATUSES, REFRESH_OUTCOMES, type RefreshOutcome, type StoredTokenStatus, type TokenStatus } from '@rsa/database';
import type { AtRiskReason, RevocationStep } from '@rsa/auth';
import { ListQueryDto } from '../../common/list-query.dto';

const ONE_YEAR = 31_536_000;
const FAILURE_REASONS = ['owner_login_required', 'upstream_error', 'upstream_timeout'];
const AT_RISK_REASONS: AtRiskReason[] = [
  'no_tokens',
  'reauth_required',
  'revoked',
  'refresh_failing',
  'access_token_expiring_without_refresh_token',
  'refresh_token_expiring',
];
const REVOCATION_STEPS: RevocationStep[] = ['revoked', 'unsupported', 'failed', 'absent'];

const toBoolean = ({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value);

const STATUS_DESCRIPTION =
  '`valid`: access token usable. `refreshable`: access token expired, refresh token alive (refreshed on the next use). ' +
  '`reauth_required`: the upstream refused the refresh token or there is none left; only a new login of the owner helps. ' +
  '`refresh_failing`: the last refresh failed for a transient reason (upstream error or timeout); retried on the next use. ' +
  '`revoked`: an administrator revoked the tokens; only a new login helps.';

export class ListTokenHealthAccountsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ enum: TOKEN_STATUSES, description: STATUS_DESCRIPTION })
  @IsOptional()
  @IsIn(TOKEN_STATUSES)
  status?: TokenStatus;

  @ApiPropertyOptional({ type: Boolean, description: 'Only accounts that own (`true`) or do not own (`false`) an active, unexpired delegation' })
  @IsOptional()
  @Transform(toBoolean)
  @IsBoolean()
  has_active_delegations?: boolean;

  @ApiPropertyOptional({ description: 'Only accounts whose access token expires within this many seconds (and has not expired yet)', minimum: 0, maximum: ONE_YEAR })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(ONE_YEAR)
  expiring_within?: number;
}

export class AtRiskQueryDto extends ListQueryDto {
  @ApiPropertyOptional({
    description: 'Look-ahead in seconds: also list delegations whose owner’s tokens will stop being usable within it (0: only those unusable now)',
    minimum: 0,
    maximum: ONE_YEAR,
    default: 86400,
  })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(ONE_YEAR)
  within?: number;
}

export class TokenStatusCountDto {
  @ApiProperty({ description: 'Accounts with this status' })
  accounts: number;

  @ApiProperty({ description: 'Active, unexpired delegations whose owner has this status' })
  active_delegations: number;
}

export class TokenHealthByStatusDto {
  @ApiProperty({ type: TokenStatusCountDto }) valid: TokenStatusCountDto;
  @ApiProperty({ type: TokenStatusCountDto }) refreshable: TokenStatusCountDto;
  @ApiProperty({ type: TokenStatusCountDto }) reauth_required: TokenStatusCountDto;
  @ApiProperty({ type: TokenStatusCountDto }) refresh_failing: TokenStatusCountDto;
  @ApiProperty({ type: TokenStatusCountDto }) revoked: TokenStatusCountDto;
}

export class TokenHealthSummaryDto {
  @ApiProperty({ format: 'date-time' })
  generated_at: string;

  @ApiProperty({ type: TokenHealthByStatusDto, description: STATUS_DESCRIPTION })
  by_status: TokenHealthByStatusDto;

  @ApiProperty({ type: TokenStatusCountDto })
  totals: TokenStatusCountDto;
}

/** One account's upstream token state. Never a token value or a ciphertext. */
export class AccountTokenHealthDto {
  @ApiProperty({ format: 'uuid', description: 'The RSA account id (the `sub` of RSA tokens)' })
  account_id: string;

  @ApiProperty({ description: 'The upstream subject' })
  sub: string;

  @ApiProperty({ type: String, nullable: true })
  email: string | null;

  @ApiProperty({ type: String, nullable: true })
  name: string | null;

  @ApiProperty({ enum: TOKEN_STATUSES, description: STATUS_DESCRIPTION })
  status: TokenStatus;

  @ApiProperty({ enum: ['valid', 'refresh_failing', 'reauth_required', 'revoked'], description: 'The stored status `status` is derived from' })
  stored_status: StoredTokenStatus;

  @ApiProperty({ description: '`valid` or `refreshable`: delegates of this owner are served' })
  usable: boolean;

  @ApiPropertyOptional({ enum: FAILURE_REASONS, description: 'Why not usable, as delegates see it (`related` claim, /resources)' })
  reason?: string;

  @ApiProperty({ description: 'Scopes granted by the upstream' })
  scope: string;

  @ApiProperty({ format: 'date-time' })
  access_token_expires_at: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Known only when the upstream sends `refresh_expires_in`' })
  refresh_token_expires_at: string | null;

  @ApiProperty()
  has_refresh_token: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Last refresh attempt (successful or not)' })
  last_refresh_at: string | null;

  @ApiProperty({ enum: REFRESH_OUTCOMES, nullable: true })
  last_refresh_outcome: RefreshOutcome | null;

  @ApiProperty({ type: String, nullable: true, description: 'The upstream error of the last failed refresh (never a token value)' })
  last_refresh_error: string | null;

  @ApiProperty({ description: 'Failed refreshes since the last success' })
  consecutive_failures: number;

  @ApiProperty({ description: 'An instance is refreshing these tokens right now' })
  refresh_in_progress: boolean;

  @ApiProperty({ description: 'Active, unexpired delegations this account has granted' })
  active_delegations: number;

  @ApiProperty({ format: 'date-time' })
  updated_at: string;
}

export class AccountTokenHealthPageDto {
  @ApiProperty({ type: [AccountTokenHealthDto] })
  items: AccountTokenHealthDto[];

  @ApiProperty({ type: String, nullable: true, description: 'Pass as `cursor` for the next page; null on the last page' })
  next_cursor: string | null;
}

export class UpstreamRevocationDto {
  @ApiProperty({ enum: REVOCATION_STEPS, description: '`revoked` at the upstream (RFC 7009), `unsupported` (no revocation endpoint), `failed` (deleted locally anyway), `absent` (no such token)' })
  refresh_token: RevocationStep;

  @ApiProperty({ enum: REVOCATION_STEPS })
  access_token: RevocationStep;
}

export class RevokedAccountTokensDto extends AccountTokenHealthDto {
  @ApiProperty({ type: UpstreamRevocationDto })
  upstream_revocation: UpstreamRevocationDto;
}

export class AtRiskDelegationInfoDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) expires_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ type: String, format: 'uuid', nullable: true }) delegate_account_id: string | null;
  @ApiProperty({ type: String, nullable: true, description: 'Set for delegations addressed by email' }) delegate_email: string | null;
}

export class AtRiskResourceDto {
  @ApiProperty({ format: 'uuid' }) alias_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ description: 'Identifier of the generic resource' }) type: string;
}

export class AtRiskOwnerDto {
  @ApiProperty({ format: 'uuid' }) account_id: string;
  @ApiProperty() sub: string;
  @ApiProperty({ type: String, nullable: true }) email: string | null;
  @ApiProperty({ type: String, nullable: true }) name: string | null;
  @ApiProperty({ enum: TOKEN_STATUSES }) token_status: TokenStatus;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) access_token_expires_at: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) refresh_token_expires_at: string | null;
  @ApiProperty() has_refresh_token: boolean;
  @ApiProperty({ enum: REFRESH_OUTCOMES, nullable: true }) last_refresh_outcome: RefreshOutcome | null;
  @ApiProperty() consecutive_failures: number;
}

export class AtRiskDto {
  @ApiProperty({
    enum: AT_RISK_REASONS,
    description:
      'Unusable now: `no_tokens`, `reauth_required`, `revoked`, `refresh_failing`. About to be: `access_token_expiring_without_refresh_token`, `refresh_token_expiring`.',
  })
  reason: AtRiskReason;

  @ApiProperty({ description: 'False: delegates are refused this owner’s resources right now' })
  usable_now: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the owner’s tokens stop being usable (null: already not)' })
  unusable_from: string | null;
}

export class AtRiskDelegationDto {
  @ApiProperty({ type: AtRiskDelegationInfoDto }) delegation: AtRiskDelegationInfoDto;
  @ApiProperty({ type: AtRiskResourceDto }) resource: AtRiskResourceDto;
  @ApiProperty({ type: AtRiskOwnerDto }) owner: AtRiskOwnerDto;
  @ApiProperty({ type: AtRiskDto }) risk: AtRiskDto;
}

export class AtRiskDelegationPageDto {
  @ApiProperty({ type: [AtRiskDelegationDto] })
  items: AtRiskDelegationDto[];

  @ApiProperty({ type: String, nullable: true })
  next_cursor: string | null;
}
