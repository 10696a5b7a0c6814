import { RequestMethod } from '@nestjs/common';
import { GUARDS_METADATA, METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { INestApplication, Type } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';

/** One route as Nest's router knows it, read from the controllers' metadata (never a hand-written list). */
export interface NestRoute {
  /** `GET`, `POST`, … or `ALL` for @All(). */
  method: string;
  /** Full path with Nest's parameter syntax, e.g. `/resources/:id/data/*path`. */
  path: string;
  controller: Type<unknown>;
  handlerName: string;
  handler: (...args: unknown[]) => unknown;
  /** Guards declared with @UseGuards on the controller or the handler (not global APP_GUARDs). */
  guards: unknown[];
  /** The handler takes @Body(). */
  hasBody: boolean;
  /** The handler takes @Query() (a whole query DTO). */
  hasQuery: boolean;
  /** Route parameters (`:id` → `id`; `*path` → `path`). */
  params: string[];
  /** `${method} ${path}`, the key the suites' case tables use. */
  key: string;
}

const join = (...parts: string[]) => ('/' + parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')).replace(/\/+/g, '/');
const asArray = (value: string | string[] | undefined): string[] => (value === undefined ? [''] : Array.isArray(value) ? value : [value]);

/** Every route of every controller of every module of a Nest application. */
export function nestRoutes(app: INestApplication): NestRoute[] {
  const routes: NestRoute[] = [];
  const seen = new Set<Type<unknown>>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as Type<unknown>;
      if (!controller || seen.has(controller)) continue;
      seen.add(controller);
      const classPaths = asArray(Reflect.getMetadata(PATH_METADATA, controller));
      const classGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, controller) ?? [];
      const proto = controller.prototype;
      for (const name of Object.getOwnPropertyNames(proto)) {
        if (name === 'constructor') continue;
        const handler = Object.getOwnPropertyDescriptor(proto, name)?.value;
        if (typeof handler !== 'function') continue;
        const requestMethod: RequestMethod | undefined = Reflect.getMetadata(METHOD_METADATA, handler);
        const methodPaths = Reflect.getMetadata(PATH_METADATA, handler);
        if (requestMethod === undefined || methodPaths === undefined) continue;
        const args: Record<string, unknown> = Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, name) ?? {};
        const argTypes = Object.keys(args).map((k) => k.split(':')[0]);
        const handlerGuards: unknown[] = Reflect.getMetadata(GUARDS_METADATA, handler) ?? [];
        for (const classPath of classPaths) {
          for (const methodPath of asArray(methodPaths)) {
            const path = join(classPath, methodPath);
            const method = RequestMethod[requestMethod];
            routes.push({
              method,
              path,
              controller,
              handlerName: name,
              handler,
              guards: [...classGuards, ...handlerGuards],
              hasBody: argTypes.includes(String(RouteParamtypes.BODY)),
              hasQuery: argTypes.includes(String(RouteParamtypes.QUERY)),
              params: [...path.matchAll(/[:*]([A-Za-z_]\w*)/g)].map((m) => m[1]),
              key: `${method} ${path}`,
            });
          }
        }
      }
    }
  }
  return routes.sort((a, b) => a.key.localeCompare(b.key));
}

/** The global guards registered as APP_GUARD providers anywhere in the application. */
export function globalGuardClasses(app: INestApplication): unknown[] {
  const guards: unknown[] = [];
  for (const module of app.get(ModulesContainer).values()) {
    for (const [token, wrapper] of module.providers) {
      if (typeof token === 'string' && token.startsWith('APP_GUARD')) guards.push(wrapper.metatype);
    }
  }
  return guards;
}

/**
 * Routes registered on the Express instance itself, outside Nest's controllers (Swagger, anything a
 * bootstrap adds with app.use/app.get): `path` per layer that has a route.
 */
export function expressOnlyRoutes(app: INestApplication): string[] {
  const nest = new Set(nestRoutes(app).map((r) => r.path));
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const express: any = app.getHttpAdapter().getInstance();
  const stack: { route?: { path: string | string[]; methods: Record<string, boolean> } }[] = express.router?.stack ?? express._router?.stack ?? [];
  return stack
    .filter((l) => l.route && !asArray(l.route.path).every((p) => nest.has(p)))
    .map((l) => `${Object.keys(l.route!.methods).join(',').toUpperCase()} ${l.route!.path}`);
}

/** Methods an @All() route answers; the suites exercise each. */
export const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** A path with its parameters filled in. */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/[:*]([A-Za-z_]\w*)/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`no value for route parameter "${name}" of ${path}`);
    return values[name];
  });
}
