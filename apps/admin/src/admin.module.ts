import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR, APP_PIPE } from '@nestjs/core';
import { AllExceptionsFilter, createValidationPipe, DEFAULT_ERROR_STATUS } from '@rsa/common';
import { loadConfig, RsaConfig, RsaConfigModule } from '@rsa/config';
import { DatabaseModule } from '@rsa/database';
import { AdminAccountsModule } from './accounts/accounts.module';
import { AdminAuditEventsModule } from './audit-events/audit-events.module';
import { AdminTokenGuard } from './auth/admin-token.guard';
import { AdminCatalogueModule } from './catalogue/catalogue.module';
import { AdminClientsModule } from './clients/clients.module';
import { IdempotencyInterceptor } from './common/idempotency.interceptor';
import { AdminDelegationsModule } from './delegations/delegations.module';
import { HealthController } from './health/health.controller';
import { AdminMetricsModule } from './metrics/metrics.module';
import { AdminTokenHealthModule } from './token-health/token-health.module';

/** How the admin app maps library error codes to HTTP statuses. */
export const ADMIN_ERROR_STATUS: Record<string, number> = {
  ...DEFAULT_ERROR_STATUS,
  'UPSTREAM.UPSTREAM_TIMEOUT': 504,
  'UPSTREAM.TIMEOUT': 504,
  'UPSTREAM.UPSTREAM_ERROR': 502,
  'UPSTREAM.UNAVAILABLE': 502,
  'UPSTREAM.OAUTH_ERROR': 502,
  'UPSTREAM.OWNER_LOGIN_REQUIRED': 409,
};

@Module({})
export class AdminModule {
  static forRoot(config: RsaConfig = loadConfig(process.env)): DynamicModule {
    return {
      module: AdminModule,
      imports: [
        RsaConfigModule.forRoot({ config }),
        DatabaseModule.forRoot({ applicationName: 'rsa-admin' }),
        AdminCatalogueModule,
        AdminDelegationsModule,
        AdminClientsModule,
        AdminAccountsModule,
        AdminAuditEventsModule,
        AdminTokenHealthModule,
        AdminMetricsModule,
      ],
      controllers: [HealthController],
      providers: [
        { provide: APP_GUARD, useClass: AdminTokenGuard },
        { provide: APP_FILTER, useValue: new AllExceptionsFilter(ADMIN_ERROR_STATUS) },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
    };
  }
}
