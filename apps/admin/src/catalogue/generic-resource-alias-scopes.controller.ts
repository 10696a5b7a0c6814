import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { clampLimit } from '@rsa/common';
import { CatalogueAdminService } from '@rsa/resources';
import { AdminActor, type AdminContext } from '../common/admin-actor';
import { uuidParam } from '../common/uuid-param.pipe';
import {
  CreateGenericResourceAliasScopeDto,
  GenericResourceAliasScopeDto,
  GenericResourceAliasScopePageDto,
  ListGenericResourceAliasScopesQueryDto,
  UpdateGenericResourceAliasScopeDto,
} from './dto/generic-resource-alias-scope.dto';

/** The scopes available on each alias: what its owner has and may delegate. */
@ApiTags('Catalogue')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('generic-resource-alias-scopes')
export class GenericResourceAliasScopesController {
  constructor(private readonly catalogue: CatalogueAdminService) {}

  @Get()
  @ApiOperation({ summary: 'List alias scopes', description: 'Ordered by id; cursor pagination (`limit` ≤ 100). Filters: `alias_id`, `scope`.' })
  @ApiOkResponse({ type: GenericResourceAliasScopePageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor; the field is named' })
  async list(@Query() query: ListGenericResourceAliasScopesQueryDto): Promise<GenericResourceAliasScopePageDto> {
    const page = await this.catalogue.listAliasScopes({ aliasId: query.alias_id, scope: query.scope }, { cursor: query.cursor, limit: clampLimit(query.limit) });
    return { items: page.items.map(GenericResourceAliasScopeDto.from), next_cursor: page.next_cursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One alias scope' })
  @ApiOkResponse({ type: GenericResourceAliasScopeDto })
  @ApiNotFoundResponse({ description: 'No such alias scope' })
  async get(@Param('id', uuidParam()) id: string): Promise<GenericResourceAliasScopeDto> {
    return GenericResourceAliasScopeDto.from(await this.catalogue.getAliasScope(id));
  }

  @Post()
  @ApiOperation({
    summary: 'Give an alias a scope',
    description: 'The scope must be one of the alias’s generic resource scopes. Audited as `generic_resource_alias_scope.created`. Accepts `Idempotency-Key`.',
  })
  @ApiCreatedResponse({ type: GenericResourceAliasScopeDto })
  @ApiBadRequestResponse({ description: 'Invalid input, or a scope the generic resource does not offer (`scope`)' })
  @ApiNotFoundResponse({ description: 'No such alias (`alias_id`)' })
  @ApiConflictResponse({ description: 'The alias has this scope already' })
  async create(@Body() body: CreateGenericResourceAliasScopeDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAliasScopeDto> {
    return GenericResourceAliasScopeDto.from(await this.catalogue.createAliasScope({ aliasId: body.alias_id, scope: body.scope }, actor));
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Replace an alias scope by another',
    description:
      'Same id, new scope (one of the generic resource’s). The old scope is taken from the alias’s delegations exactly as by DELETE. ' +
      'Audited as `generic_resource_alias_scope.updated`.',
  })
  @ApiOkResponse({ type: GenericResourceAliasScopeDto })
  @ApiBadRequestResponse({ description: 'Invalid input, or a scope the generic resource does not offer (`scope`)' })
  @ApiNotFoundResponse({ description: 'No such alias scope' })
  @ApiConflictResponse({ description: 'The alias has the new scope already' })
  async update(@Param('id', uuidParam()) id: string, @Body() body: UpdateGenericResourceAliasScopeDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAliasScopeDto> {
    return GenericResourceAliasScopeDto.from(await this.catalogue.updateAliasScope(id, { scope: body.scope }, actor));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Take a scope from an alias — cascades to its delegations',
    description:
      'Deliberate cascade, in one transaction: the scope is also taken from every delegation of the alias that granted it (audited as `delegation.updated`, ' +
      'reason `alias_scope_removed`), so no delegation keeps a scope its alias no longer has — or silently regains it if the scope comes back. ' +
      'An active delegation left with no scope is revoked (`delegation.revoked`, reason `no_scope_left`). Audited as `generic_resource_alias_scope.deleted`.',
  })
  @ApiNoContentResponse({ description: 'Deleted, and taken from the delegations' })
  @ApiNotFoundResponse({ description: 'No such alias scope' })
  async remove(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.catalogue.deleteAliasScope(id, actor);
  }
}
