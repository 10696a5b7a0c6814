import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { applyHttpDefaults, logLevelsUpTo, setupSwagger } from '@rsa/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { ConfigValidationError, RsaConfig } from '@rsa/config';
import { rateLimitMiddleware, RateLimitStore } from '@rsa/database';
import { AdminModule } from './admin.module';

/** Builds the admin app (initialised, not yet listening). */
export async function createAdminApp(config: RsaConfig): Promise<NestExpressApplication> {
  if (!config.adminTokens.length) {
    throw new ConfigValidationError([{ variable: 'ADMIN_TOKENS', messages: ['is required by the admin app (comma-separated list of tokens)'] }]);
  }
  const app = await NestFactory.create<NestExpressApplication>(AdminModule.forRoot(config), {
    logger: logLevelsUpTo(config.logLevel),
  });
  applyHttpDefaults(app, { trustProxy: config.trustProxy, https: config.issuer.startsWith('https://') });
  // Admin calls per client IP (failed authentications included), shared across instances; health
  // probes are never limited.
  app.use(
    rateLimitMiddleware(new RateLimitStore(app.get<DataSource>(getDataSourceToken())), {
      enabled: config.rateLimit.enabled,
      windowSeconds: config.rateLimit.windowSeconds,
      rules: [{ name: 'admin', max: config.rateLimit.adminMax, matches: (path) => path !== '/health' && !path.startsWith('/health/') }],
    }),
  );
  setupSwagger(app, {
    title: 'Resource Server Adapter — admin API',
    description: 'Operator API: resource catalogue, delegations, clients, token health and audit. Authenticate with a token from ADMIN_TOKENS.',
    version: '0.1.0',
    bearerDescription: 'One of the static admin tokens configured in ADMIN_TOKENS.',
  });
  await app.init();
  return app;
}
