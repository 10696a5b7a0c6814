import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsEmail, IsIn, IsISO8601, IsString, IsUUID, Matches, MaxLength, ValidateIf } from 'class-validator';
import type { DelegationRecord, EffectiveDelegationStatus } from '@rsa/delegation';
import { ListQueryDto } from '../../common/list-query.dto';

/** An OAuth scope-token (RFC 6749 §3.3), at most 64 characters. */
export const SCOPE_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const STATUSES: EffectiveDelegationStatus[] = ['active', 'pending', 'revoked', 'expired'];
const Given = () => ValidateIf((_o, value) => value !== undefined);
const GivenNotNull = () => ValidateIf((_o, value) => value !== undefined && value !== null);

export class CreateGenericResourceAuthorizationDto {
  @ApiProperty({ format: 'uuid', description: 'The owner on whose behalf the delegation is made; must own the alias' })
  @IsUUID()
  owner_account_id: string;

  @ApiProperty({ format: 'uuid', description: 'The alias (one of the owner’s active aliases)' })
  @IsUUID()
  alias_id: string;

  @ApiProperty({ description: 'Scopes to grant: a non-empty subset of the alias’s scopes', example: ['read'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE_PATTERN, { each: true, message: 'each scope must be an OAuth scope token of 1–64 characters' })
  scopes: string[];

  @ApiPropertyOptional({ format: 'uuid', description: 'The delegate’s account id. Exactly one of `delegate_account_id` or `delegate_email`.' })
  @Given()
  @IsUUID()
  delegate_account_id?: string;

  @ApiPropertyOptional({
    description: 'The delegate’s email: bound at once to an account that has it verified, else `pending` until such a login. Exactly one of `delegate_account_id` or `delegate_email`.',
    example: 'bob@example.com',
  })
  @Given()
  @IsEmail()
  @MaxLength(320)
  delegate_email?: string;

  @ApiPropertyOptional({ nullable: true, type: String, description: 'When it ends (ISO 8601, in the future); none = until revoked', example: '2027-01-31T23:59:59Z' })
  @GivenNotNull()
  @IsISO8601({ strict: true })
  expires_at?: string | null;
}

export class UpdateGenericResourceAuthorizationDto {
  @ApiPropertyOptional({ description: 'Replaces the granted scopes: any non-empty subset of the alias’s scopes (operators may widen, owners only narrow)', example: ['read'] })
  @Given()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE_PATTERN, { each: true, message: 'each scope must be an OAuth scope token of 1–64 characters' })
  scopes?: string[];

  @ApiPropertyOptional({ nullable: true, type: String, description: 'A new expiry in the future, or null for none' })
  @GivenNotNull()
  @IsISO8601({ strict: true })
  expires_at?: string | null;

  @ApiPropertyOptional({ enum: ['revoked'], description: '`revoked` ends the delegation (alone, without other changes); the row stays' })
  @Given()
  @IsIn(['revoked'])
  status?: 'revoked';
}

export class ListGenericResourceAuthorizationsQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  owner_account_id?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  delegate_account_id?: string;

  @ApiPropertyOptional({ description: 'The email a delegation was addressed to (case-insensitive)' })
  @Given()
  @IsString()
  @MaxLength(320)
  delegate_email?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  alias_id?: string;

  @ApiPropertyOptional({ enum: STATUSES, description: 'Effective status: `expired` includes active rows past `expires_at`; `pending` = addressed to an email not yet bound' })
  @Given()
  @IsIn(STATUSES)
  status?: EffectiveDelegationStatus;
}

export class GenericResourceAuthorizationDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: STATUSES, description: 'Effective status (an active row past `expires_at` is `expired`)' }) status: EffectiveDelegationStatus;
  @ApiProperty({ format: 'uuid' }) alias_id: string;
  @ApiProperty({ example: 'account', description: 'Identifier of the alias’s generic resource' }) generic_resource: string;
  @ApiProperty({ format: 'uuid' }) owner_account_id: string;
  @ApiProperty({ nullable: true, type: String, format: 'uuid', description: 'Null while pending' }) delegate_account_id: string | null;
  @ApiProperty({ nullable: true, type: String }) delegate_email: string | null;
  @ApiProperty({ example: ['read'] }) scopes: string[];
  @ApiProperty({ nullable: true, type: String }) expires_at: string | null;
  @ApiProperty({ example: 'admin:1a2b3c4d', description: '`account:<id>` or `admin:<token id>`' }) created_by: string;
  @ApiProperty() created_at: string;
  @ApiProperty() updated_at: string;
  @ApiProperty({ nullable: true, type: String }) revoked_at: string | null;
  @ApiProperty({ nullable: true, type: String }) revoked_by: string | null;

  static from(r: DelegationRecord): GenericResourceAuthorizationDto {
    return {
      id: r.id,
      status: r.status,
      alias_id: r.aliasId,
      generic_resource: r.genericResource,
      owner_account_id: r.ownerAccountId,
      delegate_account_id: r.delegateAccountId,
      delegate_email: r.delegateEmail,
      scopes: r.scopes,
      expires_at: r.expiresAt ? r.expiresAt.toISOString() : null,
      created_by: r.createdBy,
      created_at: r.createdAt.toISOString(),
      updated_at: r.updatedAt.toISOString(),
      revoked_at: r.revokedAt ? r.revokedAt.toISOString() : null,
      revoked_by: r.revokedBy,
    };
  }
}

export class GenericResourceAuthorizationPageDto {
  @ApiProperty({ type: [GenericResourceAuthorizationDto] }) items: GenericResourceAuthorizationDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
