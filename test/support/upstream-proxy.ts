import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStack, type StackOptions, type TestStack } from './stack';

export interface ProxiedRequest {
  method: string;
  /** path and query, as sent */
  path: string;
  /** the request body (form-encoded for the token endpoint) */
  body: string;
  /** the request headers (e.g. `authorization`, to tell whose token a userinfo request carries) */
  headers?: IncomingHttpHeaders;
}

/** A request as the proxy saw it, with when it arrived (Date.now()). */
export interface RecordedRequest extends ProxiedRequest {
  at: number;
}

/**
 * An answer the proxy gives itself, without forwarding (the upstream never sees the request).
 * `body` is sent as is; `streamBytes` instead streams that many bytes of JSON-ish filler in 64 KiB
 * chunks (chunked, no Content-Length unless `declareLength`), stopping when the client goes away.
 */
export interface FaultResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  streamBytes?: number;
  declareLength?: boolean;
}

/** What happened to a streamed (`streamBytes`) answer. */
export interface StreamReport {
  /** bytes the socket accepted before the stream ended */
  bytesWritten: number;
  /** true when the client closed the connection before the whole body was sent */
  clientClosedEarly: boolean;
}

/**
 * A plain HTTP forwarder in front of the dev upstream, used as the upstream's public address (its
 * issuer), so a test can make individual upstream requests misbehave while discovery, login and the
 * rest keep working. Requests for which `hold` returns true are read and then never answered; `delay`
 * forwards a request late.
 */
export interface UpstreamProxy {
  url: string;
  port: number;
  /** Port requests are forwarded to; set once the upstream listens. */
  targetPort?: number;
  hold: ((request: ProxiedRequest) => boolean) | null;
  /** Milliseconds to wait before forwarding a request (0 or null: at once). */
  delay: ((request: ProxiedRequest) => number) | null;
  /** How many requests have been held (never answered) so far. */
  readonly held: number;
  /** Answer matching requests with this instead of forwarding them (null: forward). */
  respond: ((request: ProxiedRequest) => FaultResponse | null) | null;
  /**
   * Forward matching requests, let the upstream answer completely (it has committed whatever the
   * request did), then reset the client's connection instead of passing the answer on.
   */
  resetAfterForward: ((request: ProxiedRequest) => boolean) | null;
  /** Every request received, in order (clear it with `requests.length = 0`). */
  readonly requests: RecordedRequest[];
  /** One report per finished `streamBytes` answer, in order. */
  readonly streams: StreamReport[];
  close(): Promise<void>;
}

const STREAM_CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes `total` bytes with backpressure; resolves with what the socket took, early if the client leaves. */
function streamFiller(res: ServerResponse, total: number): Promise<StreamReport> {
  return new Promise((resolve) => {
    let written = 0;
    let closed = false;
    const finish = () => resolve({ bytesWritten: written, clientClosedEarly: closed && written < total });
    res.on('close', () => {
      if (written < total) {
        closed = true;
        finish();
      }
    });
    const pump = () => {
      while (!closed && written < total) {
        const chunk = STREAM_CHUNK.subarray(0, Math.min(STREAM_CHUNK.length, total - written));
        written += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      if (!closed) res.end(finish);
    };
    pump();
  });
}

export async function startUpstreamProxy(): Promise<UpstreamProxy> {
  const heldResponses = new Set<ServerResponse>();
  let heldCount = 0;
  const requests: RecordedRequest[] = [];
  const streams: StreamReport[] = [];

  const answer = (res: ServerResponse, fault: FaultResponse): void => {
    const headers: Record<string, string | number> = { ...fault.headers };
    if (fault.streamBytes !== undefined) {
      if (fault.declareLength) headers['content-length'] = fault.streamBytes;
      res.writeHead(fault.status, headers);
      void streamFiller(res, fault.streamBytes).then((report) => streams.push(report));
      return;
    }
    res.writeHead(fault.status, headers).end(fault.body ?? '');
  };

  /** Forwards, lets the upstream answer in full, then resets the client's connection. */
  const forwardThenReset = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    const upstreamReq = httpRequest(
      { host: '127.0.0.1', port: proxy.targetPort, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        upstreamRes.resume();
        upstreamRes.on('end', () => res.socket?.resetAndDestroy());
      },
    );
    upstreamReq.on('error', () => res.socket?.resetAndDestroy());
    upstreamReq.end(body);
  };

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): void => {
    if (!proxy.targetPort) {
      res.writeHead(502).end('proxy has no target');
      return;
    }
    const upstreamReq = httpRequest(
      { host: '127.0.0.1', port: proxy.targetPort, method: req.method, path: req.url, headers: req.headers },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', (error) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
    upstreamReq.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const described = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8'), headers: req.headers };
      requests.push({ ...described, at: Date.now() });
      const fault = proxy.respond?.(described);
      if (fault) {
        answer(res, fault);
        return;
      }
      if (proxy.resetAfterForward?.(described)) {
        forwardThenReset(req, res, body);
        return;
      }
      if (proxy.hold?.(described)) {
        heldCount += 1;
        heldResponses.add(res);
        res.on('close', () => heldResponses.delete(res));
        return; // never answered
      }
      const delayMs = proxy.delay?.(described) ?? 0;
      if (delayMs > 0) setTimeout(() => forward(req, res, body), delayMs);
      else forward(req, res, body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const proxy: UpstreamProxy = {
    url: `http://127.0.0.1:${port}`,
    port,
    hold: null,
    delay: null,
    respond: null,
    resetAfterForward: null,
    requests,
    streams,
    get held() {
      return heldCount;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of heldResponses) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return proxy;
}

/**
 * Like startStack, but the dev upstream's issuer (and so every upstream URL the RSA uses) is an
 * UpstreamProxy in front of it. startStack cannot be reused here: the upstream must know the RSA's
 * callback URL (its client registration) before it starts, and startStack picks the RSA port inside.
 */
export async function startStackBehindUpstreamProxy(
  options: Omit<StackOptions, 'upstream' | 'upstreamIssuer'> = {},
): Promise<TestStack & { proxy: UpstreamProxy }> {
  const proxy = await startUpstreamProxy();
  // The RSA only talks to the upstream lazily (discovery on first use), so the proxy can learn the
  // upstream's port once the stack is up.
  const stack = await startStack({ ...options, upstreamIssuer: proxy.url });
  proxy.targetPort = stack.upstream.port;
  return {
    ...stack,
    proxy,
    async close() {
      proxy.hold = null;
      proxy.delay = null;
      proxy.respond = null;
      proxy.resetAfterForward = null;
      await stack.close();
      await proxy.close();
    },
  };
}
