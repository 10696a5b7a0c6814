import { ClientRegistry, createTypeormAdapter, OidcPayloadPurger } from '@rsa/auth';
import { startStack, TestStack } from './support/stack';
import { randomId } from './support/test-config';

describe('OP storage on PostgreSQL (TypeORM adapter)', () => {
  let stack: TestStack;
  let Adapter: ReturnType<typeof createTypeormAdapter>;

  beforeAll(async () => {
    stack = await startStack();
    Adapter = createTypeormAdapter(stack.dataSource, stack.api.get(ClientRegistry));
  });
  afterAll(() => stack?.close());

  it('two parallel redemptions of one authorization code: exactly one consume succeeds', async () => {
    const codes = new Adapter('AuthorizationCode');
    const id = randomId('code');
    await codes.upsert(id, { jti: id, grantId: randomId('grant'), kind: 'AuthorizationCode' }, 60);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => codes.consume(id)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(4);
    for (const r of rejected) expect((r.reason as { error?: string }).error).toBe('invalid_grant');
    expect(await codes.find(id)).toMatchObject({ jti: id, consumed: true });
  });

  it('credential rows are keyed by a digest: the token value is stored nowhere', async () => {
    const tokens = new Adapter('AccessToken');
    const value = randomId('opaque-access-token-value');
    await tokens.upsert(value, { jti: value, accountId: 'a', kind: 'AccessToken' }, 60);
    const hits: unknown[] = await stack.dataSource.query(
      `SELECT 1 FROM oidc_payload WHERE id = $1 OR payload::text LIKE '%' || $1 || '%'`,
      [value],
    );
    expect(hits).toHaveLength(0);
    expect(await tokens.find(value)).toMatchObject({ jti: value, accountId: 'a' });
  });

  it('expired rows are invisible and purged; live rows stay', async () => {
    const sessions = new Adapter('Session');
    const expired = randomId('session');
    const live = randomId('session');
    await sessions.upsert(expired, { jti: expired, uid: randomId('uid'), kind: 'Session' }, 60);
    await sessions.upsert(live, { jti: live, uid: randomId('uid'), kind: 'Session' }, 600);
    await stack.dataSource.query(`UPDATE oidc_payload SET expires_at = now() - interval '1 second' WHERE model = 'Session' AND id = $1`, [expired]);
    expect(await sessions.find(expired)).toBeUndefined();
    expect(await stack.api.get(OidcPayloadPurger).purge()).toBeGreaterThanOrEqual(1);
    const left: { id: string }[] = await stack.dataSource.query(`SELECT id FROM oidc_payload WHERE id IN ($1, $2)`, [expired, live]);
    expect(left.map((r) => r.id)).toEqual([live]);
  });

  it('revokeByGrantId removes every row of that grant and no other', async () => {
    const tokens = new Adapter('RefreshToken');
    const grantId = randomId('grant');
    const [a, b, other] = [randomId('rt'), randomId('rt'), randomId('rt')];
    await tokens.upsert(a, { jti: a, grantId, kind: 'RefreshToken' }, 60);
    await tokens.upsert(b, { jti: b, grantId, kind: 'RefreshToken' }, 60);
    await tokens.upsert(other, { jti: other, grantId: randomId('grant'), kind: 'RefreshToken' }, 60);
    await tokens.revokeByGrantId(grantId);
    expect(await tokens.find(a)).toBeUndefined();
    expect(await tokens.find(b)).toBeUndefined();
    expect(await tokens.find(other)).toBeDefined();
  });

  it('clients are read from oauth_client with the secret decrypted, and the secret is stored encrypted', async () => {
    const clientId = randomId('client');
    const secret = randomId('client-secret');
    await stack.api.get(ClientRegistry).upsert({ client_id: clientId, client_secret: secret, redirect_uris: ['https://wallet.example/cb'] });
    expect(await new Adapter('Client').find(clientId)).toMatchObject({ client_id: clientId, client_secret: secret });
    const [row] = await stack.dataSource.query(`SELECT client_secret_enc, metadata::text AS metadata FROM oauth_client WHERE client_id = $1`, [clientId]);
    expect(row.client_secret_enc).toMatch(/^v1\./);
    expect(row.client_secret_enc).not.toContain(secret);
    expect(row.metadata).not.toContain(secret);
  });
});
