import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, Matches, MaxLength, MinLength, ValidateIf } from 'class-validator';
import type { GenericResourceEntity } from '@rsa/database';
import { DISCOVERY_PATH_PATTERN, PATH_TEMPLATE_PATTERN } from '@rsa/resources';
import { ListQueryDto } from '../../common/list-query.dto';

/** An OAuth scope-token (RFC 6749 §3.3), at most 64 characters. */
export const SCOPE_PATTERN = /^[\x21\x23-\x5B\x5D-\x7E]{1,64}$/;
const IDENTIFIER_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Present (not undefined): validate it. Lets PATCH bodies omit fields but never set a required one to null. */
const Given = () => ValidateIf((_o, value) => value !== undefined);
/** Present and not null: validate it (nullable fields). */
const GivenNotNull = () => ValidateIf((_o, value) => value !== undefined && value !== null);

export class CreateGenericResourceDto {
  @ApiProperty({ description: 'Stable machine name, shown to users as the resource `type`; unique', example: 'account', pattern: IDENTIFIER_PATTERN.source })
  @IsString()
  @Matches(IDENTIFIER_PATTERN, { message: 'identifier must be 1–64 of a-z, 0-9, ".", "_", "-", starting with a letter or digit' })
  identifier: string;

  @ApiProperty({ example: 'Bank account', maxLength: 255 })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  name: string;

  @ApiPropertyOptional({ nullable: true, type: String, maxLength: 2000, example: 'A bank-style account: details, transactions and transfers.' })
  @GivenNotNull()
  @IsString()
  @MaxLength(2000)
  description?: string | null;

  @ApiProperty({
    description: 'Path of one resource at the upstream resource API (after UPSTREAM_RESOURCE_BASE_URL): starts with `/`, contains `{id}` (the alias `external_id`) exactly once; no query or fragment',
    example: '/accounts/{id}',
    maxLength: 512,
  })
  @IsString()
  @MaxLength(512)
  @Matches(PATH_TEMPLATE_PATTERN, { message: 'path_template must start with "/" and contain "{id}" exactly once (no query, fragment or dot segments)' })
  path_template: string;

  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: "Path that lists the signed-in user's resources of this kind (`{ items: [{ id, name }] }` or an array); null = no discovery, aliases come from this API only",
    example: '/accounts',
    maxLength: 512,
  })
  @GivenNotNull()
  @IsString()
  @MaxLength(512)
  @Matches(DISCOVERY_PATH_PATTERN, { message: 'discovery_path must start with "/" (no fragment, braces or dot segments)' })
  discovery_path?: string | null;

  @ApiProperty({ description: 'Scopes an alias of this kind can carry (RFC 6749 scope tokens)', example: ['read', 'write'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE_PATTERN, { each: true, message: 'each scope must be an OAuth scope token of 1–64 characters' })
  scopes: string[];
}

export class UpdateGenericResourceDto {
  @ApiPropertyOptional({ example: 'account', pattern: IDENTIFIER_PATTERN.source })
  @Given()
  @IsString()
  @Matches(IDENTIFIER_PATTERN, { message: 'identifier must be 1–64 of a-z, 0-9, ".", "_", "-", starting with a letter or digit' })
  identifier?: string;

  @ApiPropertyOptional({ maxLength: 255 })
  @Given()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  name?: string;

  @ApiPropertyOptional({ nullable: true, type: String, maxLength: 2000 })
  @GivenNotNull()
  @IsString()
  @MaxLength(2000)
  description?: string | null;

  @ApiPropertyOptional({ example: '/accounts/{id}', maxLength: 512 })
  @Given()
  @IsString()
  @MaxLength(512)
  @Matches(PATH_TEMPLATE_PATTERN, { message: 'path_template must start with "/" and contain "{id}" exactly once (no query, fragment or dot segments)' })
  path_template?: string;

  @ApiPropertyOptional({ nullable: true, type: String, example: '/accounts', maxLength: 512 })
  @GivenNotNull()
  @IsString()
  @MaxLength(512)
  @Matches(DISCOVERY_PATH_PATTERN, { message: 'discovery_path must start with "/" (no fragment, braces or dot segments)' })
  discovery_path?: string | null;

  @ApiPropertyOptional({ description: 'Replaces the list. A scope still carried by an alias cannot be removed (409).', example: ['read', 'write'] })
  @Given()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @Matches(SCOPE_PATTERN, { each: true, message: 'each scope must be an OAuth scope token of 1–64 characters' })
  scopes?: string[];
}

export class ListGenericResourcesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'Exact identifier' })
  @Given()
  @IsString()
  @MaxLength(64)
  identifier?: string;

  @ApiPropertyOptional({ description: 'Case-insensitive substring of identifier or name' })
  @Given()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  q?: string;

  @ApiPropertyOptional({ description: 'Only kinds that support this scope' })
  @Given()
  @Matches(SCOPE_PATTERN)
  scope?: string;
}

export class GenericResourceDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ example: 'account' }) identifier: string;
  @ApiProperty({ example: 'Bank account' }) name: string;
  @ApiProperty({ nullable: true, type: String }) description: string | null;
  @ApiProperty({ example: '/accounts/{id}' }) path_template: string;
  @ApiProperty({ nullable: true, type: String, example: '/accounts' }) discovery_path: string | null;
  @ApiProperty({ example: ['read', 'write'] }) scopes: string[];
  @ApiProperty() created_at: string;
  @ApiProperty() updated_at: string;

  static from(r: GenericResourceEntity): GenericResourceDto {
    return {
      id: r.id,
      identifier: r.identifier,
      name: r.name,
      description: r.description,
      path_template: r.pathTemplate,
      discovery_path: r.discoveryPath,
      scopes: r.scopes,
      created_at: r.createdAt.toISOString(),
      updated_at: r.updatedAt.toISOString(),
    };
  }
}

export class GenericResourcePageDto {
  @ApiProperty({ type: [GenericResourceDto] }) items: GenericResourceDto[];
  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page' }) next_cursor: string | null;
}
