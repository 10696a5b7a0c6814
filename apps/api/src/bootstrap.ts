import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import type { Provider } from 'oidc-provider';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { isOpPath, OIDC_PROVIDER, OP_ROUTE_PREFIX } from '@rsa/auth';
import { applyHttpDefaults, logLevelsUpTo, setupSwagger } from '@rsa/common';
import { RsaConfig } from '@rsa/config';
import { rateLimitMiddleware, RateLimitStore } from '@rsa/database';
import { ApiModule } from './api.module';

/**
 * Builds the public app (initialised, not yet listening): the OP mounted on the Express instance
 * before Nest's router (after init it would be shadowed by Nest's 404), then the Nest routes.
 */
export async function createApiApp(config: RsaConfig): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(ApiModule.forRoot(config), {
    logger: logLevelsUpTo(config.logLevel),
    // The resource proxy relays request bodies byte for byte.
    rawBody: true,
  });
  applyHttpDefaults(app, { trustProxy: config.trustProxy, https: config.issuer.startsWith('https://') });

  // Login and token rate limits per client IP, shared across instances; before the OP, whose routes
  // Nest never sees.
  const op = OP_ROUTE_PREFIX.toLowerCase();
  app.use(
    rateLimitMiddleware(new RateLimitStore(app.get<DataSource>(getDataSourceToken())), {
      enabled: config.rateLimit.enabled,
      windowSeconds: config.rateLimit.windowSeconds,
      rules: [
        { name: 'token', max: config.rateLimit.tokenMax, matches: (path) => path === `${op}/token` },
        {
          name: 'login',
          max: config.rateLimit.loginMax,
          matches: (path) => path === `${op}/auth` || path.startsWith(`${op}/auth/`) || path === '/interaction' || path.startsWith('/interaction/'),
        },
      ],
    }),
  );

  // oidc-provider parses its own bodies, so it must see requests before Nest's body parser.
  const provider = app.get<Provider>(OIDC_PROVIDER);
  const opCallback = provider.callback();
  app.use((req: Request, res: Response, next: NextFunction) => (isOpPath(req.path) ? opCallback(req, res) : next()));

  setupSwagger(app, {
    title: 'Resource Server Adapter — public API',
    description:
      'OpenID Provider federated to the upstream provider, and the Resource Management API. ' +
      `OpenID Provider metadata: ${config.issuer}/.well-known/openid-configuration`,
    version: '0.1.0',
    bearerDescription: 'An access token issued by this RSA (authorization code + PKCE at the RSA).',
  });
  await app.init();
  return app;
}
