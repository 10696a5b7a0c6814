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
  CreateGenericResourceAliasDto,
  GenericResourceAliasDto,
  GenericResourceAliasPageDto,
  ListGenericResourceAliasesQueryDto,
  UpdateGenericResourceAliasDto,
} from './dto/generic-resource-alias.dto';

/** Aliases: concrete resources, each owned by one account (what users see as their resources). */
@ApiTags('Catalogue')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('generic-resource-aliases')
export class GenericResourceAliasesController {
  constructor(private readonly catalogue: CatalogueAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'List aliases',
    description: 'Ordered by id; cursor pagination (`limit` ≤ 100). Filters: `owner_account_id`, `generic_resource_id`, `status`, `external_id`.',
  })
  @ApiOkResponse({ type: GenericResourceAliasPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor; the field is named' })
  async list(@Query() query: ListGenericResourceAliasesQueryDto): Promise<GenericResourceAliasPageDto> {
    const page = await this.catalogue.listAliases(
      { ownerAccountId: query.owner_account_id, genericResourceId: query.generic_resource_id, status: query.status, externalId: query.external_id },
      { cursor: query.cursor, limit: clampLimit(query.limit) },
    );
    return { items: page.items.map(GenericResourceAliasDto.from), next_cursor: page.next_cursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One alias, with its scopes' })
  @ApiOkResponse({ type: GenericResourceAliasDto })
  @ApiNotFoundResponse({ description: 'No such alias' })
  async get(@Param('id', uuidParam()) id: string): Promise<GenericResourceAliasDto> {
    return GenericResourceAliasDto.from(await this.catalogue.getAlias(id));
  }

  @Post()
  @ApiOperation({
    summary: 'Create an alias for an owner',
    description:
      'For resources discovery does not find (or kinds without discovery). Note: for a kind with a `discovery_path`, an alias the upstream does not list for its owner is marked `gone` at the owner’s next discovery. ' +
      'Audited as `generic_resource_alias.created`. Accepts `Idempotency-Key`.',
  })
  @ApiCreatedResponse({ type: GenericResourceAliasDto })
  @ApiBadRequestResponse({ description: 'Invalid input, or a scope the generic resource does not offer; the field is named' })
  @ApiNotFoundResponse({ description: 'The owner account or the generic resource does not exist (`details.field` names it)' })
  @ApiConflictResponse({ description: 'The owner has an alias of this kind with this external_id' })
  async create(@Body() body: CreateGenericResourceAliasDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAliasDto> {
    const alias = await this.catalogue.createAlias(
      {
        ownerAccountId: body.owner_account_id,
        genericResourceId: body.generic_resource_id,
        externalId: body.external_id,
        displayName: body.display_name,
        status: body.status,
        scopes: body.scopes,
      },
      actor,
    );
    return GenericResourceAliasDto.from(alias);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Rename an alias, change its external id or status',
    description:
      'Owner and generic resource cannot change (create another alias). `status: gone` ends every active delegation of the alias in the same transaction ' +
      '(status `expired`, audited as `delegation.ended_alias_gone`), keeping their rows; setting it back to `active` does not revive them. ' +
      'Audited as `generic_resource_alias.updated`.',
  })
  @ApiOkResponse({ type: GenericResourceAliasDto })
  @ApiBadRequestResponse({ description: 'Invalid input; the field is named' })
  @ApiNotFoundResponse({ description: 'No such alias' })
  @ApiConflictResponse({ description: 'The owner has another alias of this kind with this external_id' })
  async update(@Param('id', uuidParam()) id: string, @Body() body: UpdateGenericResourceAliasDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAliasDto> {
    return GenericResourceAliasDto.from(
      await this.catalogue.updateAlias(id, { externalId: body.external_id, displayName: body.display_name, status: body.status }, actor),
    );
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete an alias — cascades to its scopes and its delegations',
    description:
      'Deliberate cascade, in one transaction: the alias, its scopes, and every delegation of it (any status) with their granted scopes are deleted; ' +
      'each delegation is audited as `delegation.deleted` (with a snapshot) and the alias as `generic_resource_alias.deleted`. ' +
      'Delegates lose access on their next request. To keep the delegations’ history instead, PATCH `status: gone`. ' +
      'If the upstream still lists the resource, the owner’s next discovery creates a new alias for it.',
  })
  @ApiNoContentResponse({ description: 'Deleted, with its scopes and delegations' })
  @ApiNotFoundResponse({ description: 'No such alias' })
  async remove(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.catalogue.deleteAlias(id, actor);
  }
}
