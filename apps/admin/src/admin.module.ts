import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { AllExceptionsFilter, createValidationPipe } from '@rsa/common';
import { RsaConfig, RsaConfigModule } from '@rsa/config';
import { DatabaseModule } from '@rsa/database';
import { AdminTokenGuard } from './auth/admin-token.guard';
import { HealthController } from './health/health.controller';

@Module({})
export class AdminModule {
  static forRoot(config?: RsaConfig): DynamicModule {
    return {
      module: AdminModule,
      imports: [RsaConfigModule.forRoot({ config }), DatabaseModule.forRoot({ applicationName: 'rsa-admin' })],
      controllers: [HealthController],
      providers: [
        { provide: APP_GUARD, useClass: AdminTokenGuard },
        { provide: APP_FILTER, useValue: new AllExceptionsFilter() },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
