import { UpstreamTokenVault } from '@rsa/auth';
import { startAdmin, type AdminInstance } from './support/admin';
import { startStack, type TestStack } from './support/stack';
import { loginOwners, setAccessTokenExpiry } from './support/token-fixtures';

/**
 * The sum of the samples of `name` whose labels include `labels` (Prometheus text format 0.0.4).
 * Absent series count as 0.
 */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
}

describe('Admin /metrics (Prometheus)', () => {
  let stack: TestStack;
  let admin: AdminInstance;

  beforeAll(async () => {
    stack = await startStack();
    admin = await startAdmin(stack);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  const scrape = async (): Promise<string> => {
    const res = await admin.request('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    return res.body as string;
  };

  it('needs the admin token, like every admin route', async () => {
    expect((await admin.request('GET', '/metrics', { token: null })).status).toBe(401);
    expect((await admin.request('GET', '/metrics', { token: 'wrong-token-wrong-token-wrong-tok' })).status).toBe(401);
    const text = await scrape();
    expect(text).toMatch(/^# HELP rsa_upstream_tokens /m);
    expect(text).toMatch(/^# TYPE rsa_http_request_duration_seconds histogram$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('token counts by status and delegations by owner status are the ones /token-health reports, computed at scrape', async () => {
    const [owner] = await loginOwners(stack, 'metrics-count', 1);
    await setAccessTokenExpiry(stack, [owner.accountId], -60);
    const text = await scrape();
    const summary = (await admin.request('GET', '/token-health')).body;
    for (const status of ['valid', 'refreshable', 'reauth_required', 'refresh_failing', 'revoked']) {
      expect([status, sample(text, 'rsa_upstream_tokens', { status })]).toEqual([status, summary.by_status[status].accounts]);
      expect([status, sample(text, 'rsa_active_delegations', { owner_token_status: status })]).toEqual([
        status,
        summary.by_status[status].active_delegations,
      ]);
    }
    expect(sample(text, 'rsa_upstream_tokens', { status: 'refreshable' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'rsa_upstream_tokens_by_last_refresh_outcome')).toBe(summary.totals.accounts);
  });

  it('counts refresh outcomes by trigger and times upstream calls', async () => {
    const [fine, dead] = await loginOwners(stack, 'metrics-refresh', 2);
    const before = await scrape();
    await setAccessTokenExpiry(stack, [fine.accountId], -60);
    await stack.api.get(UpstreamTokenVault).getUsableAccessToken(fine.accountId); // on demand, in the api app
    expect((await admin.request('POST', `/accounts/${fine.accountId}/tokens/refresh`)).status).toBe(200);
    await stack.upstream.revokeGrantsOf(dead.user.sub);
    expect((await admin.request('POST', `/accounts/${dead.accountId}/tokens/refresh`)).status).toBe(409);
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    expect(delta('rsa_upstream_token_refreshes_total', { outcome: 'success', trigger: 'on_demand' })).toBe(1);
    expect(delta('rsa_upstream_token_refreshes_total', { outcome: 'success', trigger: 'admin' })).toBe(1);
    expect(delta('rsa_upstream_token_refreshes_total', { outcome: 'invalid_grant', trigger: 'admin' })).toBe(1);
    // Three refresh calls reached the upstream: two answered, one refused (invalid_grant).
    expect(delta('rsa_upstream_request_duration_seconds_count', { operation: 'refresh', outcome: 'success' })).toBe(2);
    expect(delta('rsa_upstream_request_duration_seconds_count', { operation: 'refresh', outcome: 'oauth_error' })).toBe(1);
    expect(delta('rsa_upstream_request_duration_seconds_sum', { operation: 'refresh' })).toBeGreaterThan(0);
    // Logins went through the upstream too (code exchange, userinfo).
    expect(sample(after, 'rsa_upstream_request_duration_seconds_count', { operation: 'authorization_code', outcome: 'success' })).toBeGreaterThanOrEqual(2);
  });

  it('times HTTP requests per app, method, route template and status, never per raw path', async () => {
    const [owner] = await loginOwners(stack, 'metrics-http', 1);
    const before = await scrape();
    expect((await admin.request('GET', `/accounts/${owner.accountId}/tokens`)).status).toBe(200);
    expect((await admin.request('GET', `/accounts/00000000-0000-4000-8000-000000000000/tokens`)).status).toBe(404);
    expect((await admin.request('GET', '/no-such-route')).status).toBe(404);
    expect((await admin.request('GET', '/token-health', { token: null })).status).toBe(401);
    expect((await fetch(`${stack.issuer}/health/live`)).status).toBe(200);
    const after = await scrape();

    const delta = (labels: Record<string, string>) =>
      sample(after, 'rsa_http_request_duration_seconds_count', labels) - sample(before, 'rsa_http_request_duration_seconds_count', labels);
    expect(delta({ app: 'admin', method: 'GET', route: '/accounts/:id/tokens', status_code: '200' })).toBe(1);
    expect(delta({ app: 'admin', method: 'GET', route: '/accounts/:id/tokens', status_code: '404' })).toBe(1);
    expect(delta({ app: 'admin', method: 'GET', route: '(unmatched)', status_code: '404' })).toBe(1);
    expect(delta({ app: 'admin', method: 'GET', route: '/token-health', status_code: '401' })).toBe(1);
    expect(delta({ app: 'api', method: 'GET', route: '/health/live', status_code: '200' })).toBe(1);
    expect(after).not.toContain(owner.accountId);
  });

  it('a second admin app in the same process starts and serves its own scrape (no "metric already registered")', async () => {
    const other = await startAdmin(stack);
    try {
      const res = await other.request('GET', '/metrics');
      expect(res.status).toBe(200);
      expect(sample(res.body as string, 'rsa_upstream_tokens')).toBe(sample(await scrape(), 'rsa_upstream_tokens'));
    } finally {
      await other.close();
    }
  });
});
