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

/** Error name, code and message plus the stack; messages from libs never carry token values. */
function describe(exception: unknown): string {
  if (exception instanceof Error) return exception.stack ?? `${exception.name}: ${exception.message}`;
  return String(exception);
}
