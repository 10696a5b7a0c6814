import { Logger } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { DataSource } from 'typeorm';

/** Where a hit landed: the count of its window so far and the seconds until that window ends. */
export interface RateLimitHit {
  count: number;
  resetSeconds: number;
}

/**
 * Fixed-window counters shared by every instance through PostgreSQL (`rate_limit_bucket`). One
 * statement per hit: an atomic upsert that increments the row of the current window and returns the
 * new count. Windows are aligned on the database clock, so instances with skewed clocks still count
 * in the same row.
 */
export class RateLimitStore {
  constructor(private readonly dataSource: DataSource) {}

  async hit(key: string, windowSeconds: number): Promise<RateLimitHit> {
    const rows: { count: number | string; reset_seconds: number | string }[] = await this.dataSource.query(
      `INSERT INTO rate_limit_bucket (key, window_start, count)
       VALUES ($1, to_timestamp((floor(extract(epoch FROM clock_timestamp()) / $2::integer) * $2::integer)::double precision), 1)
       ON CONFLICT (key, window_start) DO UPDATE SET count = rate_limit_bucket.count + 1
       RETURNING count,
         extract(epoch FROM (window_start + $2::integer * interval '1 second' - clock_timestamp()))::double precision AS reset_seconds`,
      [key, windowSeconds],
    );
    return { count: Number(rows[0].count), resetSeconds: Number(rows[0].reset_seconds) };
  }

  /** Deletes the rows of windows that ended more than one window ago; returns how many. */
  async purge(windowSeconds: number): Promise<number> {
    const result: [unknown[], number] = await this.dataSource.query(
      `DELETE FROM rate_limit_bucket WHERE window_start < clock_timestamp() - 2 * $1::integer * interval '1 second'`,
      [windowSeconds],
    );
    return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
  }
}

/** A group of routes that share one counter per client IP. */
export interface RateLimitRule {
  /** Short name, part of the counter key (`<name>:<ip>`) and of the 429 body. */
  name: string;
  /** Requests allowed per client IP and window. */
  max: number;
  /** Whether a request path belongs to this rule; gets the normalised path (see normaliseRatePath). */
  matches(path: string): boolean;
}

export interface RateLimitOptions {
  enabled: boolean;
  windowSeconds: number;
  rules: RateLimitRule[];
  /** Longest wait for the store before letting the request through (fail open). Default 2000 ms. */
  storeTimeoutMs?: number;
}

/**
 * The path as routers see it, whatever its spelling: percent-decoded, lower case (Express routes
 * case-insensitively), no repeated or trailing slashes. So `/OIDC//Token/` counts as `/oidc/token`.
 */
export function normaliseRatePath(path: string): string {
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // malformed escapes: match the raw path
  }
  const collapsed = decoded.toLowerCase().replace(/\/{2,}/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/+$/, '') : collapsed;
}

/**
 * Express middleware limiting requests per client IP (`req.ip`, which honours `trust proxy`) over a
 * fixed window, with the counters in PostgreSQL so the limit holds across instances. Over the limit:
 * 429 with `Retry-After` and a JSON error body. Mounted before the OP (whose routes Nest never sees).
 *
 * Fails open: when the store errors or does not answer within `storeTimeoutMs`, the request goes
 * through and a warning is logged (at most every 30 s) — a database hiccup must not take login down
 * on top of everything else; the database's own failure is reported by readiness.
 */
export function rateLimitMiddleware(store: RateLimitStore, options: RateLimitOptions): RequestHandler {
  const logger = new Logger('RateLimit');
  if (!options.enabled || !options.rules.length) return (_req, _res, next) => next();
  const timeoutMs = options.storeTimeoutMs ?? 2000;
  let lastPurge = 0;
  let lastWarning = 0;

  const warn = (message: string) => {
    const now = Date.now();
    if (now - lastWarning < 30_000) return;
    lastWarning = now;
    logger.warn(message);
  };

  const maybePurge = () => {
    const now = Date.now();
    if (now - lastPurge < options.windowSeconds * 1000) return;
    lastPurge = now;
    store.purge(options.windowSeconds).catch((error: unknown) => warn(`rate-limit purge failed: ${describe(error)}`));
  };

  return (req: Request, res: Response, next: NextFunction) => {
    const path = normaliseRatePath(req.path);
    const rule = options.rules.find((candidate) => candidate.matches(path));
    if (!rule) return next();
    const key = `${rule.name}:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;

    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    });
    Promise.race([store.hit(key, options.windowSeconds), timeout])
      .then(
        (hit) => {
          clearTimeout(timer);
          maybePurge();
          if (hit.count <= rule.max) return next();
          const retryAfter = Math.max(1, Math.ceil(hit.resetSeconds));
          res.setHeader('Retry-After', String(retryAfter));
          res.setHeader('Cache-Control', 'no-store');
          res.status(429).json({
            error: 'too_many_requests',
            message: `Too many ${rule.name} requests from this address; retry after ${retryAfter} s.`,
            retry_after: retryAfter,
            request_id: req.requestId,
          });
        },
        (error: unknown) => {
          clearTimeout(timer);
          warn(`rate limiter store unavailable, letting requests through (fail open): ${describe(error)}`);
          next();
        },
      )
      .catch(next);
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
