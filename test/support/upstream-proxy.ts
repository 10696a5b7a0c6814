import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { ClientRegistry } from '@rsa/auth';
import { loadConfig } from '@rsa/config';
import { startDevUpstream } from '@rsa/dev-upstream';
import { createApiApp } from '../../apps/api/src/bootstrap';
import { freePort } from './ports';
import { TestStack, TestWallet, StackOptions, WALLET_REDIRECT_URI } from './stack';
import { randomId, TEST_ADMIN_TOKEN, TEST_KEY_RING } from './test-config';

export interface ProxiedRequest {
  method: string;
  /** path and query, as sent */
  path: string;
  /** the request body (form-encoded for the token endpoint) */
  body: string;
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
  close(): Promise<void>;
}

export async function startUpstreamProxy(): Promise<UpstreamProxy> {
  const heldResponses = new Set<ServerResponse>();
  let heldCount = 0;

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
      const described = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.toString('utf8') };
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
  options: Omit<StackOptions, 'upstream'> = {},
): Promise<TestStack & { proxy: UpstreamProxy }> {
  const proxy = await startUpstreamProxy();
  const apiPort = await freePort();
  const issuer = `http://127.0.0.1:${apiPort}`;
  const upstreamClient = { client_id: randomId('rsa'), client_secret: randomId('secret') };
  const upstream = await startDevUpstream({
    port: 0,
    host: '127.0.0.1',
    issuer: proxy.url,
    clients: [{ ...upstreamClient, redirect_uris: [`${issuer}/interaction/callback`] }],
    accessTokenTtlSeconds: options.upstreamAccessTokenTtlSeconds ?? 300,
  });
  proxy.targetPort = upstream.port;
  const config = loadConfig({
    NODE_ENV: 'test',
    DATABASE_URL: process.env.DATABASE_URL,
    DATABASE_POOL_SIZE: '5',
    RSA_ISSUER: issuer,
    UPSTREAM_ISSUER: upstream.issuer,
    UPSTREAM_CLIENT_ID: upstreamClient.client_id,
    UPSTREAM_CLIENT_SECRET: upstreamClient.client_secret,
    UPSTREAM_RESOURCE_BASE_URL: upstream.resourceBaseUrl,
    UPSTREAM_TIMEOUT_MS: '3000',
    TOKEN_ENCRYPTION_KEYS: TEST_KEY_RING,
    ADMIN_TOKENS: TEST_ADMIN_TOKEN,
    LOG_LEVEL: 'warn',
    // The background job would refresh owners at moments no test chose; suites run it with runOnce().
    PROACTIVE_REFRESH_ENABLED: 'false',
    ...options.env,
  });
  const api = await createApiApp(config);
  await api.listen(apiPort, '127.0.0.1');
  const wallet: TestWallet = { clientId: randomId('wallet'), clientSecret: randomId('wallet-secret'), redirectUri: WALLET_REDIRECT_URI };
  await api.get(ClientRegistry).upsert({
    client_id: wallet.clientId,
    client_secret: wallet.clientSecret,
    client_name: 'Test Wallet',
    redirect_uris: [wallet.redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: `openid profile email offline_access ${config.scopes.related} ${config.scopes.delegations}`,
  });
  return {
    issuer,
    config,
    upstream,
    proxy,
    api,
    dataSource: api.get<DataSource>(getDataSourceToken()),
    wallet,
    async close() {
      proxy.hold = null;
      proxy.delay = null;
      await api.close();
      await proxy.close();
      await upstream.close();
    },
  };
}
