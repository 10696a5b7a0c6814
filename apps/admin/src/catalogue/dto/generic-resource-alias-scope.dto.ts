import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsUUID, Matches, ValidateIf } from 'class-validator';
import type { GenericResourceAliasScopeEntity } from '@rsa/database';
import { ListQueryDto } from '../../common/list-query.dto';
import { SCOPE_PATTERN } from './generic-resource.dto';

const Given = () => ValidateIf((_o, value) => value !== undefined);

export class CreateGenericResourceAliasScopeDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  alias_id: string;

  @ApiProperty({ description: "One of the alias's generic resource scopes", example: 'write' })
  @Matches(SCOPE_PATTERN, { message: 'scope must be an OAuth scope token of 1–64 characters' })
  scope: string;
}

export class UpdateGenericResourceAliasScopeDto {
  @ApiProperty({ description: "Another of the generic resource's scopes; the old one is taken from the alias's delegations", example: 'read' })
  @Matches(SCOPE_PATTERN, { message: 'scope must be an OAuth scope token of 1–64 characters' })
  scope: string;
}

export class ListGenericResourceAliasScopesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  alias_id?: string;

  @ApiPropertyOptional()
  @Given()
  @Matches(SCOPE_PATTERN)
  scope?: string;
}

export class GenericResourceAliasScopeDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) alias_id: string;
  @ApiProperty({ example: 'read' }) scope: string;

  static from(s: GenericResourceAliasScopeEntity): GenericResourceAliasScopeDto {
    return { id: s.id, alias_id: s.aliasId, scope: s.scope };
  }
}

export class GenericResourceAliasScopePageDto {
  @ApiProperty({ type: [GenericResourceAliasScopeDto] }) items: GenericResourceAliasScopeDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
