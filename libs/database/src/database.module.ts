import { DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { RsaConfig } from '@rsa/config';
import { AuditService } from './audit.service';
import { buildDataSourceOptions } from './data-source-options';
import { DatabaseHealthService } from './database-health.service';
import { DataRevision } from './data-revision';
import { ENTITIES } from './entities';

@Global()
@Module({})
export class DatabaseModule {
  static forRoot(options: { applicationName?: string } = {}): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [RsaConfig],
          useFactory: (config: RsaConfig) => {
            if (!config.database.url) {
              throw new Error(
                'DATABASE_URL is required to run an app on its own (npm start provides an embedded database).',
              );
            }
            return {
              ...buildDataSourceOptions({
                url: config.database.url,
                poolSize: config.database.poolSize,
                migrationsRun: config.database.migrationsRun,
                applicationName: options.applicationName,
              }),
              // Fail fast and retry quickly: a dropped connection is retried by the pool anyway.
              retryAttempts: 5,
              retryDelay: 200,
            };
          },
        }),
        TypeOrmModule.forFeature(ENTITIES),
      ],
      providers: [AuditService, DatabaseHealthService, DataRevision],
      exports: [TypeOrmModule, AuditService, DatabaseHealthService, DataRevision],
    };
  }
}
