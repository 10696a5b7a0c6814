import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { AccountTokensController, DelegationsAtRiskController, TokenHealthController } from './token-health.controller';

/**
 * Admin: token health — counts by status, the accounts list, per-account detail, force refresh,
 * revoke, and the delegations at risk. Services in libs/auth (TokenHealthService, the vault).
 */
@Module({
  imports: [AuthModule],
  controllers: [TokenHealthController, AccountTokensController, DelegationsAtRiskController],
})
export class AdminTokenHealthModule {}
