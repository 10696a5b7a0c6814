import { DynamicModule, Global, Module } from '@nestjs/common';
import { loadConfig, RsaConfig } from './rsa-config';

export interface RsaConfigModuleOptions {
  /** An already-built configuration (tests, the launcher); default: validate `process.env`. */
  config?: RsaConfig;
}

@Global()
@Module({})
export class RsaConfigModule {
  static forRoot(options: RsaConfigModuleOptions = {}): DynamicModule {
    return {
      module: RsaConfigModule,
      providers: [{ provide: RsaConfig, useFactory: () => options.config ?? loadConfig(process.env) }],
      exports: [RsaConfig],
    };
  }
}
