import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsUUID, Matches, ValidateIf } from 'class-validator';
import type { GenericResourceAuthorizationScopeEntity } from '@rsa/database';
import { ListQueryDto } from '../../common/list-query.dto';
import { SCOPE_PATTERN } from './generic-resource-authorization.dto';

const Given = () => ValidateIf((_o, value) => value !== undefined);

export class CreateGenericResourceAuthorizationScopeDto {
  @ApiProperty({ format: 'uuid', description: 'An active delegation' })
  @IsUUID()
  authorization_id: string;

  @ApiProperty({ description: 'A scope of the delegated alias, not granted yet', example: 'write' })
  @Matches(SCOPE_PATTERN, { message: 'scope must be an OAuth scope token of 1–64 characters' })
  scope: string;
}

export class UpdateGenericResourceAuthorizationScopeDto {
  @ApiProperty({ description: 'Another scope of the delegated alias, not granted yet', example: 'read' })
  @Matches(SCOPE_PATTERN, { message: 'scope must be an OAuth scope token of 1–64 characters' })
  scope: string;
}

export class ListGenericResourceAuthorizationScopesQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Given()
  @IsUUID()
  authorization_id?: string;

  @ApiPropertyOptional()
  @Given()
  @Matches(SCOPE_PATTERN)
  scope?: string;
}

export class GenericResourceAuthorizationScopeDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) authorization_id: string;
  @ApiProperty({ example: 'read' }) scope: string;

  static from(s: GenericResourceAuthorizationScopeEntity): GenericResourceAuthorizationScopeDto {
    return { id: s.id, authorization_id: s.authorizationId, scope: s.scope };
  }
}

export class GenericResourceAuthorizationScopePageDto {
  @ApiProperty({ type: [GenericResourceAuthorizationScopeDto] }) items: GenericResourceAuthorizationScopeDto[];
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
