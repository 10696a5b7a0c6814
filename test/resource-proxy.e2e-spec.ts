import type { ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { UpstreamTokenVault } from '@rsa/auth';
import type { DevAccount } from '@rsa/dev-upstream';
import { json, rawRequest } from './support/http';
import { startResourceFaultServer, type ResourceFaultServer, type SeenRequest } from './support/resource-fault-server';
import { devAccounts, newRmUser, type RmUser } from './support/resource-users';
import { startStack, type TestStack } from './support/stack';

const TIMEOUT_MS = 1000;
const MAX_BYTES = 4096;

type Resource = { id: string; name: string };

/**
 * The resource proxy against an upstream resource API that misbehaves: a fault server in front of
 * the dev upstream's /api records what the RSA sends and answers chosen paths itself.
 */
describe('Resource proxy hardening', () => {
  let fault: ResourceFaultServer;
  let stack: TestStack;
  let owner: RmUser;
  let reader: RmUser;
  let accounts: DevAccount[];
  let r1: Resource;
  /** The fault server path of r1 at the upstream (`/api/accounts/<external id>`). */
  let r1Path: string;
  let r2Path: string;

  beforeAll(async () => {
    fault = await startResourceFaultServer();
    stack = await startStack({
      env: {
        UPSTREAM_RESOURCE_BASE_URL: `${fault.url}/api`,
        UPSTREAM_TIMEOUT_MS: String(TIMEOUT_MS),
        PROXY_MAX_RESPONSE_BYTES: String(MAX_BYTES),
        // Not the default: PATCH needs only read, PUT/DELETE/OPTIONS are not mapped at all.
        RESOURCE_METHOD_SCOPES: 'GET=read,HEAD=read,POST=write,PATCH=read',
      },
    });
    fault.targetPort = stack.upstream.port;
    accounts = devAccounts(2, 'px');
    [owner, reader] = await Promise.all([newRmUser(stack, 'px-owner', { accounts }), newRmUser(stack, 'px-reader')]);
    const owned = ((await json(await owner.get('/resources'))) as { owned: Resource[] }).owned;
    r1 = owned.find((r) => r.name === accounts[0].name)!;
    r1Path = `/api/accounts/${accounts[0].id}`;
    r2Path = `/api/accounts/${accounts[1].id}`;
    expect((await owner.send('POST', '/delegations', { aliases: [r1.id], scopes: ['read'], delegate: { sub: reader.sub } })).status).toBe(201);
  });
  afterEach(() => fault.routes.clear());
  afterAll(async () => {
    await stack?.close();
    await fault?.close();
  });

  const seenSince = (mark: number, path?: string): SeenRequest[] =>
    fault.seen.slice(mark).filter((s) => !path || s.url.split('?')[0] === path);
  const raw = (user: RmUser, path: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) =>
    rawRequest(stack.issuer, path, { ...options, headers: { authorization: `Bearer ${user.token}`, ...options.headers } });
  const errorOf = (body: string) => JSON.parse(body) as { error: string; details?: { error?: string; upstream_status?: number } };

  describe('what reaches the upstream', () => {
    it("carries the OWNER's upstream token, never the caller's, and none of the caller's credentials or hop-by-hop headers", async () => {
      const mark = fault.seen.length;
      const res = await raw(reader, `/resources/${r1.id}/data/transactions`, {
        headers: {
          accept: 'application/json',
          'accept-language': 'de',
          cookie: 'sid=caller-session',
          'proxy-authorization': 'Basic Y2FsbGVyOnNlY3JldA==',
          connection: 'keep-alive, x-hop-request',
          'x-hop-request': 'connection-scoped',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'x-forwarded-for': '6.6.6.6',
          forwarded: 'for=6.6.6.6',
          'x-api-key': 'caller-key',
        },
      });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).items).toHaveLength(4);

      const [sent] = seenSince(mark, `${r1Path}/transactions`);
      const ownerToken = await stack.api.get(UpstreamTokenVault).getUsableAccessToken(owner.sub);
      expect(sent.headers.authorization).toBe(`Bearer ${ownerToken}`);
      expect(sent.headers.authorization).not.toContain(reader.token);
      // ...and it is the owner's token at the upstream, not anyone else's.
      expect((await stack.upstream.provider.AccessToken.find(ownerToken))?.accountId).toBe(owner.upstream.sub);
      for (const name of ['cookie', 'proxy-authorization', 'x-hop-request', 'keep-alive', 'te', 'x-forwarded-for', 'forwarded', 'x-api-key']) {
        expect({ name, value: sent.headers[name] }).toEqual({ name, value: undefined });
      }
      expect(sent.headers['accept-language']).toBe('de');
      expect(sent.headers.accept).toBe('application/json');
    });

    it('a chunked request body arrives whole, with a length and without Transfer-Encoding', async () => {
      const mark = fault.seen.length;
      const payload = JSON.stringify({ to: accounts[1].id, amount: 12.5, reference: 'chunked' });
      const res = await raw(owner, `/resources/${r1.id}/data/transfers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        body: payload,
      });
      expect(res.status).toBe(201);
      expect(JSON.parse(res.body)).toMatchObject({ from: accounts[0].id, to: accounts[1].id, amount: 12.5 });
      const [sent] = seenSince(mark, `${r1Path}/transfers`);
      expect(sent.body.toString('utf8')).toBe(payload);
      expect(sent.headers['transfer-encoding']).toBeUndefined();
      expect(sent.headers['content-length']).toBe(String(Buffer.byteLength(payload)));
    });

    it('maps the path after this route\'s own /data, whatever its case', async () => {
      const mark = fault.seen.length;
      expect((await raw(reader, `/resources/${r1.id}/DATA/transactions`)).status).toBe(200);
      expect((await raw(reader, `/Resources/${r1.id.toUpperCase()}/Data/x/data/y`)).status).toBe(404);
      expect(seenSince(mark).map((s) => s.url)).toEqual([`${r1Path}/transactions`, `${r1Path}/x/data/y`]);
    });

    it('passes query strings through as they came', async () => {
      const mark = fault.seen.length;
      const query = 'from=2024-01-01&q=a%20b&p=..%2F..%2Fother&x=1&x=2&empty=';
      expect((await raw(reader, `/resources/${r1.id}/data/transactions?${query}`)).status).toBe(200);
      expect((await raw(reader, `/resources/${r1.id}/data?view=full`)).status).toBe(200);
      expect((await raw(reader, `/resources/${r1.id}/data/?view=short`)).status).toBe(200);
      expect(seenSince(mark).map((s) => s.url)).toEqual([`${r1Path}/transactions?${query}`, `${r1Path}?view=full`, `${r1Path}?view=short`]);
    });
  });

  describe('what comes back', () => {
    it('strips hop-by-hop response headers (and those the upstream lists in Connection) and never relays Set-Cookie', async () => {
      fault.routes.set(`${r1Path}/hop`, (_req, res) => {
        res.writeHead(200, {
          'content-type': 'application/json',
          connection: 'close, x-hop-response',
          'x-hop-response': 'connection-scoped',
          'keep-alive': 'timeout=99',
          'set-cookie': ['upstream_session=owner-secret; Path=/', 'other=1'],
          'proxy-authenticate': 'Basic realm="upstream"',
          trailer: 'x-checksum',
          'x-custom': 'kept',
        });
        res.write('{"part":');
        res.end('1}');
      });
      const res = await raw(reader, `/resources/${r1.id}/data/hop`);
      expect(res.status).toBe(200);
      expect(res.body).toBe('{"part":1}');
      expect(res.headers['x-custom']).toBe('kept');
      expect(res.headers['set-cookie']).toBeUndefined();
      expect(res.headers['keep-alive']).not.toBe('timeout=99');
      expect(res.headers['proxy-authenticate']).toBeUndefined();
      expect(res.headers.trailer).toBeUndefined();
      expect(res.headers['x-hop-response']).toBeUndefined();
      expect(res.headers.connection ?? '').not.toContain('x-hop-response');
      expect(res.headers['transfer-encoding']).toBeUndefined();
      expect(res.headers['content-length']).toBe(String(res.body.length));
    });

    it.each([301, 302, 303, 307, 308])('does not follow a %i redirect: 502 with an error body, the target is never requested', async (status) => {
      fault.routes.set(`${r1Path}/moved`, (_req, res) => {
        res.writeHead(status, { location: `${fault.url}${r2Path}` }).end();
      });
      const mark = fault.seen.length;
      const res = await raw(reader, `/resources/${r1.id}/data/moved`);
      expect(res.status).toBe(502);
      expect(errorOf(res.body)).toMatchObject({ error: 'PROXY.UPSTREAM_ERROR', details: { error: 'upstream_redirect' } });
      expect(res.headers.location).toBeUndefined();
      expect(seenSince(mark).map((s) => s.url)).toEqual([`${r1Path}/moved`]);
    });

    it('a response over PROXY_MAX_RESPONSE_BYTES is a 502, whether its length is declared or not; one just under it passes', async () => {
      fault.routes.set(`${r1Path}/declared`, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(MAX_BYTES + 1) }).end(Buffer.alloc(MAX_BYTES + 1, 1));
      });
      fault.routes.set(`${r1Path}/chunked`, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        for (let i = 0; i < 10; i++) res.write(Buffer.alloc(1024, 2));
        res.end();
      });
      fault.routes.set(`${r1Path}/fits`, (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(MAX_BYTES, 3));
      });
      for (const path of ['declared', 'chunked']) {
        const res = await raw(reader, `/resources/${r1.id}/data/${path}`);
        expect({ path, status: res.status, error: errorOf(res.body).details?.error }).toEqual({ path, status: 502, error: 'upstream_response_too_large' });
      }
      const fits = await raw(reader, `/resources/${r1.id}/data/fits`);
      expect(fits.status).toBe(200);
      expect(fits.body.length).toBe(MAX_BYTES);
    });

    it('an upstream that never answers is a 504 within UPSTREAM_TIMEOUT_MS (+1 s); so is one that stops mid-body', async () => {
      fault.routes.set(`${r1Path}/hang`, () => undefined);
      fault.routes.set(`${r1Path}/stall`, (_req, res: ServerResponse) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"items":[');
      });
      for (const path of ['hang', 'stall']) {
        const started = Date.now();
        const res = await raw(reader, `/resources/${r1.id}/data/${path}`);
        const elapsed = Date.now() - started;
        expect({ path, status: res.status }).toEqual({ path, status: 504 });
        expect(errorOf(res.body)).toMatchObject({ error: 'PROXY.UPSTREAM_TIMEOUT', details: { error: 'upstream_timeout' } });
        expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
        expect(elapsed).toBeLessThan(TIMEOUT_MS + 1000);
      }
    });

    it('an upstream 5xx is an upstream failure: 502 with our error body, not the upstream body', async () => {
      for (const status of [500, 503]) {
        fault.routes.set(`${r1Path}/boom`, (_req, res) => {
          res.writeHead(status, { 'content-type': 'text/plain', 'x-upstream-debug': 'at Bank.transfer (/srv/bank/src/ledger.js:42:7)' }).end('Internal error at /srv/bank/src/ledger.js:42');
        });
        const res = await raw(reader, `/resources/${r1.id}/data/boom`);
        expect(res.status).toBe(502);
        expect(errorOf(res.body)).toMatchObject({ error: 'PROXY.UPSTREAM_ERROR', details: { error: 'upstream_error', upstream_status: status } });
        expect(res.body).not.toContain('ledger.js');
        expect(res.headers['x-upstream-debug']).toBeUndefined();
      }
    });

    it("an upstream 401 (the owner's token refused) is a 502, without the upstream's challenge", async () => {
      fault.routes.set(`${r1Path}/refused`, (_req, res) => {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer error="invalid_token"' }).end('{"error":"invalid_token"}');
      });
      const res = await raw(reader, `/resources/${r1.id}/data/refused`);
      expect(res.status).toBe(502);
      expect(errorOf(res.body)).toMatchObject({ details: { error: 'upstream_error', upstream_status: 401 } });
      expect(res.headers['www-authenticate']).toBeUndefined();
    });

    it('a 304 to a conditional request is relayed (If-None-Match reaches the upstream), not taken for a redirect', async () => {
      fault.routes.set(`${r1Path}/cached`, (req, res) => {
        if (req.headers['if-none-match'] === '"v1"') res.writeHead(304, { etag: '"v1"' }).end();
        else res.writeHead(200, { etag: '"v1"', 'content-type': 'application/json' }).end('{"v":1}');
      });
      const first = await raw(reader, `/resources/${r1.id}/data/cached`);
      expect(first.status).toBe(200);
      expect(first.headers.etag).toBe('"v1"');
      const again = await raw(reader, `/resources/${r1.id}/data/cached`, { headers: { 'if-none-match': '"v1"' } });
      expect(again.status).toBe(304);
      expect(again.body).toBe('');
    });

    it('a compressed upstream response reaches the caller readable (no Content-Encoding left on a decoded body)', async () => {
      const payload = JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ i, text: 'compressible '.repeat(3) })) });
      fault.routes.set(`${r1Path}/gzipped`, (req, res) => {
        expect(String(req.headers['accept-encoding'])).toContain('gzip');
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(payload));
      });
      const res = await raw(reader, `/resources/${r1.id}/data/gzipped`);
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBeUndefined();
      expect(JSON.parse(res.body)).toEqual(JSON.parse(payload));
    });

    it("the upstream's own answers about the request (404, 400) are relayed as they are", async () => {
      const missing = await raw(reader, `/resources/${r1.id}/data/no-such-thing`);
      expect(missing.status).toBe(404);
      expect(JSON.parse(missing.body)).toEqual({ error: 'not_found' });
      const invalid = await raw(owner, `/resources/${r1.id}/data/transfers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ to: accounts[1].id, amount: -1 }),
      });
      expect(invalid.status).toBe(400);
      expect(JSON.parse(invalid.body)).toMatchObject({ error: 'invalid_request' });
    });
  });

  describe('methods and scopes', () => {
    it('follows RESOURCE_METHOD_SCOPES: PATCH needs only read here, POST needs write', async () => {
      const mark = fault.seen.length;
      const patch = await raw(reader, `/resources/${r1.id}/data/`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{}' });
      // Allowed by the mapping, so it reaches the upstream (which has no PATCH route: its 404 is relayed).
      expect(patch.status).toBe(404);
      expect(seenSince(mark).map((s) => `${s.method} ${s.url}`)).toEqual([`PATCH ${r1Path}`]);

      const post = await raw(reader, `/resources/${r1.id}/data/transfers`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"to":"x","amount":1}' });
      expect(post.status).toBe(403);
      expect(JSON.parse(post.body)).toMatchObject({ required_scope: 'write' });
      expect(seenSince(mark)).toHaveLength(1);
    });

    it.each(['PUT', 'DELETE', 'OPTIONS'])('an unmapped method (%s) is a 405 with Allow, for delegate and owner alike, and nothing is sent', async (method) => {
      const mark = fault.seen.length;
      for (const user of [reader, owner]) {
        const res = await raw(user, `/resources/${r1.id}/data/`, { method });
        expect({ method, status: res.status }).toEqual({ method, status: 405 });
        expect(JSON.parse(res.body)).toMatchObject({ error: 'method_not_allowed' });
        expect(String(res.headers.allow).split(/,\s*/).sort()).toEqual(['GET', 'HEAD', 'PATCH', 'POST']);
      }
      expect(seenSince(mark)).toEqual([]);
    });

    it('HEAD works for a read delegate: the status and headers, no body', async () => {
      const mark = fault.seen.length;
      const res = await raw(reader, `/resources/${r1.id}/data/`, { method: 'HEAD' });
      expect(res.status).toBe(200);
      expect(res.body).toBe('');
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(seenSince(mark).map((s) => `${s.method} ${s.url}`)).toEqual([`HEAD ${r1Path}`]);
    });
  });
});
