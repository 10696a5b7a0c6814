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
  CreateGenericResourceAuthorizationDto,
  GenericResourceAuthorizationDto,
  GenericResourceAuthorizationPageDto,
  ListGenericResourceAuthorizationsQueryDto,
  UpdateGenericResourceAuthorizationDto,
} from './dto/generic-resource-authorization.dto';

const expiry = (value: string | null | undefined) => (value === undefined ? undefined : value === null ? null : new Date(value));

/** Delegations: an owner lets a delegate use one alias with some of its scopes. */
@ApiTags('Delegations')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('generic-resource-authorizations')
export class GenericResourceAuthorizationsController {
  constructor(private readonly delegations: DelegationAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'List delegations',
    description:
      'Ordered by id; cursor pagination (`limit` ≤ 100). Filters: `owner_account_id`, `delegate_account_id`, `delegate_email`, `alias_id`, ' +
      '`status` (effective: `active`, `pending`, `revoked`, `expired`).',
  })
  @ApiOkResponse({ type: GenericResourceAuthorizationPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor; the field is named' })
  async list(@Query() query: ListGenericResourceAuthorizationsQueryDto): Promise<GenericResourceAuthorizationPageDto> {
    const page = await this.delegations.list(
      {
        ownerAccountId: query.owner_account_id,
        delegateAccountId: query.delegate_account_id,
        delegateEmail: query.delegate_email,
        aliasId: query.alias_id,
        status: query.status,
      },
      { cursor: query.cursor, limit: clampLimit(query.limit) },
    );
    return { items: page.items.map(GenericResourceAuthorizationDto.from), next_cursor: page.next_cursor };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One delegation, with its granted scopes' })
  @ApiOkResponse({ type: GenericResourceAuthorizationDto })
  @ApiNotFoundResponse({ description: 'No such delegation' })
  async get(@Param('id', uuidParam()) id: string): Promise<GenericResourceAuthorizationDto> {
    return GenericResourceAuthorizationDto.from(await this.delegations.get(id));
  }

  @Post()
  @ApiOperation({
    summary: 'Delegate an alias on behalf of its owner',
    description:
      'The same rules as an owner’s own POST /delegations: the owner owns the alias and it is active; scopes ⊆ the alias scopes; no self-delegation; ' +
      'the delegate by account id, or by email (bound at once to an account with that verified email, else `pending` until one logs in); ' +
      '`expires_at` in the future; one active delegation per alias and delegate (409 — change that one). ' +
      '`created_by` records the admin. Audited as `delegation.created` (actor type `admin`). Accepts `Idempotency-Key`.',
  })
  @ApiCreatedResponse({ type: GenericResourceAuthorizationDto })
  @ApiBadRequestResponse({ description: 'Invalid input or a broken rule (scope not offered, self-delegation, past expiry, not the owner’s alias); the field is named' })
  @ApiNotFoundResponse({ description: 'The owner, alias or delegate account does not exist (`details.field` names it)' })
  @ApiConflictResponse({ description: 'An active delegation of this alias to this delegate exists, or the alias is gone' })
  async create(@Body() body: CreateGenericResourceAuthorizationDto, @AdminActor() actor: AdminContext): Promise<GenericResourceAuthorizationDto> {
    const record = await this.delegations.create(
      {
        ownerAccountId: body.owner_account_id,
        aliasId: body.alias_id,
        scopes: body.scopes,
        expiresAt: expiry(body.expires_at),
        delegateAccountId: body.delegate_account_id,
        delegateEmail: body.delegate_email,
      },
      actor,
    );
    return GenericResourceAuthorizationDto.from(record);
  }

  @Patch(':id')
  @ApiOperation({
    summary: 'Change the scopes or expiry of a delegation, or revoke it',
    description:
      '`scopes` replaces the granted scopes with any non-empty subset of the alias’s scopes (an operator may widen; owners can only narrow); ' +
      '`expires_at` sets a future expiry or null; both only on an active delegation (409 otherwise). Audited as `delegation.updated` with before and after. ' +
      '`status: revoked` (alone) ends it at once, keeping the row: audited as `delegation.revoked`; revoking a revoked delegation changes nothing.',
  })
  @ApiOkResponse({ type: GenericResourceAuthorizationDto })
  @ApiBadRequestResponse({ description: 'Invalid input or a broken rule; the field is named' })
  @ApiNotFoundResponse({ description: 'No such delegation' })
  @ApiConflictResponse({ description: 'The delegation is no longer active' })
  async update(
    @Param('id', uuidParam()) id: string,
    @Body() body: UpdateGenericResourceAuthorizationDto,
    @AdminActor() actor: AdminContext,
  ): Promise<GenericResourceAuthorizationDto> {
    const record = await this.delegations.update(id, { scopes: body.scopes, expiresAt: expiry(body.expires_at), status: body.status }, actor);
    return GenericResourceAuthorizationDto.from(record);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete a delegation — cascades to its granted scopes',
    description:
      'Deletes the delegation (any status) and its granted scopes; an active one stops working on the delegate’s next request. ' +
      'Audited as `delegation.deleted` with a snapshot of what was deleted. To end a delegation and keep its record, PATCH `status: revoked` instead.',
  })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiNotFoundResponse({ description: 'No such delegation' })
  async remove(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.delegations.remove(id, actor);
  }
}
