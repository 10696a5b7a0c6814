import { Controller, Delete, Get, HttpCode, Param, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AccountAdminService } from '@rsa/auth';
import { clampLimit } from '@rsa/common';
import { AdminActor, type AdminContext } from '../common/admin-actor';
import { uuidParam } from '../common/uuid-param.pipe';
import { AccountDetailDto, AccountPageDto, ListAccountsQueryDto } from './dto/account.dto';

const ACCOUNT_ID = { name: 'id', format: 'uuid', description: 'The account id (RSA subject)' };

/**
 * Users known to the RSA. Accounts are created and kept up to date by upstream logins only, so there
 * is no create or update; delete removes the account with everything that hangs on it.
 */
@ApiTags('Accounts')
@ApiBearerAuth()
@ApiUnauthorizedResponse({ description: 'No valid admin token' })
@Controller('accounts')
export class AccountsController {
  constructor(private readonly accounts: AccountAdminService) {}

  @Get()
  @ApiOperation({
    summary: 'Search accounts',
    description: 'Filter by `sub` (RSA id or upstream sub) and/or `email` (case-insensitive). Newest first; cursor pagination (`limit` ≤ 100).',
  })
  @ApiOkResponse({ type: AccountPageDto })
  list(@Query() query: ListAccountsQueryDto): Promise<AccountPageDto> {
    return this.accounts.list({ sub: query.sub, email: query.email }, query.cursor, clampLimit(query.limit));
  }

  @Get(':id')
  @ApiOperation({
    summary: 'One account: profile, upstream token status (no token values), counts of resources and delegations',
  })
  @ApiParam(ACCOUNT_ID)
  @ApiOkResponse({ type: AccountDetailDto })
  @ApiNotFoundResponse({ description: 'No such account' })
  get(@Param('id', uuidParam()) id: string): Promise<AccountDetailDto> {
    return this.accounts.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Delete an account and everything that hangs on it',
    description:
      'In one transaction: its resources (aliases), the delegations it gave and received, its upstream tokens (forgotten locally — ' +
      'revoke them at the upstream first with `DELETE /accounts/{id}/tokens` if that matters), and its RSA sessions, grants and tokens ' +
      '(which get 401 at once). Audit events stay. If the user logs in again, a new account (new RSA id) is created.',
  })
  @ApiParam(ACCOUNT_ID)
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ description: 'No such account' })
  async delete(@Param('id', uuidParam()) id: string, @AdminActor() actor: AdminContext): Promise<void> {
    await this.accounts.delete(id, actor);
  }
}
