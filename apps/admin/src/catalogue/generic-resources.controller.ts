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
  CreateGenericResourceDto,
  GenericResourceDto,
  GenericResourcePageDto,
  ListGenericResourcesQueryDto,
  UpdateGenericResourceDto,
} from './dto/generic-resource.dto';

/** The resource catalogue: the kinds of resource the Resource Server offers. */
@ApiTags('Catalogue')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('generic-resources')
export class GenericResourcesController {
  constructor(private readonly catalogue: CatalogueAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'List generic resources',
    description: 'Ordered by identifier; cursor pagination (`limit` ≤ 100, `next_cursor`). Filters: `identifier` (exact), `q` (substring of identifier or name), `scope`.',
  })
  @ApiOkResponse({ type: GenericResourcePageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor; the field is named' })
  async list(@Query() query: ListGenericResourcesQueryDto): Promise<GenericResourcePageDto> {
    const page = await this.catalogue.listGenericResources(
      { identifier: query.identifier, q: query.q, scope: query.scope },
      { cursor: query.cursor, limit: clampLimit(query.limit) },
    );
    return { items: page.items.map(GenericResourceDto.from), next_cursor: page.next_cursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One generic resource' })
  @ApiOkResponse({ type: GenericResourceDto })
  @ApiNotFoundResponse({ description: 'No such generic resource' })
  async get(@Param('id', uuidParam()) id: string): Promise<GenericResourceDto> {
    return GenericResourceDto.from(await this.catalogue.getGenericResource(id));
  }

  @Post()
  @ApiOperation({
    summary: 'Add a kind of resource to the catalogue',
    description:
      'With a `discovery_path`, each user’s resources of this kind are listed at the upstream at login and become aliases with all the kind’s scopes. ' +
      'Audited as `generic_resource.created`. Accepts `Idempotency-Key`.',
  })
  @ApiCreatedResponse({ type: GenericResourceDto })
  @ApiBadRequestResponse({ description: 'Invalid input (e.g. a `path_template` without `{id}`); the field is named' })
  @ApiConflictResponse({ description: 'A generic resource with this identifier exists' })
  async create(@Body() body: CreateGenericResourceDto, @AdminActor() actor: AdminContext): Promise<GenericResourceDto> {
    const row = await this.catalogue.createGenericResource(
      {
        identifier: body.identifier,
        name: body.name,
        description: body.description,
        pathTemplate: body.path_template,
        discoveryPath: body.discovery_path,
        scopes: body.scopes,
      },
      actor,
    );
    return GenericResourceDto.from(row);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change a generic resource',
    description:
      'Only the fields given change; `scopes` replaces the list. Removing a scope that an alias still carries is refused (409): take it from the aliases first ' +
      '(DELETE /generic-resource-alias-scopes/{id}, which also takes it from their delegations). Added scopes are not given to existing aliases. ' +
      'Audited as `generic_resource.updated` with before and after.',
  })
  @ApiOkResponse({ type: GenericResourceDto })
  @ApiBadRequestResponse({ description: 'Invalid input; the field is named' })
  @ApiNotFoundResponse({ description: 'No such generic resource' })
  @ApiConflictResponse({ description: 'The identifier is taken, or a removed scope is still carried by aliases' })
  async update(@Param('id', uuidParam()) id: string, @Body() body: UpdateGenericResourceDto, @AdminActor() actor: AdminContext): Promise<GenericResourceDto> {
    const row = await this.catalogue.updateGenericResource(
      id,
      {
        identifier: body.identifier,
        name: body.name,
        description: body.description,
        pathTemplate: body.path_template,
        discoveryPath: body.discovery_path,
        scopes: body.scopes,
      },
      actor,
    );
    return GenericResourceDto.from(row);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Remove a generic resource',
    description: 'Refused with 409 while any alias (active or gone) is of this kind — delete those first; nothing is cascaded. Audited as `generic_resource.deleted`.',
  })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiNotFoundResponse({ description: 'No such generic resource' })
  @ApiConflictResponse({ description: 'Aliases of this kind exist' })
  async remove(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.catalogue.deleteGenericResource(id, actor);
  }
}
