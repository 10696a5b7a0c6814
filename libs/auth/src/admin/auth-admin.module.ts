import { Module } from '@nestjs/common';
import { AuthModule } from '../auth.module';
import { AccountAdminService } from './account-admin.service';
import { ClientAdminService } from './client-admin.service';

/** Admin services over the identity core: OAuth clients of the RSA and accounts. */
@Module({
  imports: [AuthModule],
  providers: [ClientAdminService, AccountAdminService],
  exports: [ClientAdminService, AccountAdminService],
})
export class AuthAdminModule {}
