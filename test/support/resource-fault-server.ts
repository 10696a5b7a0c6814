import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as it reached the fault server (that is: as the RSA sent it). */
export interface SeenRequest {
  method: string;
  /** path and query, byte for byte */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Answers one request itself instead of forwarding it; may also never answer. */
export type FaultHandler = (req: SeenRequest, res: ServerResponse) => void;

/**
 * A stand-in for the upstream resource API in front of the dev upstream (point the RSA's
 * UPSTREAM_RESOURCE_BASE_URL at `${url}/api`): it records every request exactly as the RSA sent it,
 * forwards to the dev upstream by default, and answers requests whose path (without query) has a
 * handler itself (redirects, huge or slow bodies, errors, odd headers, no answer at all).
 */
export interface ResourceFaultServer {
  url: string;
  /** The dev upstream's port; set once it listens. */
  targetPort?: number;
  /** Handlers by path (without the query string). */
  routes: Map<string, FaultHandler>;
  seen: SeenRequest[];
  close(): Promise<void>;
}

export async function startResourceFaultServer(): Promise<ResourceFaultServer> {
  const open = new Set<ServerResponse>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    open.add(res);
    res.on('close', () => open.delete(res));
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      fault.seen.push(seen);
      const handler = fault.routes.get(seen.url.split('?')[0]);
      if (handler) {
        handler(seen, res);
        return;
      }
      if (!fault.targetPort) {
        res.writeHead(502).end('no target');
        return;
      }
      const upstreamReq = httpRequest(
        { host: '127.0.0.1', port: fault.targetPort, method: seen.method, path: seen.url, headers: req.headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      upstreamReq.on('error', (error) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(error));
      });
      upstreamReq.end(seen.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const fault: ResourceFaultServer = {
    url: `http://127.0.0.1:${port}`,
    routes: new Map(),
    seen: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  return fault;
}
