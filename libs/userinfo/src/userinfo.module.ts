import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { DelegationModule } from '@rsa/delegation';
import { RelatedClaimService } from './related-claim.service';
import { UserinfoService } from './userinfo.service';

@Module({
  imports: [AuthModule, DelegationModule],
  providers: [UserinfoService, RelatedClaimService],
  exports: [UserinfoService, RelatedClaimService],
})
export class UserinfoModule {}
