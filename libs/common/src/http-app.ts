import { INestApplication, LogLevel } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { requestIdMiddleware } from './request-id';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/** Nest log levels up to and including `level`. */
export function logLevelsUpTo(level: string): LogLevel[] {
  const index = LEVELS.indexOf(level as LogLevel);
  return LEVELS.slice(0, index < 0 ? 4 : index + 1);
}

/**
 * What every app gets before its routes: security headers on every response (helmet; no
 * X-Powered-By), request ids, no ETags, and `trust proxy` only when configured.
 */
export function applyHttpDefaults(app: NestExpressApplication, options: { trustProxy: boolean; https: boolean }): void {
  app.disable('x-powered-by');
  // Every answer is no-store (below): an ETag (a SHA-1 of each JSON body) would never be revalidated.
  // Proxied resources keep the upstream's own ETag (they are relayed, not sent through res.send).
  app.set('etag', false);
  if (options.trustProxy) app.set('trust proxy', 1);
  app.use(
    helmet({
      // On plain-http development origins, upgrade-insecure-requests would send the browser to an
      // https origin that does not exist (Swagger UI's assets, form posts); HSTS means nothing there.
      contentSecurityPolicy: { directives: { upgradeInsecureRequests: options.https ? [] : null } },
      strictTransportSecurity: options.https,
    }),
  );
  app.use(requestIdMiddleware);
  // Everything these apps answer is per-user or per-operator (claims, resources, token health, errors):
  // no cache may keep it unless a route says otherwise (oidc-provider sets its own, e.g. on discovery).
  app.use((_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
}

/** Swagger UI at /docs and the OpenAPI document at /docs-json, with bearer auth set up. */
export function setupSwagger(
  app: INestApplication,
  options: { title: string; description: string; version: string; bearerDescription: string },
): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(options.title)
      .setDescription(options.description)
      .setVersion(options.version)
      .addBearerAuth({ type: 'http', scheme: 'bearer', description: options.bearerDescription })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json', swaggerOptions: { persistAuthorization: true } });
}
