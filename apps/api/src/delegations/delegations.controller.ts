import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
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
} from '@nestjs/swagger';
import type { Request } from 'express';
import { CurrentPrincipal, RequireScopes, RsaBearerGuard, type RsaPrincipal } from '@rsa/auth';
import { clampLimit } from '@rsa/common';
import { DelegationService } from '@rsa/delegation';
import { CreateDelegationDto, DelegationDto, DelegationPageDto, ListDelegationsQueryDto, UpdateDelegationDto } from './dto/delegation.dto';

const actor = (principal: RsaPrincipal, req: Request) => ({ actor: `account:${principal.accountId}`, requestId: req.requestId });

/** Delegations of the caller's resources. Every route needs the `delegations` scope (SCOPE_DELEGATIONS). */
@ApiTags('Delegations')
@ApiBearerAuth()
@UseGuards(RsaBearerGuard)
@RequireScopes((config) => config.scopes.delegations)
@Controller('delegations')
export class DelegationsController {
  constructor(private readonly delegations: DelegationService) {}

  @Get()
  @ApiOperation({ summary: 'Delegations you gave (`granted`) or received (`received`)' })
  @ApiOkResponse({ type: DelegationPageDto })
  list(@CurrentPrincipal() principal: RsaPrincipal, @Query() query: ListDelegationsQueryDto): Promise<DelegationPageDto> {
    return this.delegations.list(principal.accountId, query.direction, query.cursor, clampLimit(query.limit));
  }

  @Get(':id')
  @ApiOperation({ summary: 'One delegation you gave or received' })
  @ApiOkResponse({ type: DelegationDto })
  @ApiNotFoundResponse({ description: 'No such delegation, or you are not party to it' })
  get(@CurrentPrincipal() principal: RsaPrincipal, @Param('id', ParseUUIDPipe) id: string): Promise<DelegationDto> {
    return this.delegations.get(principal.accountId, id);
  }

  @Post()
  @ApiOperation({
    summary: 'Delegate some of your resources',
    description:
      'Creates one delegation per listed resource, to one delegate (by RSA `sub`, or by email — pending until a verified login). ' +
      'Rules: only the owner delegates; scopes ⊆ the resource scopes; no self-delegation; a delegate cannot re-delegate. ' +
      'A second active delegation of the same resource to the same delegate is a 409: change the existing one with PATCH.',
  })
  @ApiCreatedResponse({ type: [DelegationDto] })
  @ApiBadRequestResponse({ description: 'Invalid input (the failing field is named)' })
  @ApiNotFoundResponse({ description: 'A resource is not yours or does not exist, or the delegate `sub` is unknown' })
  @ApiConflictResponse({ description: 'An active delegation of that resource to that delegate exists' })
  create(@CurrentPrincipal() principal: RsaPrincipal, @Body() body: CreateDelegationDto, @Req() req: Request): Promise<DelegationDto[]> {
    return this.delegations.create(
      principal.accountId,
      {
        aliasIds: body.aliases,
        scopes: body.scopes,
        expiresAt: body.expires_at ? new Date(body.expires_at) : null,
        delegate: { sub: body.delegate.sub, email: body.delegate.email },
      },
      actor(principal, req),
    );
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Narrow the scopes or change the expiry of a delegation you gave' })
  @ApiOkResponse({ type: DelegationDto })
  @ApiNotFoundResponse({ description: 'No such delegation among those you gave' })
  @ApiConflictResponse({ description: 'The delegation is no longer active' })
  update(
    @CurrentPrincipal() principal: RsaPrincipal,
    @Param('id', ParseUUIDPipe) id: string,
    @Body() body: UpdateDelegationDto,
    @Req() req: Request,
  ): Promise<DelegationDto> {
    return this.delegations.update(
      principal.accountId,
      id,
      { scopes: body.scopes, expiresAt: body.expires_at === undefined ? undefined : body.expires_at === null ? null : new Date(body.expires_at) },
      actor(principal, req),
    );
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke a delegation you gave, or decline one you received', description: 'Takes effect on the next request. Idempotent.' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ description: 'No such delegation, or you are not party to it' })
  async end(@CurrentPrincipal() principal: RsaPrincipal, @Param('id', ParseUUIDPipe) id: string, @Req() req: Request): Promise<void> {
    await this.delegations.end(principal.accountId, id, actor(principal, req));
  }
}
