import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { BearerAuthException } from './bearer-error';
import { DEFAULT_ERROR_STATUS, DomainError } from './domain-error';

/**
 * The one exception filter per app (registered as APP_FILTER). HttpExceptions pass through with
 * their body; DomainErrors map by code; anything else is a bare 500 with the request id, and the
 * detail goes to the log only.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Exceptions');

  constructor(private readonly statusByCode: Record<string, number> = DEFAULT_ERROR_STATUS) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const requestId = req?.requestId;
    if (res.headersSent) {
      this.logger.error(`error after headers were sent (request ${requestId}): ${describe(exception)}`);
      res.end();
      return;
    }

    if (exception instanceof BearerAuthException) {
      res.setHeader('WWW-Authenticate', exception.challenge);
      res.setHeader('Cache-Control', 'no-store');
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const body = exception.getResponse();
      if (status >= 500) this.logger.error(`${req.method} ${req.path} -> ${status}: ${describe(exception)}`);
      res.status(status).json(typeof body === 'string' ? { error: codeForStatus(status), message: body } : { ...body, request_id: requestId });
      return;
    }
    if (exception instanceof DomainError && this.statusByCode[exception.code]) {
      res.status(this.statusByCode[exception.code]).json({
        error: exception.code,
        message: exception.message,
        ...(exception.details ? { details: exception.details } : {}),
        request_id: requestId,
      });
      return;
    }
    if (isDatabaseConnectionLoss(exception)) {
      // The database went away under this request (connection killed, server restarting or down):
      // nothing the client did wrong and nothing worth a 500; the pool reconnects for the next one.
      this.logger.warn(`${req?.method} ${req?.path} -> 503 (request ${requestId}): database connection lost: ${describe(exception)}`);
      res.setHeader('Retry-After', '1');
      res.status(503).json({ error: 'unavailable', message: 'The database is unavailable; retry shortly', request_id: requestId });
      return;
    }
    const clientError = httpClientError(exception);
    if (clientError) {
      // body-parser's http-errors (413 too large, 415 charset, 400 aborted...): the client's fault, not a 500.
      res.status(clientError.status).json({ error: codeForStatus(clientError.status), message: clientError.message, request_id: requestId });
      return;
    }
    this.logger.error(`${req?.method} ${req?.path} -> 500 (request ${requestId}): ${describe(exception)}`);
    res.status(500).json({ error: 'internal_error', message: 'Internal server error', request_id: requestId });
  }
}

function codeForStatus(status: number): string {
  if (status === 413) return 'payload_too_large';
  if (status === 415) return 'unsupported_media_type';
  return status === 404 ? 'not_found' : status === 400 ? 'invalid_request' : status >= 500 ? 'internal_error' : 'error';
}

/**
 * An "http-errors" 4xx (what Express's body parsers raise before any route runs) whose message is
 * meant for the client (`expose`); anything else is left to the generic 500.
 */
function httpClientError(exception: unknown): { status: number; message: string } | undefined {
  if (!(exception instanceof Error)) return undefined;
  const { status, statusCode, expose } = exception as Error & { status?: unknown; statusCode?: unknown; expose?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  if (typeof code !== 'number' || code < 400 || code > 499 || expose !== true) return undefined;
  return { status: code, message: exception.message };
}

/**
 * SQLSTATEs that mean the connection, not the statement, failed: class 08 (connection exception),
 * 57P01–57P03 (admin shutdown, crash shutdown, cannot connect now) and 53300 (too many connections).
 */
const CONNECTION_SQLSTATES = new Set(['08000', '08001', '08003', '08004', '08006', '08007', '57P01', '57P02', '57P03', '53300']);
/** Socket errors of the database connection itself. */
const CONNECTION_SOCKET_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTCONN']);
/** node-postgres and pg-pool messages for a connection that died or could not be made. */
const CONNECTION_MESSAGES = /^(Connection terminated( unexpectedly| due to connection timeout)?|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/;

/**
 * Whether an error is the loss of the database connection (-> 503) rather than a failing statement
 * (constraint violation, syntax, … -> still 500). Looks at the error and the driver error TypeORM
 * wraps (QueryFailedError.driverError) or a `cause`. Socket codes and pg's own messages count only
 * for database errors (a TypeORM error or a pg error), so a failing upstream HTTP call never does.
 */
export function isDatabaseConnectionLoss(exception: unknown): boolean {
  const seen = new Set<unknown>();
  const chain: Error[] = [];
  // Duck-typed, not `instanceof Error`: Node's own socket errors may come from another realm (vm, Jest).
  for (let e: unknown = exception; isErrorLike(e) && !seen.has(e) && chain.length < 5; ) {
    seen.add(e);
    chain.push(e);
    e = (e as { driverError?: unknown }).driverError ?? (e as { cause?: unknown }).cause;
  }
  const fromDatabase = chain.some(
    (e) =>
      e.name === 'QueryFailedError' ||
      e.name === 'TypeORMError' ||
      isPgError(e) ||
      // pg-pool's connect errors reach the caller unwrapped (e.g. ECONNREFUSED while the server is down).
      /node_modules[\\/]pg(-pool)?[\\/]/.test(e.stack ?? ''),
  );
  // A connect failure nobody wrapped (pg-pool hands the socket's own error to the caller): the
  // database is down or unreachable. Outbound HTTP calls wrap theirs (fetch: TypeError, upstream
  // client: DomainError), so these do not reach here unwrapped.
  const first = chain[0] as (Error & { syscall?: unknown; code?: unknown }) | undefined;
  if (first && first.name === 'Error' && first.syscall === 'connect' && typeof first.code === 'string' && CONNECTION_SOCKET_CODES.has(first.code)) {
    return true;
  }
  return chain.some((e) => {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_SQLSTATES.has(code) && isPgError(e)) return true;
    if (!fromDatabase) return false;
    return (typeof code === 'string' && CONNECTION_SOCKET_CODES.has(code)) || CONNECTION_MESSAGES.test(e.message);
  });
}

function isErrorLike(e: unknown): e is Error {
  return typeof e === 'object' && e !== null && typeof (e as Error).message === 'string' && typeof (e as Error).name === 'string';
}

/** A node-postgres DatabaseError (it carries the server's `severity` and SQLSTATE `code`). */
function isPgError(e: Error): boolean {
  const { severity, code } = e as { severity?: unknown; code?: unknown };
  return e.name === 'error' || e.name === 'DatabaseError' ? typeof code === 'string' : typeof severity === 'string' && typeof code === 'string';
}

/** Error name, code and message plus the stack; messages from libs never carry token values. */
function describe(exception: unknown): string {
  if (exception instanceof Error) return exception.stack ?? `${exception.name}: ${exception.message}`;
  return String(exception);
}
