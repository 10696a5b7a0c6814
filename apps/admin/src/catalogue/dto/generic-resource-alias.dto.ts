import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsIn, IsString, IsUUID, Matches, MaxLength, MinLength, ValidateIf } from 'class-validator';
import type { AliasStatus } from '@rsa/database';
import type { AliasRecord } from '@rsa/resources';
import { ListQueryDto } from '../../common/list-query.dto';
import { SCOPE_PATTERN } from './generic-resource.dto';

const ALIAS_STATUSES: AliasStatus[] = ['active', 'gone'];
const Given = () => ValidateIf((_o, value) => value !== undefined);

export class CreateGenericResourceAliasDto {
  @ApiProperty({ format: 'uuid', description: 'The owning account (its id is the `sub` of its RSA tokens)' })
  @IsUUID()
  owner_account_id: string;

  @ApiProperty({ format: 'uuid', description: 'The generic resource (kind) this alias is one of' })
  @IsUUID()
  generic_resource_id: string;

  @ApiProperty({ description: "The resource's id at the upstream resource API (replaces `{id}` in the path template); unique per owner and kind", example: 'alice-checking', maxLength: 255 })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  external_id: string;

  @ApiProperty({ example: 'Alice Checking', maxLength: 255 })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  display_name: string;

  @ApiPropertyOptional({ enum: ALIAS_STATUSES, default: 'active' })
  @Given()
  @IsIn(ALIAS_STATUSES)
  status?: AliasStatus;

  @ApiPropertyOptional({
    description: "Scopes of the alias, each one of the generic resource's; default: all of them (as discovery does). Manage them later through /generic-resource-alias-scopes.",
    example: ['read'],
  })
  @Given()
  @IsArray()
  @ArrayMaxSize(20)
  @Matches(SCOPE_PATTERN, { each: true, message: 'each scope must be an OAuth scope token of 1–64 characters' })
  scopes?: string[];
}

export class UpdateGenericResourceAliasDto {
  @ApiPropertyOptional({ maxLength: 255 })
  @Given()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  external_id?: string;

  @ApiPropertyOptional({ maxLength: 255 })
  @Given()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  display_name?: string;

  @ApiPropertyOptional({ enum: ALIAS_STATUSES, description: '`gone` ends the active delegations of the alias (status `expired`); back to `active` does not revive them' })
  @Given()
  @IsIn(ALIAS_STATUSES)
  status?: AliasStatus;
}

export class ListGenericResourceAliasesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  owner_account_id?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  generic_resource_id?: string;

  @ApiPropertyOptional({ enum: ALIAS_STATUSES })
  @Given()
  @IsIn(ALIAS_STATUSES)
  status?: AliasStatus;

  @ApiPropertyOptional({ description: 'Exact external id' })
  @Given()
  @IsString()
  @MaxLength(255)
  external_id?: string;
}

export class GenericResourceAliasDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) owner_account_id: string;
  @ApiProperty({ format: 'uuid' }) generic_resource_id: string;
  @ApiProperty({ example: 'alice-checking' }) external_id: string;
  @ApiProperty({ example: 'Alice Checking' }) display_name: string;
  @ApiProperty({ enum: ALIAS_STATUSES, description: '`gone`: no longer at the upstream (or marked so); its delegations ended' }) status: AliasStatus;
  @ApiProperty({ example: ['read', 'write'] }) scopes: string[];
  @ApiProperty({ nullable: true, type: String, description: 'Last time discovery saw it upstream; null for aliases created here' }) last_seen_at: string | null;
  @ApiProperty() created_at: string;
  @ApiProperty() updated_at: string;

  static from(a: AliasRecord): GenericResourceAliasDto {
    return {
      id: a.id,
      owner_account_id: a.ownerAccountId,
      generic_resource_id: a.genericResourceId,
      external_id: a.externalId,
      display_name: a.displayName,
      status: a.status,
      scopes: a.scopes,
      last_seen_at: a.lastSeenAt ? a.lastSeenAt.toISOString() : null,
      created_at: a.createdAt.toISOString(),
      updated_at: a.updatedAt.toISOString(),
    };
  }
}

export class GenericResourceAliasPageDto {
  @ApiProperty({ type: [GenericResourceAliasDto] }) items: GenericResourceAliasDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
