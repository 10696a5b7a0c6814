import { Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadGatewayResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiGatewayTimeoutResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { TokenHealthService } from '@rsa/auth';
import { clampLimit } from '@rsa/common';
import { AdminActor, type AdminContext } from '../common/admin-actor';
import { uuidParam } from '../common/uuid-param.pipe';
import {
  AccountTokenHealthDto,
  AccountTokenHealthPageDto,
  AtRiskDelegationPageDto,
  AtRiskQueryDto,
  ListTokenHealthAccountsQueryDto,
  RevokedAccountTokensDto,
  TokenHealthSummaryDto,
} from './dto/token-health.dto';

const DEFAULT_AT_RISK_WINDOW_SECONDS = 86_400;

/** Token health overview: counts by status and the filtered list of accounts. */
@ApiTags('Token health')
@ApiBearerAuth()
@Controller('token-health')
export class TokenHealthController {
  constructor(private readonly health: TokenHealthService) {}

  @Get()
  @ApiOperation({
    summary: 'Accounts per upstream token status, and active delegations per status of their owner',
    description: 'Computed in the database at request time. `refreshable` is derived: stored `valid`, access token expired, refresh token alive.',
  })
  @ApiOkResponse({ type: TokenHealthSummaryDto })
  summary(): Promise<TokenHealthSummaryDto> {
    return this.health.summary();
  }

  @Get('accounts')
  @ApiOperation({
    summary: 'Accounts with their upstream token state (never token values)',
    description: 'Filters combine with AND. Ordered by account id; cursor pagination (`limit` ≤ 100), equally fast on every page.',
  })
  @ApiOkResponse({ type: AccountTokenHealthPageDto })
  @ApiBadRequestResponse({ description: 'Invalid filter or cursor (the field is named)' })
  accounts(@Query() query: ListTokenHealthAccountsQueryDto): Promise<AccountTokenHealthPageDto> {
    return this.health.listAccounts(
      { status: query.status, hasActiveDelegations: query.has_active_delegations, expiringWithinSeconds: query.expiring_within },
      { cursor: query.cursor, limit: clampLimit(query.limit) },
    );
  }
}

/** One account's upstream tokens: detail, force refresh, revoke. */
@ApiTags('Token health')
@ApiBearerAuth()
@Controller('accounts/:id/tokens')
export class AccountTokensController {
  constructor(private readonly health: TokenHealthService) {}

  @Get()
  @ApiOperation({ summary: "An account's upstream token state: status, expiries, last refresh and its outcome (never token values)" })
  @ApiOkResponse({ type: AccountTokenHealthDto })
  @ApiNotFoundResponse({ description: 'No such account, or no upstream tokens stored for it' })
  get(@Param('id', uuidParam()) id: string): Promise<AccountTokenHealthDto> {
    return this.health.account(id);
  }

  @Post('refresh')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Refresh the upstream tokens now',
    description:
      'Goes through the token vault: never in parallel with another refresh of this account on any instance. ' +
      'Answers with the new state. A failed refresh is recorded (status, outcome, audit) and answered with the error and the new status in `details`. ' +
      'Accepts `Idempotency-Key`.',
  })
  @ApiOkResponse({ type: AccountTokenHealthDto, description: 'Refreshed; the new state' })
  @ApiNotFoundResponse({ description: 'No such account, or no upstream tokens stored for it' })
  @ApiConflictResponse({ description: '`UPSTREAM.OWNER_LOGIN_REQUIRED`: the upstream refused the refresh token, or the tokens are `reauth_required`/`revoked`; the owner must log in again' })
  @ApiBadGatewayResponse({ description: '`UPSTREAM.UPSTREAM_ERROR`: the upstream failed; status now `refresh_failing`' })
  @ApiGatewayTimeoutResponse({ description: '`UPSTREAM.UPSTREAM_TIMEOUT`: the upstream did not answer in time; status now `refresh_failing`' })
  refresh(@Param('id', uuidParam()) id: string, @AdminActor() ctx: AdminContext): Promise<AccountTokenHealthDto> {
    return this.health.forceRefresh(id, ctx);
  }

  @Delete()
  @ApiOperation({
    summary: 'Revoke the upstream tokens',
    description:
      'Revokes the refresh token, then the access token, at the upstream where it offers RFC 7009 revocation, then deletes the token values here: ' +
      'the account reads `revoked` until the owner logs in again, and its delegates see `owner_login_required`. ' +
      'Local deletion happens even if the upstream revocation fails (`upstream_revocation` says so). Idempotent.',
  })
  @ApiOkResponse({ type: RevokedAccountTokensDto })
  @ApiNotFoundResponse({ description: 'No such account, or no upstream tokens stored for it' })
  @ApiConflictResponse({ description: 'The owner logged in again while revoking; check and retry' })
  revoke(@Param('id', uuidParam()) id: string, @AdminActor() ctx: AdminContext): Promise<RevokedAccountTokensDto> {
    return this.health.revoke(id, ctx);
  }
}

/** Delegations that stop working (or soon will) because of their owner's upstream tokens. */
@ApiTags('Token health')
@ApiBearerAuth()
@Controller('delegations/at-risk')
export class DelegationsAtRiskController {
  constructor(private readonly health: TokenHealthService) {}

  @Get()
  @ApiOperation({
    summary: "Active delegations at risk because of their owner's upstream tokens",
    description:
      'Unusable now (owner has no tokens, or they are `reauth_required`, `revoked` or `refresh_failing`) or within `within` seconds ' +
      '(no refresh token and the access token expires, or the refresh token’s known expiry falls, in the window). ' +
      'A delegation that ends before its owner’s tokens do is not listed. Ordered by delegation id; cursor pagination.',
  })
  @ApiOkResponse({ type: AtRiskDelegationPageDto })
  @ApiBadRequestResponse({ description: 'Invalid `within` or cursor' })
  list(@Query() query: AtRiskQueryDto): Promise<AtRiskDelegationPageDto> {
    return this.health.atRisk(query.within ?? DEFAULT_AT_RISK_WINDOW_SECONDS, { cursor: query.cursor, limit: clampLimit(query.limit) });
  }
}
