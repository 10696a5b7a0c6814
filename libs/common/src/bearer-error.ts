import { HttpException } from '@nestjs/common';

export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/**
 * An RFC 6750 §3 error: the status, the JSON body and the `WWW-Authenticate` challenge. A request
 * without any credentials gets the bare challenge with no error code (RFC 6750 §3.1).
 */
export class BearerAuthException extends HttpException {
  readonly challenge: string;

  constructor(
    realm: string,
    readonly error?: BearerErrorCode,
    description?: string,
    scope?: string,
  ) {
    const status = error === 'insufficient_scope' ? 403 : error === 'invalid_request' ? 400 : 401;
    const params = [`realm="${realm}"`];
    if (error) params.push(`error="${error}"`);
    if (description) params.push(`error_description="${description.replace(/["\\]/g, '')}"`);
    if (scope) params.push(`scope="${scope}"`);
    super(
      error
        ? { error, error_description: description, ...(scope ? { scope } : {}) }
        : { error: 'unauthorized', error_description: 'Bearer token required' },
      status,
    );
    this.challenge = `Bearer ${params.join(', ')}`;
  }
}
