import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';

export class ListResourcesQueryDto {
  @ApiPropertyOptional({ description: "Only resources of this owner (an RSA `sub`; the caller's own sub gives only `owned`)", format: 'uuid' })
  @IsOptional()
  @IsUUID()
  owner?: string;

  @ApiPropertyOptional({ description: 'Only resources of this type (a generic resource identifier)', example: 'account' })
  @IsOptional()
  @IsString()
  @Matches(/^[a-z0-9_.-]{1,64}$/i)
  type?: string;

  @ApiPropertyOptional({ description: '`next_cursor` of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(512)
  cursor?: string;

  @ApiPropertyOptional({ description: 'Page size (1–100, default 50)', minimum: 1, maximum: 100, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;
}

export class ResourceDto {
  @ApiProperty({ format: 'uuid', example: '0f2c7d3e-6a8b-4c1e-9d5f-2b7a1c3e4f50' })
  id: string;

  @ApiProperty({ description: 'The generic resource identifier', example: 'account' })
  type: string;

  @ApiProperty({ example: 'Alice Checking' })
  name: string;

  @ApiProperty({ description: 'What the caller may do with it (owner: every scope of the resource)', example: ['read'] })
  scopes: string[];
}

export class OwnerDto {
  @ApiProperty({ description: "The owner's RSA subject", format: 'uuid' })
  sub: string;

  @ApiProperty({ nullable: true, type: String, example: 'Alice Anderson' })
  name: string | null;

  @ApiProperty({ nullable: true, type: String, example: 'alice@example.com' })
  email: string | null;
}

export class DelegatedGroupDto {
  @ApiProperty({ type: OwnerDto })
  owner: OwnerDto;

  @ApiProperty({
    enum: ['available', 'unavailable'],
    description: "Whether the owner's upstream tokens can be used right now (from the token vault; no upstream call)",
  })
  status: 'available' | 'unavailable';

  @ApiPropertyOptional({ enum: ['owner_login_required', 'upstream_error', 'upstream_timeout'] })
  reason?: string;

  @ApiProperty({ type: [ResourceDto] })
  resources: ResourceDto[];
}

export class ResourcesPageDto {
  @ApiProperty({ type: [ResourceDto], description: "The caller's own resources" })
  owned: ResourceDto[];

  @ApiProperty({ type: [DelegatedGroupDto], description: 'Resources other users delegated to the caller, by owner' })
  delegated: DelegatedGroupDto[];

  @ApiProperty({ nullable: true, type: String, description: 'Pass as `cursor` for the next page; null on the last page' })
  next_cursor: string | null;
}

export class ResourceDetailDto extends ResourceDto {
  @ApiProperty({ enum: ['owner', 'delegate'], description: "The caller's relation to the resource" })
  role: 'owner' | 'delegate';

  @ApiProperty({ type: OwnerDto })
  owner: OwnerDto;
}
