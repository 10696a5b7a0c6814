import { Injectable } from '@nestjs/common';
import { RsaConfig } from '@rsa/config';
import { DomainError, isTimeoutError } from '@rsa/common';

/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus ones we never relay:
 * credentials either way, and the upstream's challenge (it is about the owner's token, not the caller's).
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'host', 'content-length', 'authorization', 'cookie', 'set-cookie', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto',
  'www-authenticate',
]);
/** Content codings fetch decodes by itself: the body we relay is then no longer encoded. */
const DECODED_BY_FETCH = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/** The header names a Connection header lists: hop-by-hop too (RFC 9110 §7.6.1). */
function connectionOptions(value: string | string[] | null | undefined): Set<string> {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return new Set(text.split(',').map((t) => t.trim().toLowerCase()).filter(Boolean));
}
/** Request headers relayed to the upstream; everything else (the caller's credentials above all) is dropped. */
const FORWARDED_REQUEST_HEADERS = ['accept', 'accept-language', 'content-type', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'x-request-id'];

export class ProxyPathError extends DomainError {
  constructor(message: string) {
    super('PROXY.INVALID_PATH', message);
  }
}

export class ProxyUpstreamError extends DomainError {
  constructor(
    readonly kind: 'upstream_timeout' | 'upstream_error' | 'upstream_redirect' | 'upstream_response_too_large',
    message: string,
    upstreamStatus?: number,
  ) {
    super(kind === 'upstream_timeout' ? 'PROXY.UPSTREAM_TIMEOUT' : 'PROXY.UPSTREAM_ERROR', message, {
      error: kind,
      ...(upstreamStatus ? { upstream_status: upstreamStatus } : {}),
    });
  }
}

export interface ProxyTarget {
  /** The kind's path template, e.g. `/accounts/{id}`. */
  pathTemplate: string;
  externalId: string;
}

export interface ProxyRequest {
  method: string;
  /** The raw (still percent-encoded) path after `/data`, '' or starting with '/'. */
  rawSubPath: string;
  /** The raw query string without '?', or ''. */
  rawQuery: string;
  headers: Record<string, string | string[] | undefined>;
  body?: Buffer;
}

export interface ProxyResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Checks a caller-supplied sub-path before anything is sent. The owner's token opens all of the
 * owner's resources upstream, so a path that climbs out of the alias's base path would reach
 * resources that were never delegated: `.`/`..` segments, their percent-encoded forms, encoded
 * slashes, backslashes and percent signs (double encoding), empty segments (`//`, which also makes
 * absolute URLs) are all refused. So are segments that some upstream servers read as dot segments:
 * a dot segment with path parameters (`..;x`, Tomcat and Jetty drop `;x`), dots with trailing spaces
 * or more dots (`.. `, `...`: Windows trims them), and Unicode forms that NFKC turns into dots or
 * separators (`‥`, `．．`, `／`).
 */
export function validateSubPath(raw: string): string {
  if (raw === '' || raw === '/') return '';
  if (!raw.startsWith('/')) throw new ProxyPathError('the path must start with "/"');
  if (raw.length > 2048) throw new ProxyPathError('the path is too long');
  // %25 too: an upstream (or a proxy in front of it) that decodes twice would turn %252e%252e into "..".
  if (/%(2e|2f|5c|00|25)/i.test(raw)) throw new ProxyPathError('encoded dots, slashes, backslashes, percent signs and NUL are not allowed in the path');
  if (/[\\\x00-\x1f\x7f]/.test(raw)) throw new ProxyPathError('backslashes and control characters are not allowed in the path');
  // The query is passed separately: here a `?` or `#` would end the path the checks below looked at.
  if (/[?#]/.test(raw)) throw new ProxyPathError('"?" and "#" are not allowed in the path');
  const segments = raw.slice(1).split('/');
  for (const [index, segment] of segments.entries()) {
    if (segment === '.' || segment === '..') throw new ProxyPathError('"." and ".." segments are not allowed in the path');
    if (segment === '' && index !== segments.length - 1) throw new ProxyPathError('empty path segments are not allowed');
    // Decoding must not produce anything the checks above would have refused.
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new ProxyPathError('the path is not valid percent-encoding');
    }
    const normalized = decoded.normalize('NFKC');
    if (/[/\\]/.test(normalized)) throw new ProxyPathError('the path may not encode separators');
    const name = normalized.split(';')[0];
    if (name.includes('.') && /^[.\s]*$/.test(name)) throw new ProxyPathError('"." and ".." segments are not allowed in the path, in any form');
  }
  return raw;
}

/** Relays a request to the upstream resource API with the owner's token; bounded in time and size. */
@Injectable()
export class ResourceProxyService {
  constructor(private readonly config: RsaConfig) {}

  /** The upstream URL of a resource plus a validated sub-path; never outside the resource's base path. */
  buildUrl(target: ProxyTarget, rawSubPath: string, rawQuery = ''): URL {
    const sub = validateSubPath(rawSubPath);
    const basePath = target.pathTemplate.replace('{id}', encodeURIComponent(target.externalId));
    const base = new URL(`${this.config.upstream.resourceBaseUrl}${basePath}`);
    // The resource's own path as written, before URL normalisation: an external id of "." or ".."
    // (ids come from the upstream's listing) would otherwise make the base path its parent's.
    const literalBasePath = `${new URL(this.config.upstream.resourceBaseUrl).pathname.replace(/\/$/, '')}${basePath}`;
    if (base.pathname !== literalBasePath) throw new ProxyPathError('the resource id cannot be used in a URL path');
    const url = new URL(`${this.config.upstream.resourceBaseUrl}${basePath}${sub}${rawQuery ? `?${rawQuery}` : ''}`);
    // Defence in depth: whatever URL normalisation did, the result stays under the resource's base path.
    if (url.origin !== base.origin || (url.pathname !== base.pathname && !url.pathname.startsWith(`${base.pathname}/`))) {
      throw new ProxyPathError('the path leaves the resource');
    }
    return url;
  }

  async forward(target: ProxyTarget, ownerAccessToken: string, request: ProxyRequest): Promise<ProxyResponse> {
    const url = this.buildUrl(target, request.rawSubPath, request.rawQuery);
    const headers = new Headers();
    const callerHopByHop = connectionOptions(request.headers.connection);
    for (const name of FORWARDED_REQUEST_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string' && !callerHopByHop.has(name)) headers.set(name, value);
    }
    headers.set('authorization', `Bearer ${ownerAccessToken}`);
    // Only codings fetch decodes itself (see DECODED_BY_FETCH), so the relayed body is always plain.
    headers.set('accept-encoding', 'gzip, deflate, br');
    const hasBody = !['GET', 'HEAD'].includes(request.method) && request.body && request.body.length > 0;
    let res: Response;
    try {
      res = await fetch(url, {
        method: request.method,
        headers,
        body: hasBody ? new Uint8Array(request.body!) : undefined,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config.upstream.timeoutMs),
      });
    } catch (error) {
      if (isTimeoutError(error)) throw new ProxyUpstreamError('upstream_timeout', 'the upstream resource API did not answer in time');
      throw new ProxyUpstreamError('upstream_error', 'the upstream resource API is not reachable');
    }
    // 304 answers a conditional request the caller made (If-None-Match is relayed): not a redirect.
    if (res.status >= 300 && res.status < 400 && res.status !== 304) {
      await res.body?.cancel();
      throw new ProxyUpstreamError('upstream_redirect', 'the upstream resource API answered with a redirect, which is not followed');
    }
    // A failure of the upstream (5xx), or its refusal of the OWNER's token (401), is not the caller's
    // to read: our error body instead of the upstream's (which may carry internals), 502.
    if (res.status >= 500 || res.status === 401) {
      await res.body?.cancel();
      throw new ProxyUpstreamError('upstream_error', `the upstream resource API answered ${res.status}`, res.status);
    }
    const body = await this.readBounded(res);
    const out: Record<string, string> = {};
    const upstreamHopByHop = connectionOptions(res.headers.get('connection'));
    const codings = [...connectionOptions(res.headers.get('content-encoding'))];
    const decoded = request.method !== 'HEAD' && codings.length > 0 && codings.every((c) => DECODED_BY_FETCH.has(c));
    res.headers.forEach((value, name) => {
      if (HOP_BY_HOP.has(name) || upstreamHopByHop.has(name) || name.startsWith('access-control-')) return;
      if (name === 'content-encoding' && decoded) return;
      out[name] = value;
    });
    return { status: res.status, headers: out, body };
  }

  private async readBounded(res: Response): Promise<Buffer> {
    const limit = this.config.resourceManagement.proxyMaxResponseBytes;
    const declared = Number(res.headers.get('content-length'));
    if (declared > limit) {
      await res.body?.cancel();
      throw new ProxyUpstreamError('upstream_response_too_large', `the upstream response exceeds ${limit} bytes`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (!res.body) return Buffer.alloc(0);
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel();
          throw new ProxyUpstreamError('upstream_response_too_large', `the upstream response exceeds ${limit} bytes`);
        }
        chunks.push(Buffer.from(value));
      }
    } catch (error) {
      if (error instanceof ProxyUpstreamError) throw error;
      if (isTimeoutError(error)) throw new ProxyUpstreamError('upstream_timeout', 'the upstream resource API did not answer in time');
      throw new ProxyUpstreamError('upstream_error', 'the upstream response was cut off');
    }
    return Buffer.concat(chunks);
  }
}
