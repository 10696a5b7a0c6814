import type { Request } from 'express';
import { extractBearerToken } from './extract-bearer-token';

/** A request-like object with only what extractBearerToken reads. */
function req(parts: {
  method?: string;
  authorization?: string;
  contentType?: string;
  body?: unknown;
  query?: Record<string, unknown>;
}): Request {
  const headers: Record<string, string> = {};
  if (parts.authorization !== undefined) headers.authorization = parts.authorization;
  if (parts.contentType !== undefined) headers['content-type'] = parts.contentType;
  return { method: parts.method ?? 'GET', headers, body: parts.body, query: parts.query ?? {} } as unknown as Request;
}

const FORM = 'application/x-www-form-urlencoded';

describe('extractBearerToken (RFC 6750 §2)', () => {
  describe('Authorization header (§2.1)', () => {
    it('takes the token after the Bearer scheme', () => {
      expect(extractBearerToken(req({ authorization: 'Bearer abc.DEF-123_~+/' }))).toEqual({ kind: 'token', token: 'abc.DEF-123_~+/' });
    });

    it('accepts the scheme name in any case and trailing "=" padding', () => {
      expect(extractBearerToken(req({ authorization: 'bearer abc==' }))).toEqual({ kind: 'token', token: 'abc==' });
      expect(extractBearerToken(req({ authorization: 'BEARER abc' }))).toEqual({ kind: 'token', token: 'abc' });
    });

    it('tolerates extra whitespace around the token', () => {
      expect(extractBearerToken(req({ authorization: '  Bearer    abc  ' }))).toEqual({ kind: 'token', token: 'abc' });
    });

    it('reports no token when there is no Authorization header at all', () => {
      expect(extractBearerToken(req({}))).toEqual({ kind: 'missing' });
    });

    it('treats another scheme (Basic, Digest, DPoP) as no bearer token', () => {
      expect(extractBearerToken(req({ authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }))).toEqual({ kind: 'missing' });
      expect(extractBearerToken(req({ authorization: 'Digest username="x"' }))).toEqual({ kind: 'missing' });
      expect(extractBearerToken(req({ authorization: 'DPoP abc' }))).toEqual({ kind: 'missing' });
    });

    it('treats an empty or blank header as no token', () => {
      expect(extractBearerToken(req({ authorization: '' }))).toEqual({ kind: 'missing' });
      expect(extractBearerToken(req({ authorization: '   ' }))).toEqual({ kind: 'missing' });
    });

    it.each([
      ['the scheme alone', 'Bearer'],
      ['the scheme and blanks', 'Bearer    '],
      ['two tokens', 'Bearer a b'],
      ['characters outside b64token', 'Bearer ###'],
      ['a quoted token', 'Bearer "abc"'],
      ['padding in the middle', 'Bearer ab=c'],
      ['a comma-separated list', 'Bearer abc,def'],
    ])('refuses %s as invalid_request', (_name, authorization) => {
      expect(extractBearerToken(req({ authorization }))).toMatchObject({ kind: 'invalid_request' });
    });
  });

  describe('form-encoded body parameter (§2.2)', () => {
    it('takes access_token from a form-encoded POST body', () => {
      expect(extractBearerToken(req({ method: 'POST', contentType: FORM, body: { access_token: 'abc' } }))).toEqual({ kind: 'token', token: 'abc' });
    });

    it('accepts a charset parameter on the content type', () => {
      expect(
        extractBearerToken(req({ method: 'POST', contentType: `${FORM}; charset=utf-8`, body: { access_token: 'abc' } })),
      ).toEqual({ kind: 'token', token: 'abc' });
    });

    it('matches the form media type case-insensitively (RFC 9110 §8.3.1)', () => {
      expect(
        extractBearerToken(req({ method: 'POST', contentType: 'Application/X-WWW-Form-URLEncoded', body: { access_token: 'abc' } })),
      ).toEqual({ kind: 'token', token: 'abc' });
    });

    it('ignores access_token in a JSON body (only form encoding is defined)', () => {
      expect(extractBearerToken(req({ method: 'POST', contentType: 'application/json', body: { access_token: 'abc' } }))).toEqual({
        kind: 'missing',
      });
    });

    it('ignores a body on GET (§2.2 forbids the GET method for this)', () => {
      expect(extractBearerToken(req({ method: 'GET', contentType: FORM, body: { access_token: 'abc' } }))).toEqual({ kind: 'missing' });
    });

    it('reports no token for a form body without access_token', () => {
      expect(extractBearerToken(req({ method: 'POST', contentType: FORM, body: { other: 'x' } }))).toEqual({ kind: 'missing' });
      expect(extractBearerToken(req({ method: 'POST', contentType: FORM, body: undefined }))).toEqual({ kind: 'missing' });
    });

    it.each([
      ['an empty value', ''],
      ['a malformed value', 'a b'],
      ['a repeated parameter', ['a', 'b']],
      ['a nested object', { x: 'a' }],
    ])('refuses %s as invalid_request', (_name, value) => {
      expect(extractBearerToken(req({ method: 'POST', contentType: FORM, body: { access_token: value } }))).toMatchObject({
        kind: 'invalid_request',
      });
    });

    it('refuses a token sent both in the header and in the body', () => {
      expect(
        extractBearerToken(req({ method: 'POST', authorization: 'Bearer abc', contentType: FORM, body: { access_token: 'abc' } })),
      ).toEqual({ kind: 'invalid_request', description: 'more than one method used to send the access token' });
    });

    it('takes the body token when the header carries another scheme', () => {
      expect(
        extractBearerToken(req({ method: 'POST', authorization: 'Basic eDp5', contentType: FORM, body: { access_token: 'abc' } })),
      ).toEqual({ kind: 'token', token: 'abc' });
    });
  });

  describe('URI query parameter (§2.3)', () => {
    it('refuses a token in the query, even alone', () => {
      expect(extractBearerToken(req({ query: { access_token: 'abc' } }))).toEqual({
        kind: 'invalid_request',
        description: 'access tokens are not accepted in the URI query',
      });
    });

    it('refuses a token in the query even when the header carries a valid one', () => {
      expect(extractBearerToken(req({ authorization: 'Bearer abc', query: { access_token: 'abc' } }))).toMatchObject({
        kind: 'invalid_request',
      });
    });

    it('refuses an empty access_token query parameter too', () => {
      expect(extractBearerToken(req({ query: { access_token: '' } }))).toMatchObject({ kind: 'invalid_request' });
    });

    it('ignores unrelated query parameters', () => {
      expect(extractBearerToken(req({ authorization: 'Bearer abc', query: { token: 'x' } }))).toEqual({ kind: 'token', token: 'abc' });
    });
  });

  it('copes with a request whose query object is absent', () => {
    const bare = { method: 'GET', headers: { authorization: 'Bearer abc' } } as unknown as Request;
    expect(extractBearerToken(bare)).toEqual({ kind: 'token', token: 'abc' });
  });
});
