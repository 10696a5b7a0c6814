import { Module } from '@nestjs/common';
import { AuthModule } from '@rsa/auth';
import { UserinfoService } from './userinfo.service';

@Module({
  imports: [AuthModule],
  providers: [UserinfoService],
  exports: [UserinfoService],
})
export class UserinfoModule {}
