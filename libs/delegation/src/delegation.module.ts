import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { ResourcesModule } from '@rsa/resources';
import { AccessPolicy } from './access-policy.service';
import { DelegationAdminService } from './delegation-admin.service';
import { DelegationService } from './delegation.service';

/** Who may see and use which resource, and the delegations that decide it. */
@Module({
  imports: [AuthModule, ResourcesModule],
  providers: [AccessPolicy, DelegationService, DelegationAdminService],
  exports: [AccessPolicy, DelegationService, DelegationAdminService],
})
export class DelegationModule {}
