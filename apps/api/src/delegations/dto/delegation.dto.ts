import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsDefined,
  IsEmail,
  IsIn,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';

const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;

export class DelegateDto {
  @ApiPropertyOptional({ description: "The delegate's RSA subject (`sub` of their RSA tokens)", format: 'uuid' })
  @IsOptional()
  @IsUUID()
  sub?: string;

  @ApiPropertyOptional({
    description:
      "The delegate's email. If no account has it verified yet, the delegation waits (`pending`) and binds at the first login whose upstream asserts that email as verified.",
    example: 'bob@example.com',
  })
  @IsOptional()
  @IsEmail()
  @MaxLength(320)
  email?: string;
}

export class CreateDelegationDto {
  @ApiProperty({ description: 'Ids of your own resources (aliases) to delegate', example: ['0f2c7d3e-6a8b-4c1e-9d5f-2b7a1c3e4f50'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @IsUUID('all', { each: true })
  aliases: string[];

  @ApiProperty({ description: 'Scopes to grant; each must be offered by every listed resource', example: ['read'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE, { each: true })
  scopes: string[];

  @ApiPropertyOptional({ description: 'When the delegation ends (ISO 8601, in the future); none = until revoked', example: '2027-01-31T23:59:59Z' })
  @IsOptional()
  @IsISO8601({ strict: true })
  expires_at?: string;

  @ApiProperty({ type: DelegateDto, description: 'Exactly one of `sub` or `email`' })
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => DelegateDto)
  delegate: DelegateDto;
}

export class UpdateDelegationDto {
  @ApiPropertyOptional({ description: 'The new scopes: a non-empty subset of the granted ones (narrowing only)', example: ['read'] })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE, { each: true })
  scopes?: string[];

  @ApiPropertyOptional({ description: 'A new expiry in the future, or null for none', nullable: true, type: String })
  @IsOptional()
  @ValidateIf((_o, value) => value !== null)
  @IsISO8601({ strict: true })
  expires_at?: string | null;
}

export class ListDelegationsQueryDto {
  @ApiProperty({ enum: ['granted', 'received'], description: '`granted`: delegations you gave; `received`: delegations to you' })
  @IsIn(['granted', 'received'])
  direction: 'granted' | 'received';

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 100, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;
}

class DelegationAliasDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'account' }) type: string;
  @ApiProperty({ example: 'Alice Checking' }) name: string;
}

class DelegationPartyDto {
  @ApiProperty({ nullable: true, type: String, format: 'uuid', description: 'RSA subject; null while pending' }) sub: string | null;
  @ApiProperty({ nullable: true, type: String }) name: string | null;
  @ApiProperty({ nullable: true, type: String }) email: string | null;
}

export class DelegationDto {
  @ApiProperty({ format: 'uuid' }) id: string;

  @ApiProperty({
    enum: ['active', 'pending', 'revoked', 'expired'],
    description: '`pending`: addressed to an email no verified account has yet; `expired`: past `expires_at`, or its resource is gone',
  })
  status: string;

  @ApiProperty({ type: DelegationAliasDto }) alias: DelegationAliasDto;
  @ApiProperty({ type: DelegationPartyDto }) owner: DelegationPartyDto;
  @ApiProperty({ type: DelegationPartyDto }) delegate: DelegationPartyDto;
  @ApiProperty({ example: ['read'] }) scopes: string[];
  @ApiProperty({ nullable: true, type: String }) expires_at: string | null;
  @ApiProperty() created_at: string;
  @ApiProperty({ nullable: true, type: String }) revoked_at: string | null;
}

export class DelegationPageDto {
  @ApiProperty({ type: [DelegationDto] }) items: DelegationDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
