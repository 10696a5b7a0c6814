/** Limits of one fetch beyond its timeout (see fetchWithTimeout). */
export interface FetchLimits {
  /**
   * Largest response body accepted, in bytes. The body is read here, through a counting reader: a
   * `Content-Length` above the cap, or more bytes than the cap arriving, aborts the request and
   * throws ResponseTooLargeError, so at most about the cap (plus one network chunk) is ever held.
   */
  maxResponseBytes?: number;
  /**
   * Milliseconds left of the caller's overall deadline, when it has one (undefined: none). A call
   * then gets the smaller of the two, so retries inside a deadline never outlive it.
   */
  remainingMs?: () => number | undefined;
}

/** The response body was larger than FetchLimits.maxResponseBytes; the request was aborted. */
export class ResponseTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`response body larger than ${limitBytes} bytes`);
    this.name = 'ResponseTooLargeError';
  }
}

/** Statuses whose responses have no body (the Response constructor refuses one). */
const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * A `fetch` that gives up after `timeoutMs` (and still honours the caller's own signal). With
 * `limits.maxResponseBytes` it also reads the body (within the same timeout) and returns it as a
 * buffered Response, aborting the request as soon as the body exceeds the cap.
 */
export function fetchWithTimeout(timeoutMs: number, limits: FetchLimits = {}): typeof fetch {
  return async (input, init = {}) => {
    const remaining = limits.remainingMs?.();
    const ms = remaining === undefined ? timeoutMs : Math.max(1, Math.min(timeoutMs, Math.floor(remaining)));
    const cancel = new AbortController();
    const signals = [AbortSignal.timeout(ms), cancel.signal, ...(init.signal ? [init.signal] : [])];
    const response = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
    if (limits.maxResponseBytes === undefined) return response;
    return readCapped(response, limits.maxResponseBytes, cancel);
  };
}

async function readCapped(response: Response, maxBytes: number, cancel: AbortController): Promise<Response> {
  const init = { status: response.status, statusText: response.statusText, headers: response.headers };
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    cancel.abort();
    await response.body?.cancel().catch(() => undefined);
    throw new ResponseTooLargeError(maxBytes);
  }
  if (!response.body || NULL_BODY_STATUSES.has(response.status)) {
    await response.body?.cancel().catch(() => undefined);
    return new Response(null, init);
  }
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      cancel.abort();
      await reader.cancel().catch(() => undefined);
      throw new ResponseTooLargeError(maxBytes);
    }
    chunks.push(value);
  }
  return new Response(Buffer.concat(chunks), init);
}

/** True for the errors `fetch` raises when a timeout signal fires. */
export function isTimeoutError(error: unknown): boolean {
  let e: unknown = error;
  for (let depth = 0; e && depth < 5; depth++) {
    const name = (e as { name?: string }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
