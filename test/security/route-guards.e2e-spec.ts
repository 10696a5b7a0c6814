import { randomUUID } from 'node:crypto';
import { Controller, Delete, Get, Module, Param, UseGuards } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BearerTokenValidator, RsaBearerGuard, REQUIRED_SCOPES } from '@rsa/auth';
import { RsaConfig } from '@rsa/config';
import { AdminTokenGuard } from '../../apps/admin/src/auth/admin-token.guard';
import { startAdmin, type AdminInstance } from '../support/admin';
import { startStack, type TestStack } from '../support/stack';
import { ALL_METHODS, expressOnlyRoutes, fillPath, globalGuardClasses, nestRoutes, type NestRoute } from './route-inventory';

/**
 * Case 11 (docs/security.md): every route of both apps has an authentication guard, except an
 * explicit public list. The route list is read from Nest's router (controllers' metadata) and from the
 * Express stack, so a route added without a guard — or a new public route — fails this suite.
 */

/** api routes reachable without a bearer token, and why. */
const API_PUBLIC: Record<string, string> = {
  'GET /health/live': 'liveness probe',
  'GET /health/ready': 'readiness probe',
  'GET /interaction/callback': 'OP login interaction: the upstream redirects the browser here (state cookie checked)',
  'GET /interaction/:uid': 'OP login interaction (oidc-provider interaction cookie checked)',
};
/** admin routes marked @Public(). */
const ADMIN_PUBLIC: Record<string, string> = {
  'GET /health/live': 'liveness probe',
  'GET /health/ready': 'readiness probe',
};
/**
 * Routes on the Express instance outside Nest's controllers. The OP (oidc-provider) is mounted as a
 * middleware for `/.well-known/openid-configuration` and `/oidc/*` (isOpPath) and authenticates its
 * clients itself (discovery and JWKS are public by design); it adds no Express route layer.
 */
const EXPRESS_ONLY_ALLOWED = /^[A-Z,-]+ (\/docs(-json|-yaml)?(\/.*)?|\/\*path)$/;
// `/*path` on every method is Nest's own catch-all (its 404 for unknown routes); the suites check it answers 404.

const isAdminPublic = (route: NestRoute) =>
  Reflect.getMetadata('admin:public', route.handler) === true || Reflect.getMetadata('admin:public', route.controller) === true;

/** api routes that are neither public nor behind RsaBearerGuard. */
const unguardedApiRoutes = (routes: NestRoute[]) => routes.filter((r) => !(r.key in API_PUBLIC) && !r.guards.includes(RsaBearerGuard)).map((r) => r.key);

/** A would-be new api route: one guarded, one forgotten. Only used to show the check catches it. */
@Controller('widgets')
class WidgetsController {
  @Get(':id')
  @UseGuards(RsaBearerGuard)
  get(@Param('id') id: string) {
    return id;
  }

  @Delete(':id')
  remove(@Param('id') id: string) {
    return id;
  }
}
@Module({})
class WidgetsModule {
  static with(config: RsaConfig) {
    // RsaBearerGuard is instantiated when the module is scanned: it needs the config and a validator
    // (nothing runs: no request is made to this app).
    return {
      module: WidgetsModule,
      controllers: [WidgetsController],
      providers: [
        { provide: RsaConfig, useValue: config },
        { provide: BearerTokenValidator, useValue: {} },
      ],
    };
  }
}

const fill = (route: NestRoute) => fillPath(route.path, Object.fromEntries(route.params.map((p) => [p, p === 'path' ? 'x' : randomUUID()])));
const methodsOf = (route: NestRoute) => (route.method === 'ALL' ? ALL_METHODS : [route.method]);

describe('Security 11: every route is guarded unless explicitly public', () => {
  let stack: TestStack;
  let admin: AdminInstance;
  let apiRoutes: NestRoute[];
  let adminRoutes: NestRoute[];

  beforeAll(async () => {
    stack = await startStack();
    admin = await startAdmin(stack);
    apiRoutes = nestRoutes(stack.api);
    adminRoutes = nestRoutes(admin.app);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  it('the route inventory finds the routes of both apps (sanity check of the walker)', () => {
    const apiKeys = apiRoutes.map((r) => r.key);
    expect(apiKeys).toEqual(expect.arrayContaining(['GET /userinfo', 'POST /userinfo', 'GET /resources/:id', 'ALL /resources/:id/data/*path', 'PATCH /delegations/:id']));
    expect(adminRoutes.map((r) => r.key)).toEqual(
      expect.arrayContaining(['GET /generic-resources', 'DELETE /accounts/:id/tokens', 'POST /clients/:id/secret', 'GET /delegations/at-risk', 'GET /metrics']),
    );
  });

  describe('api', () => {
    it('every route not on the public list has RsaBearerGuard and requires at least one scope', () => {
      expect(unguardedApiRoutes(apiRoutes)).toEqual([]);
      const unscoped = apiRoutes
        .filter((r) => !(r.key in API_PUBLIC))
        .filter((r) => !((Reflect.getMetadata(REQUIRED_SCOPES, r.handler) ?? []).length + (Reflect.getMetadata(REQUIRED_SCOPES, r.controller) ?? []).length))
        .map((r) => r.key);
      expect(unscoped).toEqual([]);
    });

    it('the public list holds only routes that exist (a stale entry is a mistake too)', () => {
      const keys = new Set(apiRoutes.map((r) => r.key));
      expect(Object.keys(API_PUBLIC).filter((k) => !keys.has(k))).toEqual([]);
    });

    it('nothing but Swagger is routed on Express outside Nest (the OP is a middleware limited to isOpPath)', async () => {
      expect(expressOnlyRoutes(stack.api).filter((r) => !EXPRESS_ONLY_ALLOWED.test(r))).toEqual([]);
      for (const method of ALL_METHODS) {
        const res = await fetch(`${stack.issuer}/no-such-route-${randomUUID()}`, { method });
        await res.arrayBuffer();
        expect([method, res.status]).toEqual([method, 404]);
      }
    });

    it('every guarded route, for every method it answers, is a 401 with a Bearer challenge without a token', async () => {
      const failures: string[] = [];
      for (const route of apiRoutes.filter((r) => !(r.key in API_PUBLIC))) {
        for (const method of methodsOf(route)) {
          const res = await fetch(`${stack.issuer}${fill(route)}`, { method });
          await res.arrayBuffer();
          if (res.status !== 401 || !/^Bearer realm="rsa"/.test(res.headers.get('www-authenticate') ?? '')) {
            failures.push(`${method} ${route.path}: ${res.status} ${res.headers.get('www-authenticate')}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  });

  it('self-check: a new controller with a forgotten guard is caught by the same check', async () => {
    const app = await NestFactory.create(WidgetsModule.with(stack.config), { logger: false, abortOnError: false });
    try {
      expect(unguardedApiRoutes(nestRoutes(app))).toEqual(['DELETE /widgets/:id']);
    } finally {
      await app.close();
    }
  });

  describe('admin', () => {
    it('AdminTokenGuard is a global guard (APP_GUARD) and no route opts out except the public list', () => {
      expect(globalGuardClasses(admin.app)).toContain(AdminTokenGuard);
      const publicKeys = adminRoutes.filter(isAdminPublic).map((r) => r.key).sort();
      expect(publicKeys).toEqual(Object.keys(ADMIN_PUBLIC).sort());
    });

    it('nothing but Swagger is routed on Express outside Nest', async () => {
      expect(expressOnlyRoutes(admin.app).filter((r) => !EXPRESS_ONLY_ALLOWED.test(r))).toEqual([]);
      // An unknown route matches no handler, so there is nothing to guard: a plain 404.
      expect((await admin.request('GET', `/no-such-route-${randomUUID()}`, { token: null })).status).toBe(404);
    });

    it('every non-public route, for every method it answers, is a 401 without a token and with a wrong one', async () => {
      const failures: string[] = [];
      for (const route of adminRoutes.filter((r) => !isAdminPublic(r))) {
        for (const method of methodsOf(route)) {
          for (const token of [null, 'not-an-admin-token']) {
            const res = await admin.request(method, fill(route), { token, body: method === 'GET' || method === 'DELETE' ? undefined : {} });
            if (res.status !== 401 || res.body?.error !== 'unauthorized') failures.push(`${method} ${route.path} (token ${token}): ${res.status}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });

    it('the public routes answer without a token', async () => {
      for (const key of Object.keys(ADMIN_PUBLIC)) {
        const [method, path] = key.split(' ');
        expect((await admin.request(method, path, { token: null })).status).toBe(200);
      }
    });
  });
});
