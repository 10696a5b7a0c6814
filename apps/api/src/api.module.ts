import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { AuthModule } from '@rsa/auth';
import { AllExceptionsFilter, createValidationPipe, DEFAULT_ERROR_STATUS } from '@rsa/common';
import { RsaConfig, RsaConfigModule } from '@rsa/config';
import { DatabaseModule } from '@rsa/database';
import { UserinfoModule } from '@rsa/userinfo';
import { HealthController } from './health/health.controller';
import { InteractionController } from './interaction/interaction.controller';
import { UserinfoController } from './userinfo/userinfo.controller';

/** How the api maps library error codes to HTTP statuses. */
export const API_ERROR_STATUS: Record<string, number> = {
  ...DEFAULT_ERROR_STATUS,
  'UPSTREAM.UPSTREAM_TIMEOUT': 504,
  'UPSTREAM.TIMEOUT': 504,
  'UPSTREAM.UPSTREAM_ERROR': 502,
  'UPSTREAM.UNAVAILABLE': 502,
  'UPSTREAM.OAUTH_ERROR': 502,
};

@Module({})
export class ApiModule {
  static forRoot(config?: RsaConfig): DynamicModule {
    return {
      module: ApiModule,
      imports: [RsaConfigModule.forRoot({ config }), DatabaseModule.forRoot({ applicationName: 'rsa-api' }), AuthModule, UserinfoModule],
      controllers: [HealthController, InteractionController, UserinfoController],
      providers: [
        { provide: APP_FILTER, useValue: new AllExceptionsFilter(API_ERROR_STATUS) },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
