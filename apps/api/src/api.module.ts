import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { AuthModule, ProactiveRefreshService } from '@rsa/auth';
import { AllExceptionsFilter, createValidationPipe, DEFAULT_ERROR_STATUS, HttpMetricsModule } from '@rsa/common';
import { loadConfig, RsaConfig, RsaConfigModule } from '@rsa/config';
import { DatabaseModule } from '@rsa/database';
import { DelegationModule } from '@rsa/delegation';
import { ResourcesModule } from '@rsa/resources';
import { UserinfoModule } from '@rsa/userinfo';
import { HealthController } from './health/health.controller';
import { InteractionController } from './interaction/interaction.controller';
import { DelegationsController } from './delegations/delegations.controller';
import { ResourcesController } from './resources/resources.controller';
import { UserinfoController } from './userinfo/userinfo.controller';

/** How the api maps library error codes to HTTP statuses. */
export const API_ERROR_STATUS: Record<string, number> = {
  ...DEFAULT_ERROR_STATUS,
  'UPSTREAM.UPSTREAM_TIMEOUT': 504,
  'UPSTREAM.TIMEOUT': 504,
  'UPSTREAM.UPSTREAM_ERROR': 502,
  'UPSTREAM.UNAVAILABLE': 502,
  'UPSTREAM.OAUTH_ERROR': 502,
  'UPSTREAM.SUBJECT_MISMATCH': 502,
  'PROXY.INVALID_PATH': 400,
  'PROXY.UPSTREAM_ERROR': 502,
  'PROXY.UPSTREAM_TIMEOUT': 504,
};

@Module({})
export class ApiModule {
  static forRoot(config: RsaConfig = loadConfig(process.env)): DynamicModule {
    // RESOURCE_MANAGEMENT_ENABLED=false: the routes do not exist at all (404), and /userinfo has no `related`.
    const resourceManagement = config.resourceManagement.enabled ? [ResourcesController, DelegationsController] : [];
    return {
      module: ApiModule,
      imports: [
        RsaConfigModule.forRoot({ config }),
        DatabaseModule.forRoot({ applicationName: 'rsa-api' }),
        AuthModule,
        ResourcesModule,
        DelegationModule,
        UserinfoModule,
        HttpMetricsModule.forApp('api'),
      ],
      controllers: [HealthController, InteractionController, UserinfoController, ...resourceManagement],
      providers: [
        // Background refresh of delegating owners' upstream tokens (PROACTIVE_REFRESH_*); api only.
        ProactiveRefreshService,
        { provide: APP_FILTER, useValue: new AllExceptionsFilter(API_ERROR_STATUS) },
        { provide: APP_PIPE, useFactory: createValidationPipe },
      ],
    };
  }
}
