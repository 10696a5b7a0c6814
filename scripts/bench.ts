/**
 * `npm run bench`: the hot paths measured side by side in one run (issue 6). See docs/benchmarks.md.
 *
 * Starts the whole stack in this process (dev upstream, api app, a second api app with the owners'
 * details cache off, admin app) on free ports, on a PostgreSQL server when DATABASE_URL is set (in a
 * database of its own, created and dropped by the run) or on embedded PGlite otherwise; seeds users
 * (real Wallet logins), aliases, delegations and 100,000 token-health accounts; then measures each
 * scenario with autocannon in a separate process (same connections and duration for all).
 *
 * Environment: BENCH_DURATION_SECONDS (10), BENCH_CONNECTIONS (10), BENCH_WARMUP_SECONDS (2),
 * BENCH_ACCOUNTS (100000), BENCH_ONLY (comma-separated scenario ids; baselines always run),
 * BENCH_PROFILE (a scenario id: CPU profile of the stack during that scenario, written next to the
 * results), BENCH_KEEP_DB=1 (keep the benchmark database), BENCH_OUTPUT (default bench/results/latest.json).
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, freemem, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Session } from 'node:inspector';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { getDataSourceToken } from '@nestjs/typeorm';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { ClientRegistry, UpstreamTokenVault } from '@rsa/auth';
import { encodeCursor } from '@rsa/common';
import { loadConfig } from '@rsa/config';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '@rsa/database';
import { CatalogueService, DEMO_ACCOUNT_RESOURCE } from '@rsa/resources';
import { startDevUpstream } from '@rsa/dev-upstream';
import { createAdminApp } from '../apps/admin/src/bootstrap';
import { createApiApp } from '../apps/api/src/bootstrap';
import { addBenchUser, delegate, insertAliases, insertBulkAccounts, loginMany, walletLogin, type BenchUser, type BenchWallet } from './bench-seed';

const int = (name: string, fallback: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer`);
  return Number(v);
};
const DURATION = int('BENCH_DURATION_SECONDS', 10);
const CONNECTIONS = int('BENCH_CONNECTIONS', 10);
const WARMUP = process.env.BENCH_WARMUP_SECONDS === '0' ? 0 : int('BENCH_WARMUP_SECONDS', 2);
const ACCOUNTS = int('BENCH_ACCOUNTS', 100_000);
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const PROFILE = process.env.BENCH_PROFILE?.trim() || undefined;
const OUTPUT = resolve(process.env.BENCH_OUTPUT ?? 'bench/results/latest.json');
const OWNERS = 50;
const DELEGATED_ALIASES = 1000;
const ADMIN_TOKEN = `bench-admin-${randomBytes(16).toString('hex')}`;

interface Scenario {
  id: string;
  title: string;
  /** What is sent, for the table and the JSON. */
  request: string;
  url: string;
  token: string;
  note?: string;
  /** Work that runs beside the load (warm-up and measured seconds); returns what stops it. */
  alongside?: () => () => Promise<void>;
}

interface Measured {
  id: string;
  title: string;
  request: string;
  note?: string;
  requests: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non_2xx: number;
  transport_errors: number;
  timeouts: number;
  rps_vs_a?: number;
  rps_vs_b?: number;
  p50_vs_a?: number;
  p50_vs_b?: number;
}

interface AutocannonJson {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  /** From bench-load: percentiles of the 2xx latencies in fractional milliseconds. */
  latency_exact: { p50: number; p99: number; samples: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

const log = (line: string) => console.log(`[bench] ${line}`);

/**
 * autocannon in its own process (not on the stack's event loop) through scripts/bench-load.ts: its
 * JSON result plus exact (fractional) latency percentiles.
 */
function autocannon(url: string, token: string, seconds: number): Promise<AutocannonJson> {
  const args = [join(__dirname, 'bench-load.js'), url, token, String(seconds), String(CONNECTIONS)];
  return new Promise((ok, fail) => {
    execFile(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) return fail(new Error(`autocannon failed: ${error.message} ${stderr}`));
      try {
        ok(JSON.parse(stdout) as AutocannonJson);
      } catch {
        fail(new Error(`autocannon printed no JSON: ${stdout.slice(0, 300)} ${stderr.slice(0, 300)}`));
      }
    });
  });
}

const WRITES_PER_SECOND = 50;

/**
 * Changes one delegation's expiry (far future ↔ none) WRITES_PER_SECOND times a second, one write at
 * a time, each its own transaction: real writes that move the data revision through its triggers.
 */
function writeLoop(dataSource: DataSource, authorizationId: string): () => Promise<void> {
  let running = true;
  let writes = 0;
  const revision = async () => Number((await dataSource.query<{ value: string }[]>('SELECT value FROM data_revision WHERE id = 1'))[0].value);
  const loop = (async () => {
    const from = await revision();
    const since = Date.now();
    while (running) {
      const started = Date.now();
      await dataSource.query(
        `UPDATE generic_resource_authorization SET expires_at = CASE WHEN expires_at IS NULL THEN now() + interval '10 years' END WHERE id = $1`,
        [authorizationId],
      );
      writes++;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 / WRITES_PER_SECOND - (Date.now() - started))));
    }
    const moved = (await revision()) - from;
    log(`alongside: ${writes} delegation writes in ${((Date.now() - since) / 1000).toFixed(1)} s; the data revision moved ${moved} times`);
  })();
  return async () => {
    running = false;
    await loop;
    await dataSource.query('UPDATE generic_resource_authorization SET expires_at = NULL WHERE id = $1', [authorizationId]);
  };
}

/** One request that must succeed: the scenario is wired correctly before it is measured. */
async function check(s: Scenario, expect?: (body: unknown) => string | undefined): Promise<void> {
  const res = await fetch(s.url, { headers: { authorization: `Bearer ${s.token}` } });
  const text = await res.text();
  if (res.status < 200 || res.status >= 300) throw new Error(`${s.id}: preflight ${s.request} answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  if (expect) {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    const problem = expect(body);
    if (problem) throw new Error(`${s.id}: preflight ${s.request}: ${problem}`);
  }
}

async function profileDuring<T>(file: string, work: () => Promise<T>): Promise<T> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((ok, fail) => session.post(method, params ?? {}, (err, result) => (err ? fail(err) : ok(result))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`CPU profile written to ${file} (open in Chrome DevTools, or: node dist/scripts/bench-profile-summary.js ${file})`);
  }
}

async function measure(s: Scenario): Promise<Measured> {
  const stop = s.alongside?.();
  let r: AutocannonJson;
  try {
    if (WARMUP) await autocannon(s.url, s.token, WARMUP);
    const run = () => autocannon(s.url, s.token, DURATION);
    r = PROFILE === s.id ? await profileDuring(OUTPUT.replace(/\.json$/, `.${s.id}.cpuprofile`), run) : await run();
  } finally {
    await stop?.();
  }
  const m: Measured = {
    id: s.id,
    title: s.title,
    request: s.request,
    ...(s.note ? { note: s.note } : {}),
    requests: r.requests.total,
    rps: r.requests.average,
    p50_ms: r.latency_exact.p50,
    p99_ms: r.latency_exact.p99,
    non_2xx: r.non2xx,
    transport_errors: r.errors,
    timeouts: r.timeouts,
    errors: r.non2xx + r.errors + r.timeouts,
  };
  log(`${s.id}: ${m.rps.toFixed(0)} req/s, p50 ${m.p50_ms} ms, p99 ${m.p99_ms} ms, errors ${m.errors}`);
  return m;
}

async function prepareDatabase(): Promise<{ url: string; kind: 'server' | 'embedded'; version?: string; cleanup: () => Promise<void> }> {
  const given = process.env.DATABASE_URL;
  if (!given) {
    const dir = mkdtempSync(join(tmpdir(), 'rsa-bench-pglite-'));
    const embedded: EmbeddedPostgres = await startEmbeddedPostgres({ dataDir: dir });
    console.warn(
      [
        '',
        '################################################################################',
        '#  NO DATABASE_URL: running on EMBEDDED PGlite (single-session WebAssembly).   #',
        '#  PGlite SERIALISES ALL QUERIES (one session shared by every connection), so  #',
        '#  every database-bound number below says nothing about PostgreSQL.           #',
        '#  Set DATABASE_URL=postgres://… for numbers that mean something.              #',
        '################################################################################',
        '',
      ].join('\n'),
    );
    return {
      url: embedded.url,
      kind: 'embedded',
      cleanup: async () => {
        await embedded.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  // A database of its own on the same server: 100,000 accounts must not land in anybody's test database.
  const name = `rsa_bench_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new Client({ connectionString: given });
  await admin.connect();
  const version = ((await admin.query('SHOW server_version')).rows[0] as { server_version: string }).server_version;
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } catch (error) {
    await admin.end();
    throw new Error(`cannot create the benchmark database on DATABASE_URL's server (needs CREATEDB): ${(error as Error).message}`);
  }
  await admin.end();
  const url = new URL(given);
  url.pathname = `/${name}`;
  log(`PostgreSQL ${version} at ${url.host}, benchmark database "${name}" (dropped at the end${process.env.BENCH_KEEP_DB ? ' — NOT: BENCH_KEEP_DB set' : ''})`);
  return {
    url: url.href,
    kind: 'server',
    version,
    cleanup: async () => {
      if (process.env.BENCH_KEEP_DB) return;
      const c = new Client({ connectionString: given });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await c.end();
    },
  };
}

function machine() {
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    free_memory_gb: Math.round((freemem() / 2 ** 30) * 10) / 10,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    loadavg_at_start: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

const ratio = (a: number, b: number | undefined) => (b ? Math.round((a / b) * 100) / 100 : undefined);

async function main(): Promise<void> {
  const started = Date.now();
  const machineInfo = machine();
  const stoppers: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stoppers.reverse()) await stop().catch((e: Error) => console.error(`[bench] cleanup: ${e.message}`));
  };
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

  try {
    const db = await prepareDatabase();
    stoppers.push(db.cleanup);

    const [apiPort, coldPort, adminPort] = [await freePort(), await freePort(), await freePort()];
    const issuer = `http://127.0.0.1:${apiPort}`;
    const upstreamClient = { client_id: 'rsa-bench', client_secret: randomBytes(24).toString('base64url') };
    const upstream = await startDevUpstream({
      port: 0,
      host: '127.0.0.1',
      clients: [{ ...upstreamClient, redirect_uris: [`${issuer}/interaction/callback`] }],
      // Long enough that no token expires during the run (baseline A uses one directly).
      accessTokenTtlSeconds: 3600,
    });
    stoppers.push(() => upstream.close());

    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: db.url,
      DATABASE_POOL_SIZE: db.kind === 'embedded' ? '5' : '10',
      DATABASE_MIGRATIONS_RUN: 'true',
      RSA_ISSUER: issuer,
      API_PORT: String(apiPort),
      ADMIN_PORT: String(adminPort),
      UPSTREAM_ISSUER: upstream.issuer,
      UPSTREAM_CLIENT_ID: upstreamClient.client_id,
      UPSTREAM_CLIENT_SECRET: upstreamClient.client_secret,
      UPSTREAM_RESOURCE_BASE_URL: upstream.resourceBaseUrl,
      TOKEN_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString('base64')}`,
      ADMIN_TOKENS: ADMIN_TOKEN,
      LOG_LEVEL: 'error',
      RSA_ACCESS_TOKEN_TTL_SECONDS: '3600',
      // SQL-inserted aliases must not be "re-discovered" (and marked gone) during the run.
      RESOURCE_DISCOVERY_STALE_SECONDS: '86400',
      // Warm means warm for the whole run (defaults: 30 s and 60 s).
      USERINFO_CACHE_TTL_SECONDS: '600',
      RELATED_CACHE_TTL_SECONDS: '600',
      // The 100,000 synthetic accounts must never be refreshed; their tokens are not real.
      PROACTIVE_REFRESH_ENABLED: 'false',
      // Per-IP limits would cap every scenario from one client (admin: 600/min by default).
      RATE_LIMIT_ENABLED: 'false',
      ...Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(RELATED_CONCURRENCY|UPSTREAM_TIMEOUT_MS)$/.test(k))),
    } as Record<string, string>;
    const config = loadConfig(env);
    const api: NestExpressApplication = await createApiApp(config);
    stoppers.push(() => api.close());
    await api.listen(apiPort, '127.0.0.1');
    // Same deployment, owners' details cache off: the cold `related` scenario.
    const coldConfig = loadConfig({ ...env, RELATED_CACHE_TTL_SECONDS: '0', DATABASE_MIGRATIONS_RUN: 'false' });
    const cold: NestExpressApplication = await createApiApp(coldConfig);
    stoppers.push(() => cold.close());
    await cold.listen(coldPort, '127.0.0.1');
    const admin: NestExpressApplication = await createAdminApp(config);
    stoppers.push(() => admin.close());
    await admin.listen(adminPort, '127.0.0.1');
    const coldUrl = `http://127.0.0.1:${coldPort}`;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const dataSource = api.get<DataSource>(getDataSourceToken());

    const wallet: BenchWallet = { clientId: 'bench-wallet', clientSecret: randomBytes(24).toString('base64url'), redirectUri: 'http://127.0.0.1:8080/callback' };
    await api.get(ClientRegistry).upsert({
      client_id: wallet.clientId,
      client_secret: wallet.clientSecret,
      client_name: 'Bench Wallet',
      redirect_uris: [wallet.redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      scope: `openid profile email offline_access ${config.scopes.related} ${config.scopes.delegations}`,
    });
    await api.get(CatalogueService).upsert(DEMO_ACCOUNT_RESOURCE);
    log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s (api ${issuer}, cold api ${coldUrl}, admin ${adminUrl}, upstream ${upstream.issuer})`);

    // --- seed -------------------------------------------------------------------------------
    const seedStart = Date.now();
    const owners = await loginMany(issuer, wallet, Array.from({ length: OWNERS }, () => addBenchUser(upstream, 'owner')), 10);
    const [d0, d1, d10, d50, d1000] = await loginMany(issuer, wallet, ['d0', 'd1', 'd10', 'd50', 'd1000'].map((p) => addBenchUser(upstream, p)));
    // Baseline B's token: the same delegate without fpx_rot, so /userinfo is plain (cached) claims.
    const plain = await walletLogin(issuer, wallet, d0.upstream, 'openid profile email');
    // Proxy: an owner with a real upstream account (discovered at login) and a delegate of it.
    const proxyOwner = await walletLogin(
      issuer,
      wallet,
      addBenchUser(upstream, 'proxy-owner', [{ id: `bench-acct-${randomBytes(4).toString('hex')}`, name: 'Bench account', currency: 'EUR', balance: 100 }]),
    );
    const proxyDelegate = await walletLogin(issuer, wallet, addBenchUser(upstream, 'proxy-delegate'));
    const owned = (await (await fetch(`${issuer}/resources`, { headers: { authorization: `Bearer ${proxyOwner.token}` } })).json()) as { owned: { id: string }[] };
    if (!owned.owned?.length) throw new Error('the proxy owner has no discovered resource');
    const proxyAlias = owned.owned[0].id;
    await delegate(issuer, proxyOwner, [proxyAlias], proxyDelegate);

    // 1 alias per owner for the `related` delegates, 20 more per owner for the 1,000-alias delegate.
    const perOwner = 1 + DELEGATED_ALIASES / OWNERS;
    const aliases = await insertAliases(dataSource, owners.map((o) => o.accountId), perOwner);
    const pairs: [BenchUser, number][] = [
      [d1, 1],
      [d10, 10],
      [d50, 50],
    ];
    for (const [to, n] of pairs) {
      for (let i = 0; i < n; i += 10) await Promise.all(owners.slice(i, Math.min(n, i + 10)).map((o) => delegate(issuer, o, aliases.get(o.accountId)!.slice(0, 1), to)));
    }
    for (let i = 0; i < OWNERS; i += 10) {
      await Promise.all(owners.slice(i, i + 10).map((o) => delegate(issuer, o, aliases.get(o.accountId)!.slice(1), d1000)));
    }
    log(`seeded ${OWNERS + 9} users through the Wallet flow, ${OWNERS * perOwner} aliases, delegations, in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`);

    const bulkStart = Date.now();
    await insertBulkAccounts(dataSource, upstream.issuer, ACCOUNTS);
    await dataSource.query('ANALYZE');
    const [{ n: tokenRows }] = await dataSource.query<{ n: string }[]>('SELECT count(*) AS n FROM upstream_token WHERE provider = $1', [upstream.issuer]);
    log(`inserted ${ACCOUNTS} token-health accounts with SQL in ${((Date.now() - bulkStart) / 1000).toFixed(1)} s (${tokenRows} upstream_token rows of this provider)`);
    // A cursor 90% into the list: the one the API hands out after that many rows (keyset on account id).
    const deepIndex = Math.floor(Number(tokenRows) * 0.9);
    const [{ account_id: deepAfter }] = await dataSource.query<{ account_id: string }[]>(
      'SELECT account_id FROM upstream_token WHERE provider = $1 ORDER BY account_id OFFSET $2 LIMIT 1',
      [upstream.issuer, deepIndex],
    );
    const deepCursor = encodeCursor({ a: deepAfter });

    // A real upstream access token (the proxy owner's, as the RSA's vault holds it) for baseline A.
    const upstreamToken = await api.get(UpstreamTokenVault).getUsableAccessToken(proxyOwner.accountId);

    // The delegation the writes scenario changes (one of d1's: nothing the measured caller sees).
    const [{ id: toggled }] = await dataSource.query<{ id: string }[]>(
      'SELECT id FROM generic_resource_authorization WHERE delegate_account_id = $1 LIMIT 1',
      [d1.accountId],
    );

    // --- scenarios ---------------------------------------------------------------------------
    const scenarios: (Scenario & { expect?: (b: unknown) => string | undefined })[] = [
      { id: 'baseline-a', title: 'Baseline A: dev upstream userinfo', request: 'GET upstream /me', url: `${upstream.issuer}/me`, token: upstreamToken,
        note: 'oidc-provider userinfo with a real upstream access token (in-memory store)' },
      { id: 'baseline-b', title: 'Baseline B: RSA /userinfo, plain claims', request: 'GET /userinfo (no fpx_rot)', url: `${issuer}/userinfo`, token: plain.token,
        note: 'bearer validation + cached upstream claims, no related claim: the api framework floor (no dedicated trivial route exists)',
        expect: (b) => ((b as { related?: unknown }).related === undefined ? undefined : 'related present') },
      ...([[d0, 0], [d1, 1], [d10, 10], [d50, 50]] as [BenchUser, number][]).map(([u, n]) => ({
        id: `userinfo-related-${n}-warm`,
        title: `/userinfo related, ${n} owners, warm`,
        request: 'GET /userinfo (fpx_rot)',
        url: `${issuer}/userinfo`,
        token: u.token,
        expect: (b: unknown) => {
          const related = (b as { related?: { status: string }[] }).related;
          if (!related || related.length !== n) return `expected ${n} related entries, got ${related?.length}`;
          if (related.some((e) => e.status !== 'available')) return 'an owner is not available';
          return undefined;
        },
      })),
      {
        id: 'userinfo-related-10-writes',
        title: `/userinfo related, 10 owners, ${WRITES_PER_SECOND} writes/s`,
        request: 'GET /userinfo (fpx_rot)',
        url: `${issuer}/userinfo`,
        token: d10.token,
        note: `the 10-owner warm request while another delegation changes ${WRITES_PER_SECOND} times a second: every change moves the data revision, so validated tokens and delegation lists are read again after each`,
        alongside: () => writeLoop(dataSource, toggled),
        expect: (b: unknown) => ((b as { related?: unknown[] }).related?.length === 10 ? undefined : 'expected 10 related entries'),
      },
      { id: 'userinfo-related-10-cold', title: '/userinfo related, 10 owners, cold', request: 'GET /userinfo (fpx_rot), RELATED_CACHE_TTL_SECONDS=0',
        url: `${coldUrl}/userinfo`, token: d10.token, note: 'second api instance, same DB: every request fetches 10 owners at the (same-process) dev upstream',
        expect: (b) => ((b as { related?: unknown[] }).related?.length === 10 ? undefined : 'expected 10 related entries') },
      { id: 'resources-1000-delegated', title: '/resources, 1,000 delegated aliases', request: 'GET /resources (first page)', url: `${issuer}/resources`, token: d1000.token,
        expect: (b) => ((b as { next_cursor?: string | null }).next_cursor ? undefined : 'expected a next_cursor over 1,000 aliases') },
      { id: 'proxy-owned', title: 'Proxy, owned resource', request: 'GET /resources/{id}/data/', url: `${issuer}/resources/${proxyAlias}/data/`, token: proxyOwner.token },
      { id: 'proxy-delegated', title: 'Proxy, delegated resource', request: 'GET /resources/{id}/data/', url: `${issuer}/resources/${proxyAlias}/data/`, token: proxyDelegate.token },
      { id: 'token-health-first-page', title: `Admin token health, first page (${ACCOUNTS.toLocaleString('en')} accounts)`, request: 'GET /token-health/accounts',
        url: `${adminUrl}/token-health/accounts`, token: ADMIN_TOKEN, expect: (b) => ((b as { items?: unknown[] }).items?.length ? undefined : 'no items') },
      { id: 'token-health-deep-cursor', title: `Admin token health, cursor at row ${deepIndex.toLocaleString('en')}`, request: 'GET /token-health/accounts?cursor=…',
        url: `${adminUrl}/token-health/accounts?cursor=${deepCursor}`, token: ADMIN_TOKEN, expect: (b) => ((b as { items?: unknown[] }).items?.length ? undefined : 'no items') },
    ];
    const selected = scenarios.filter((s) => s.id.startsWith('baseline') || !ONLY.length || ONLY.includes(s.id));
    for (const s of selected) await check(s, s.expect);
    log(`all ${selected.length} scenarios answered their preflight; measuring ${DURATION} s each with ${CONNECTIONS} connections (${WARMUP} s warm-up each)`);

    const results: Measured[] = [];
    for (const s of selected) results.push(await measure(s));
    const a = results.find((r) => r.id === 'baseline-a')!;
    const b = results.find((r) => r.id === 'baseline-b')!;
    for (const r of results) {
      r.rps_vs_a = ratio(r.rps, a.rps);
      r.rps_vs_b = ratio(r.rps, b.rps);
      r.p50_vs_a = ratio(r.p50_ms, a.p50_ms);
      r.p50_vs_b = ratio(r.p50_ms, b.p50_ms);
    }

    const get = (id: string) => results.find((r) => r.id === id);
    const targets = evaluateTargets(get);
    const report = {
      generated_at: new Date().toISOString(),
      git_commit: gitCommit(),
      machine: { ...machineInfo, loadavg_at_end: loadavg().map((l) => Math.round(l * 100) / 100) },
      database: db.kind === 'server' ? { kind: 'postgresql', version: db.version } : { kind: 'embedded-pglite', warning: 'PGlite serialises all queries' },
      settings: { duration_seconds: DURATION, connections: CONNECTIONS, warmup_seconds: WARMUP, token_health_accounts: ACCOUNTS, load_generator: 'autocannon (separate process)', stack: 'one process (dev upstream, api, cold api, admin)' },
      baselines: { a: 'baseline-a: dev upstream GET /me', b: 'baseline-b: RSA GET /userinfo without fpx_rot (plain cached claims)' },
      scenarios: results,
      targets,
      total_seconds: Math.round((Date.now() - started) / 1000),
    };
    mkdirSync(dirname(OUTPUT), { recursive: true });
    writeFileSync(OUTPUT, `${JSON.stringify(report, null, 2)}\n`);
    printTable(results, report);
    log(`results written to ${OUTPUT}; whole run ${report.total_seconds} s`);
  } finally {
    await stopAll();
  }
}

function evaluateTargets(get: (id: string) => Measured | undefined) {
  const out: { target: string; met: boolean | null; value: string }[] = [];
  const a = get('baseline-a');
  const w10 = get('userinfo-related-10-warm');
  if (a && w10) out.push({ target: '/userinfo 10 owners warm ≥ 0.5× baseline A req/s', met: w10.rps >= 0.5 * a.rps, value: `${(w10.rps / a.rps).toFixed(2)}×` });
  if (a && w10) out.push({ target: '/userinfo 10 owners warm beats baseline A (aim)', met: w10.rps > a.rps, value: `${(w10.rps / a.rps).toFixed(2)}×` });
  const w1 = get('userinfo-related-1-warm');
  const w50 = get('userinfo-related-50-warm');
  if (w1 && w50) out.push({ target: '/userinfo p50 with 50 owners ≤ 1.5× p50 with 1 owner (warm)', met: w50.p50_ms <= 1.5 * w1.p50_ms, value: `${w50.p50_ms} ms vs ${w1.p50_ms} ms (${(w50.p50_ms / w1.p50_ms).toFixed(2)}×)` });
  const res = get('resources-1000-delegated');
  if (res) out.push({ target: '/resources first page, 1,000 delegated aliases: p99 < 50 ms', met: res.p99_ms < 50, value: `${res.p99_ms} ms` });
  for (const id of ['token-health-first-page', 'token-health-deep-cursor']) {
    const r = get(id);
    if (r) out.push({ target: `${id}: p99 < 50 ms`, met: r.p99_ms < 50, value: `${r.p99_ms} ms` });
  }
  return out;
}

function gitCommit(): string | undefined {
  try {
    const head = readFileSync('.git/HEAD', 'utf8').trim();
    return head.startsWith('ref: ') ? readFileSync(join('.git', head.slice(5)), 'utf8').trim() : head;
  } catch {
    return undefined;
  }
}

function printTable(results: Measured[], report: { machine: ReturnType<typeof machine> & { loadavg_at_end: number[] }; database: object; targets: ReturnType<typeof evaluateTargets> }): void {
  const rows = [
    ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'errors', '× A (req/s)', '× B (req/s)'],
    ...results.map((r) => [r.id, r.rps.toFixed(0), r.p50_ms.toFixed(2), r.p99_ms.toFixed(2), String(r.errors), r.rps_vs_a?.toFixed(2) ?? '', r.rps_vs_b?.toFixed(2) ?? '']),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  console.log('');
  console.log(line(rows[0]));
  console.log(`|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows.slice(1)) console.log(line(r));
  console.log('');
  console.log(`Baseline A = dev upstream GET /me; baseline B = RSA GET /userinfo without fpx_rot (plain cached claims).`);
  console.log(
    `${CONNECTIONS} connections, ${DURATION} s per scenario; ${report.machine.nproc} CPUs, ${report.machine.memory_gb} GB, Node ${report.machine.node}; ` +
      `database ${JSON.stringify(report.database)}; load average at start ${report.machine.loadavg_at_start.join(' ')}, at end ${report.machine.loadavg_at_end.join(' ')}`,
  );
  if (report.machine.loadavg_at_start[0] > report.machine.nproc * 0.5) console.log('NOTE: the machine was busy at start (load average above half the CPUs): numbers are pessimistic.');
  console.log('');
  for (const t of report.targets) console.log(`  ${t.met ? 'MET    ' : 'NOT MET'}  ${t.target}: ${t.value}`);
  const failing = results.filter((r) => r.errors);
  console.log(failing.length ? `  NOT MET  zero errors: ${failing.map((r) => `${r.id} (${r.errors})`).join(', ')}` : '  MET      zero errors in every scenario');
  console.log('');
}

main().catch((error: Error) => {
  console.error(`[bench] failed: ${error.stack ?? error.message}`);
  process.exit(1);
});
