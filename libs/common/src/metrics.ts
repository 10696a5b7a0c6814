import { DynamicModule, Inject, Injectable, MiddlewareConsumer, Module, NestModule, RequestMethod } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

/**
 * Process-wide Prometheus metrics. prom-client refuses to register a metric name twice in one
 * registry, and several Nest apps can live in one process (`npm start` runs api and admin together;
 * tests start many stacks), so the registry and its metrics are created once per process and every
 * app shares them. Values are therefore per process: a deployment with separate api and admin
 * processes sees the api's refreshes and upstream calls only in the api process's registry.
 */
let shared: { registry: Registry; metrics: ProcessMetrics } | undefined;

export interface ProcessMetrics {
  /** HTTP requests served by the Nest apps, by app, method, route template and status code. */
  httpRequestDuration: Histogram<'app' | 'method' | 'route' | 'status_code'>;
  /** Calls to the upstream OpenID provider (discovery, code exchange, refresh, userinfo, revocation). */
  upstreamRequestDuration: Histogram<'operation' | 'outcome'>;
  /** Refreshes of upstream tokens that reached an outcome, by outcome and what started them. */
  upstreamTokenRefreshes: Counter<'outcome' | 'trigger'>;
}

/** Where HttpMetricsModule mounts the middleware; a request left with this route matched nothing else. */
const MIDDLEWARE_PATH = '*path';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

function processMetrics(): { registry: Registry; metrics: ProcessMetrics } {
  if (shared) return shared;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics: ProcessMetrics = {
    httpRequestDuration: new Histogram({
      name: 'rsa_http_request_duration_seconds',
      help: 'Latency of HTTP requests served by this process, by app, method, route template and status code',
      labelNames: ['app', 'method', 'route', 'status_code'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    upstreamRequestDuration: new Histogram({
      name: 'rsa_upstream_request_duration_seconds',
      help: 'Latency of calls from this process to the upstream OpenID provider, by operation and outcome',
      labelNames: ['operation', 'outcome'],
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    upstreamTokenRefreshes: new Counter({
      name: 'rsa_upstream_token_refreshes_total',
      help: 'Upstream token refreshes run by this process, by outcome (success, invalid_grant, upstream_timeout, upstream_error) and trigger (on_demand, admin, proactive)',
      labelNames: ['outcome', 'trigger'],
      registers: [registry],
    }),
  };
  shared = { registry, metrics };
  return shared;
}

/**
 * The process's metrics as a Nest provider, so services take them by injection (and unit tests can
 * pass a stub). Every instance refers to the same process-wide registry.
 */
@Injectable()
export class RsaMetrics {
  readonly registry: Registry;
  readonly http: ProcessMetrics['httpRequestDuration'];
  readonly upstreamRequests: ProcessMetrics['upstreamRequestDuration'];
  readonly refreshes: ProcessMetrics['upstreamTokenRefreshes'];

  constructor() {
    const { registry, metrics } = processMetrics();
    this.registry = registry;
    this.http = metrics.httpRequestDuration;
    this.upstreamRequests = metrics.upstreamRequestDuration;
    this.refreshes = metrics.upstreamTokenRefreshes;
  }
}

/**
 * Observes each request's latency when its response is finished. The route label is the matched
 * route template (`/accounts/:id/tokens`), never the raw path, so ids do not explode the series
 * count; requests no route matched are labelled `(unmatched)`.
 */
export function httpMetricsMiddleware(app: string, metrics: RsaMetrics = new RsaMetrics()) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const end = metrics.http.startTimer();
    res.once('finish', () => {
      const route = (req.route as { path?: unknown } | undefined)?.path;
      const matched = typeof route === 'string' && route.replace(/^\//, '') !== MIDDLEWARE_PATH;
      end({
        app,
        method: req.method,
        route: matched ? `${req.baseUrl}${route}` : '(unmatched)',
        status_code: String(res.statusCode),
      });
    });
    next();
  };
}

const HTTP_METRICS_APP = Symbol('HTTP_METRICS_APP');

/** Records the latency of every request of the app that imports it (`HttpMetricsModule.forApp('api')`). */
@Module({})
export class HttpMetricsModule implements NestModule {
  static forApp(app: string): DynamicModule {
    return {
      module: HttpMetricsModule,
      providers: [RsaMetrics, { provide: HTTP_METRICS_APP, useValue: app }],
      exports: [RsaMetrics],
    };
  }

  constructor(
    @Inject(HTTP_METRICS_APP) private readonly app: string,
    private readonly metrics: RsaMetrics,
  ) {}

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(httpMetricsMiddleware(this.app, this.metrics)).forRoutes({ path: MIDDLEWARE_PATH, method: RequestMethod.ALL });
  }
}
