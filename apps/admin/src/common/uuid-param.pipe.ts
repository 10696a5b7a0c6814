import { BadRequestException, ParseUUIDPipe } from '@nestjs/common';

/**
 * A UUID path parameter; anything else is a 400 in the shape of the validation errors, naming the
 * parameter (`fields: [{ field: 'id', … }]`), instead of ParseUUIDPipe's anonymous message.
 */
export const uuidParam = (name = 'id'): ParseUUIDPipe =>
  new ParseUUIDPipe({
    exceptionFactory: () =>
      new BadRequestException({ error: 'invalid_request', message: 'Validation failed', fields: [{ field: name, messages: [`${name} must be a UUID`] }] }),
  });
