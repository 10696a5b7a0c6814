import { Module } from '@nestjs/common';
import { AuthAdminModule } from '@rsa/auth';
import { AccountsController } from './accounts.controller';

/** Admin: accounts (`/accounts`): search, detail, delete. */
@Module({
  imports: [AuthAdminModule],
  controllers: [AccountsController],
})
export class AdminAccountsModule {}
