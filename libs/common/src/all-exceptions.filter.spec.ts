import type { ArgumentsHost } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { AllExceptionsFilter, isDatabaseConnectionLoss } from './all-exceptions.filter';

/** A node-postgres DatabaseError as the driver builds it (name `error`, SQLSTATE in `code`). */
function pgError(code: string, message: string): Error {
  return Object.assign(new Error(message), { name: 'error', code, severity: 'FATAL' });
}

const queryFailed = (driverError: Error) => new QueryFailedError('SELECT 1', [], driverError);

describe('isDatabaseConnectionLoss', () => {
  it.each([
    ['57P01 admin_shutdown (pg_terminate_backend)', queryFailed(pgError('57P01', 'terminating connection due to administrator command'))],
    ['08006 connection_failure', queryFailed(pgError('08006', 'connection failure'))],
    ['08003 connection_does_not_exist', queryFailed(pgError('08003', 'connection does not exist'))],
    ['a bare pg DatabaseError 57P01', pgError('57P01', 'terminating connection due to administrator command')],
    ['"Connection terminated unexpectedly" under a QueryFailedError', queryFailed(new Error('Connection terminated unexpectedly'))],
    ['ECONNRESET under a QueryFailedError', queryFailed(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))],
    ['an unwrapped connect ECONNREFUSED (pool connect while the server is down)', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' })],
  ])('%s -> true', (_, error) => {
    expect(isDatabaseConnectionLoss(error)).toBe(true);
  });

  it.each([
    ['23505 unique violation', queryFailed(pgError('23505', 'duplicate key value violates unique constraint'))],
    ['42601 syntax error', queryFailed(pgError('42601', 'syntax error at or near "SELEC"'))],
    ['57014 statement timeout', queryFailed(pgError('57014', 'canceling statement due to statement timeout'))],
    ['fetch failed (an upstream that refuses)', new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', syscall: 'connect' }) })],
    ['a plain error that only says "Connection terminated"', new Error('Connection terminated')],
    ['a string', 'Connection terminated unexpectedly'],
    ['an error-like object with a connection SQLSTATE but not from pg', Object.assign(new Error('x'), { code: '57P01' })],
  ])('%s -> false', (_, error) => {
    expect(isDatabaseConnectionLoss(error)).toBe(false);
  });
});

describe('AllExceptionsFilter with a lost database connection', () => {
  function run(exception: unknown) {
    const res = {
      headersSent: false,
      headers: {} as Record<string, string>,
      statusCode: 0,
      body: undefined as unknown,
      setHeader(name: string, value: string) {
        this.headers[name.toLowerCase()] = value;
      },
      status(code: number) {
        this.statusCode = code;
        return this;
      },
      json(body: unknown) {
        this.body = body;
        return this;
      },
    };
    const req = { method: 'GET', path: '/x', requestId: 'req-1' };
    const host = { switchToHttp: () => ({ getResponse: () => res, getRequest: () => req }) } as unknown as ArgumentsHost;
    new AllExceptionsFilter().catch(exception, host);
    return res;
  }

  it('answers 503 unavailable with Retry-After', () => {
    const res = run(queryFailed(pgError('57P01', 'terminating connection due to administrator command')));
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({ error: 'unavailable', message: expect.any(String), request_id: 'req-1' });
  });

  it('keeps other database errors a 500', () => {
    expect(run(queryFailed(pgError('23505', 'duplicate key'))).statusCode).toBe(500);
  });
});
