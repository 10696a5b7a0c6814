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
import { DelegationAdminService } from '@rsa/delegation';
import { AdminActor, type AdminContext } from '../common/admin-actor';
import { uuidParam } from '../common/uuid-param.pipe';
import {
  CreateGenericResourceAuthorizationScopeDto,
  GenericResourceAuthorizationScopeDto,
  GenericResourceAuthorizationScopePageDto,
  ListGenericResourceAuthorizationScopesQueryDto,
  UpdateGenericResourceAuthorizationScopeDto,
} from './dto/generic-resource-authorization-scope.dto';

/** The scopes each delegation grants: always a non-empty subset of its alias's scopes. */
@ApiTags('Delegations')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('generic-resource-authorization-scopes')
export class GenericResourceAuthorizationScopesController {
  constructor(private readonly delegations: DelegationAdminService) {}

  @Get()
  @ApiOperation({ summary: 'List granted scopes', description: 'Ordered by id; cursor pagination (`limit` ≤ 100). Filters: `authorization_id`, `scope`.' })
  @ApiOkResponse({ type: GenericResourceAuthorizationScopePageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor; the field is named' })
  async list(@Query() query: ListGenericResourceAuthorizationScopesQueryDto): Promise<GenericResourceAuthorizationScopePageDto> {
    const page = await this.delegations.listScopes({ authorizationId: query.authorization_id, scope: query.scope }, { cursor: query.cursor, limit: clampLimit(query.limit) });
    return { items: page.items.map(GenericResourceAuthorizationScopeDto.from), next_cursor: page.next_cursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One granted scope' })
  @ApiOkResponse({ type: GenericResourceAuthorizationScopeDto })
  @ApiNotFoundResponse({ description: 'No such granted scope' })
  async get(@Param('id', uuidParam()) id: string): Promise<GenericResourceAuthorizationScopeDto> {
    return GenericResourceAuthorizationScopeDto.from(await this.delegations.getScope(id));
  }

  @Post()
  @ApiOperation({
    summary: 'Grant one more scope on an active delegation',
    description:
      'The scope must be one of the delegated alias’s scopes (subset rule). Takes effect on the delegate’s next request. ' +
      'Audited as `delegation.updated` (target: the delegation) with the scopes before and after. Accepts `Idempotency-Key`.',
  })
  @ApiCreatedResponse({ type: GenericResourceAuthorizationScopeDto })
  @ApiBadRequestResponse({ description: 'Invalid input, or a scope the alias does not offer (`scope`)' })
  @ApiNotFoundResponse({ description: 'No such delegation (`authorization_id`)' })
  @ApiConflictResponse({ description: 'The scope is granted already, or the delegation is not active' })
  async create(@Body() body: CreateGenericResourceAuthorizationScopeDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAuthorizationScopeDto> {
    return GenericResourceAuthorizationScopeDto.from(await this.delegations.addScope({ authorizationId: body.authorization_id, scope: body.scope }, actor));
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Replace a granted scope by another',
    description: 'Same id, another scope of the alias not granted yet; only on an active delegation. Audited as `delegation.updated`.',
  })
  @ApiOkResponse({ type: GenericResourceAuthorizationScopeDto })
  @ApiBadRequestResponse({ description: 'Invalid input, or a scope the alias does not offer (`scope`)' })
  @ApiNotFoundResponse({ description: 'No such granted scope' })
  @ApiConflictResponse({ description: 'The new scope is granted already, or the delegation is not active' })
  async update(
    @Param('id', uuidParam()) id: string,
    @Body() body: UpdateGenericResourceAuthorizationScopeDto,
    @AdminActor() actor: AdminContext,
  ): Promise<GenericResourceAuthorizationScopeDto> {
    return GenericResourceAuthorizationScopeDto.from(await this.delegations.changeScope(id, { scope: body.scope }, actor));
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Withdraw a granted scope',
    description:
      'Only on an active delegation; takes effect on the delegate’s next request. A delegation keeps at least one scope: withdrawing the last one is refused (409) — ' +
      'revoke the delegation instead. Audited as `delegation.updated`.',
  })
  @ApiNoContentResponse({ description: 'Withdrawn' })
  @ApiNotFoundResponse({ description: 'No such granted scope' })
  @ApiConflictResponse({ description: 'It is the delegation’s last scope, or the delegation is not active' })
  async remove(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.delegations.removeScope(id, actor);
  }
}
