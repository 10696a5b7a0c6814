import { Module } from '@nestjs/common';
import { AuthAdminModule } from '@rsa/auth';
import { ClientsController } from './clients.controller';

/** Admin: OAuth clients of the RSA (`/clients`). */
@Module({
  imports: [AuthAdminModule],
  controllers: [ClientsController],
})
export class AdminClientsModule {}
