import { createHash, randomUUID } from 'node:crypto';
import { columnAad, TokenCipher } from '@rsa/auth';
import { startAdmin, type AdminInstance } from './support/admin';
import { addUpstreamUser, insertAccountAliases, loginUsers, type ExtraUser } from './support/extra-users';
import { bearer } from './support/http';
import { startStack, type TestStack } from './support/stack';
import { randomId, TEST_ADMIN_TOKEN } from './support/test-config';

const ADMIN_ACTOR = `admin:${createHash('sha256').update(TEST_ADMIN_TOKEN).digest('hex').slice(0, 8)}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function failingFields(body: any): string[] {
  if (Array.isArray(body?.fields)) return body.fields.map((f: { field: string }) => f.field);
  return body?.details?.field ? [body.details.field] : [];
}

/** Every key of a JSON value, at any depth. */
function allKeys(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(allKeys);
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => [k, ...allKeys(v)]);
  return [];
}

describe('admin /accounts and /audit-events', () => {
  let stack: TestStack;
  let admin: AdminInstance;

  beforeAll(async () => {
    // Aliases are inserted in SQL: discovery must not run again and mark them gone.
    stack = await startStack({ env: { RESOURCE_DISCOVERY_STALE_SECONDS: '86400' } });
    admin = await startAdmin(stack);
  });
  afterAll(async () => {
    await admin?.close();
    await stack?.close();
  });

  /** An owner with two resources, one delegated to `delegate` and one waiting for an unknown email. */
  async function ownerWithDelegations(): Promise<{ owner: ExtraUser; delegate: ExtraUser; aliases: string[]; pendingEmail: string }> {
    const [owner, delegate] = await loginUsers(stack, [addUpstreamUser(stack, 'owner'), addUpstreamUser(stack, 'delegate')]);
    const aliases = (await insertAccountAliases(stack, [owner.accountId], 2)).get(owner.accountId)!;
    const pendingEmail = `${randomId('pending')}@users.example`;
    for (const delegateRef of [{ sub: delegate.accountId }, { email: pendingEmail }]) {
      const res = await fetch(
        `${stack.issuer}/delegations`,
        bearer(owner.session.tokens.access_token, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ aliases: [aliases[0]], scopes: ['read'], delegate: delegateRef }),
        }),
      );
      expect(res.status).toBe(201);
    }
    return { owner, delegate, aliases, pendingEmail };
  }

  describe('/accounts', () => {
    it('finds an account by email (any case), by its RSA id or by its upstream sub', async () => {
      const [user] = await loginUsers(stack, [addUpstreamUser(stack, 'search')]);
      const expected = { id: user.accountId, sub: user.upstream.sub, email: user.upstream.email, token_status: 'valid' };
      for (const query of [
        `email=${encodeURIComponent(user.upstream.email!.toUpperCase())}`,
        `sub=${user.accountId}`,
        `sub=${encodeURIComponent(user.upstream.sub)}`,
        `sub=${user.accountId}&email=${encodeURIComponent(user.upstream.email!)}`,
      ]) {
        const res = await admin.request('GET', `/accounts?${query}`);
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ items: [expect.objectContaining(expected)], next_cursor: null });
      }
      for (const query of [`sub=${randomUUID()}`, `sub=${randomId('nobody')}`, `email=${randomId('nobody')}@users.example`, `sub=${user.accountId}&email=other@users.example`]) {
        expect((await admin.request('GET', `/accounts?${query}`)).body).toEqual({ items: [], next_cursor: null });
      }
    });

    it('lists newest first with a keyset cursor: no account twice, none skipped', async () => {
      const fresh = await loginUsers(stack, [addUpstreamUser(stack, 'page'), addUpstreamUser(stack, 'page'), addUpstreamUser(stack, 'page')], { batchSize: 1 });
      const seen: { id: string; created_at: string }[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 50; pages++) {
        const res = await admin.request('GET', `/accounts?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...res.body.items);
        cursor = res.body.next_cursor;
        if (!cursor || fresh.every((f) => seen.some((s) => s.id === f.accountId))) break;
      }
      expect(new Set(seen.map((s) => s.id)).size).toBe(seen.length);
      for (let i = 1; i < seen.length; i++) expect(seen[i - 1].created_at >= seen[i].created_at).toBe(true);
      // Logged in one after the other: newest first.
      const positions = fresh.map((f) => seen.findIndex((s) => s.id === f.accountId));
      expect(positions.every((p) => p >= 0)).toBe(true);
      expect([...positions].sort((a, b) => b - a)).toEqual(positions);

      expect(failingFields((await admin.request('GET', '/accounts?limit=101')).body)).toEqual(['limit']);
      expect((await admin.request('GET', '/accounts?cursor=bm90LWpzb24')).status).toBe(400);
      expect((await admin.request('GET', '/accounts?color=blue')).status).toBe(400);
    });

    it('detail: profile, upstream token status and counts — and never a token value', async () => {
      const { owner, delegate } = await ownerWithDelegations();
      const res = await admin.request('GET', `/accounts/${owner.accountId}`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id: owner.accountId,
        sub: owner.upstream.sub,
        provider: stack.upstream.issuer,
        email: owner.upstream.email,
        email_verified: true,
        name: owner.upstream.name,
        token_status: 'valid',
        tokens: { status: 'valid', has_refresh_token: true, has_id_token: true, consecutive_failures: 0, last_refresh_outcome: null },
        resources: { active: 2, gone: 0 },
        delegations: { given: { active: 1, pending: 1, revoked: 0, expired: 0 }, received: { active: 0, pending: 0, revoked: 0, expired: 0 } },
      });
      const delegateDetail = await admin.request('GET', `/accounts/${delegate.accountId}`);
      expect(delegateDetail.body.delegations).toEqual({
        given: { active: 0, pending: 0, revoked: 0, expired: 0 },
        received: { active: 1, pending: 0, revoked: 0, expired: 0 },
      });

      // No encrypted column, no token of any kind: upstream (decrypted here to compare) or RSA-issued.
      const text = JSON.stringify(res.body);
      expect(allKeys(res.body).filter((k) => /_enc$|^(access|refresh|id)_token$/i.test(k))).toEqual([]);
      const [row] = await stack.dataSource.query(`SELECT access_token_enc, refresh_token_enc, id_token_enc FROM upstream_token WHERE account_id = $1`, [
        owner.accountId,
      ]);
      const cipher = stack.api.get(TokenCipher);
      const secrets = [
        row.access_token_enc,
        row.refresh_token_enc,
        row.id_token_enc,
        cipher.decrypt(row.access_token_enc, columnAad('upstream_token', 'access_token', owner.accountId)),
        cipher.decrypt(row.refresh_token_enc, columnAad('upstream_token', 'refresh_token', owner.accountId)),
        cipher.decrypt(row.id_token_enc, columnAad('upstream_token', 'id_token', owner.accountId)),
        owner.session.tokens.access_token,
        owner.session.tokens.refresh_token!,
        owner.session.tokens.id_token!,
      ];
      for (const secret of secrets) expect(text).not.toContain(secret);

      expect((await admin.request('GET', `/accounts/${randomUUID()}`)).status).toBe(404);
      const notUuid = await admin.request('GET', '/accounts/not-a-uuid');
      expect(notUuid.status).toBe(400);
      expect(failingFields(notUuid.body)).toEqual(['id']);
    });

    it('delete cascades: resources, delegations given and received, upstream tokens and RSA tokens go; no orphans; audited', async () => {
      const { owner, delegate, aliases } = await ownerWithDelegations();
      const authorizationIds: string[] = (
        await stack.dataSource.query(`SELECT id FROM generic_resource_authorization WHERE owner_account_id = $1`, [owner.accountId])
      ).map((r: { id: string }) => r.id);
      expect(authorizationIds).toHaveLength(2);
      const ownerToken = bearer(owner.session.tokens.access_token);
      expect((await fetch(`${stack.issuer}/userinfo`, ownerToken)).status).toBe(200);

      const requestId = randomId('delete-account');
      const res = await admin.request('DELETE', `/accounts/${owner.accountId}`, { headers: { 'x-request-id': requestId } });
      expect(res.status).toBe(204);

      const count = async (sql: string, params: unknown[]) => Number((await stack.dataSource.query(sql, params))[0].n);
      expect(await count(`SELECT count(*) AS n FROM account WHERE id = $1`, [owner.accountId])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM generic_resource_alias WHERE id = ANY($1)`, [aliases])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM generic_resource_alias_scope WHERE alias_id = ANY($1)`, [aliases])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM generic_resource_authorization WHERE id = ANY($1)`, [authorizationIds])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM generic_resource_authorization_scope WHERE authorization_id = ANY($1)`, [authorizationIds])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM upstream_token WHERE account_id = $1`, [owner.accountId])).toBe(0);
      expect(await count(`SELECT count(*) AS n FROM oidc_payload WHERE payload->>'accountId' = $1`, [owner.accountId])).toBe(0);

      // The deleted user's RSA token stops working at once; the delegate no longer sees the resource.
      expect((await fetch(`${stack.issuer}/userinfo`, ownerToken)).status).toBe(401);
      const delegateView = await admin.request('GET', `/accounts/${delegate.accountId}`);
      expect(delegateView.body.delegations.received).toEqual({ active: 0, pending: 0, revoked: 0, expired: 0 });

      const events = await admin.request('GET', `/audit-events?request_id=${requestId}`);
      expect(events.body.items).toEqual([
        expect.objectContaining({
          action: 'account.deleted',
          actor_type: 'admin',
          actor_id: ADMIN_ACTOR,
          target_type: 'account',
          target_id: owner.accountId,
          outcome: 'success',
          details: expect.objectContaining({
            sub: owner.upstream.sub,
            removed: expect.objectContaining({ aliases: 2, delegations_given: 2, delegations_received: 0, upstream_tokens: 1 }),
          }),
        }),
      ]);
      expect((await admin.request('GET', `/accounts/${owner.accountId}`)).status).toBe(404);
      expect((await admin.request('DELETE', `/accounts/${owner.accountId}`)).status).toBe(404);

      // Deleting a delegate removes the delegations it received, not the owner's resources.
      const second = await ownerWithDelegations();
      expect((await admin.request('DELETE', `/accounts/${second.delegate.accountId}`)).status).toBe(204);
      expect(await count(`SELECT count(*) AS n FROM generic_resource_authorization WHERE delegate_account_id = $1`, [second.delegate.accountId])).toBe(0);
      const ownerAfter = await admin.request('GET', `/accounts/${second.owner.accountId}`);
      expect(ownerAfter.body).toMatchObject({ resources: { active: 2 }, delegations: { given: { active: 0, pending: 1 } } });
    });

    it('accounts come from upstream logins only: no create or update routes', async () => {
      const [user] = await loginUsers(stack, [addUpstreamUser(stack, 'ro')]);
      expect((await admin.request('POST', '/accounts', { body: { sub: 'x', email: 'x@users.example' } })).status).toBe(404);
      expect((await admin.request('PATCH', `/accounts/${user.accountId}`, { body: { name: 'x' } })).status).toBe(404);
      expect((await admin.request('PUT', `/accounts/${user.accountId}`, { body: { name: 'x' } })).status).toBe(404);
    });
  });

  describe('/audit-events', () => {
    /** Events inserted with chosen times (in 2001, so they never crowd the top of the list). */
    async function seedEvents() {
      const tag = `t${randomId('a').slice(2).replace(/-/g, '')}`;
      const target = randomId('target');
      const [actorA, actorB] = [randomId('actor-a'), randomId('actor-b')];
      const rows = [
        { at: '2001-02-03T04:05:06.000001Z', actor: actorA, action: `${tag}.created`, outcome: 'success' },
        { at: '2001-02-03T04:05:06.000002Z', actor: actorA, action: `${tag}.updated`, outcome: 'success' },
        { at: '2001-02-03T04:05:06.000002Z', actor: actorB, action: `${tag}.updated`, outcome: 'failure' },
        { at: '2001-02-03T04:05:07.500000Z', actor: actorB, action: `${tag}_x.deleted`, outcome: 'success' },
        { at: '2001-02-03T04:05:08.000000Z', actor: actorA, action: `${tag}Y.deleted`, outcome: 'success' },
      ];
      const ids: string[] = [];
      for (const row of rows) {
        const [{ id }] = await stack.dataSource.query(
          `INSERT INTO audit_event (occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, details)
           VALUES ($1, 'system', $2, $3, 'test_target', $4, $5, '{"seeded": true}') RETURNING id`,
          [row.at, row.actor, row.action, target, row.outcome],
        );
        ids.push(id);
      }
      return { tag, target, actorA, actorB, rows, ids };
    }

    const list = async (query: string) => {
      const res = await admin.request('GET', `/audit-events?${query}`);
      expect(res.status).toBe(200);
      return res.body as { items: { id: string; action: string; actor_id: string; occurred_at: string; outcome: string }[]; next_cursor: string | null };
    };

    it('filters by target, actor, action (exact and prefix), outcome and time range; newest first', async () => {
      const { tag, target, actorA, actorB, ids } = await seedEvents();
      const byTarget = `target_type=test_target&target_id=${target}`;
      const all = await list(byTarget);
      // Newest first; the two events of the same microsecond ordered by id, descending.
      const tied = [ids[1], ids[2]].sort().reverse();
      expect(all.items.map((e) => e.id)).toEqual([ids[4], ids[3], ...tied, ids[0]]);
      expect(all.items[4]).toMatchObject({ occurred_at: '2001-02-03T04:05:06.000001Z', actor_type: 'system', details: { seeded: true } });

      expect((await list(`${byTarget}&actor=${actorB}`)).items.map((e) => e.id)).toEqual([ids[3], ids[2]]);
      expect((await list(`${byTarget}&action=${tag}.updated`)).items.map((e) => e.id).sort()).toEqual([ids[1], ids[2]].sort());
      expect((await list(`${byTarget}&action=${tag}.`)).items.map((e) => e.id).sort()).toEqual([ids[0], ids[1], ids[2]].sort());
      expect((await list(`${byTarget}&action=${encodeURIComponent(`${tag}.*`)}`)).items).toHaveLength(3);
      // `_` is a literal in a prefix, not a LIKE wildcard.
      expect((await list(`${byTarget}&action=${encodeURIComponent(`${tag}_*`)}`)).items.map((e) => e.id)).toEqual([ids[3]]);
      expect((await list(`${byTarget}&outcome=failure`)).items.map((e) => e.id)).toEqual([ids[2]]);
      expect((await list(`${byTarget}&actor_type=admin`)).items).toEqual([]);
      // [from, to): from inclusive, to exclusive, to the microsecond.
      const range = await list(`${byTarget}&from=2001-02-03T04:05:06.000002Z&to=2001-02-03T04:05:08Z`);
      expect(range.items.map((e) => e.id)).toEqual([ids[3], ...tied]);
      expect((await list(`${byTarget}&from=2001-02-03T05:05:06%2B01:00&to=2001-02-03T04:05:06.000002Z`)).items.map((e) => e.id)).toEqual([ids[0]]);
      expect((await list(`actor=${actorA}&from=2001-02-03T04:05:07Z`)).items.map((e) => e.id)).toEqual([ids[4]]);
    });

    it('pages with a keyset cursor on (occurred_at, id): microsecond ties are neither skipped nor repeated', async () => {
      const { target, ids } = await seedEvents();
      const seen: string[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const page = await list(`target_id=${target}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((e) => e.id));
        cursor = page.next_cursor;
        pages++;
      } while (cursor);
      expect(pages).toBe(3);
      expect(seen).toEqual([ids[4], ids[3], ...[ids[1], ids[2]].sort().reverse(), ids[0]]);
    });

    it('refuses invalid filters with a 400 naming the field', async () => {
      for (const [query, field] of [
        ['from=yesterday', 'from'],
        ['from=2001-02-03', 'from'],
        ['from=2001-02-03T04:05:06', 'from'],
        ['from=2001-W05-6', 'from'],
        ['to=2001-02-30T00:00:00Z', 'to'],
        ['from=2002-01-01T00:00:00Z&to=2001-01-01T00:00:00Z', 'from'],
        ['actor_type=robot', 'actor_type'],
        ['outcome=maybe', 'outcome'],
        ['limit=500', 'limit'],
        ['cursor=eyJ0IjoiMjAwMS0wMiIsImlkIjoieCJ9', 'cursor'],
        ['verb=delete', 'verb'],
      ]) {
        const res = await admin.request('GET', `/audit-events?${query}`);
        expect([query, res.status]).toEqual([query, 400]);
        expect(failingFields(res.body)).toEqual([field]);
      }
    });

    it('gets one event by id; an unknown id is a 404', async () => {
      const { ids, target } = await seedEvents();
      const res = await admin.request('GET', `/audit-events/${ids[0]}`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        id: ids[0],
        occurred_at: '2001-02-03T04:05:06.000001Z',
        actor_type: 'system',
        actor_id: expect.any(String),
        action: expect.stringMatching(/\.created$/),
        target_type: 'test_target',
        target_id: target,
        request_id: null,
        outcome: 'success',
        details: { seeded: true },
      });
      expect((await admin.request('GET', `/audit-events/${randomUUID()}`)).status).toBe(404);
      const notUuid = await admin.request('GET', '/audit-events/42');
      expect(notUuid.status).toBe(400);
      expect(failingFields(notUuid.body)).toEqual(['id']);
    });

    it('is append-only: the API has no write routes and the database refuses UPDATE and DELETE', async () => {
      const { ids } = await seedEvents();
      for (const [method, path] of [
        ['POST', '/audit-events'],
        ['PUT', `/audit-events/${ids[0]}`],
        ['PATCH', `/audit-events/${ids[0]}`],
        ['DELETE', `/audit-events/${ids[0]}`],
        ['DELETE', '/audit-events'],
      ]) {
        const res = await admin.request(method, path, method === 'DELETE' ? {} : { body: { action: 'x' } });
        expect([method, path, res.status]).toEqual([method, path, 404]);
      }
      await expect(stack.dataSource.query(`UPDATE audit_event SET action = 'tampered' WHERE id = $1`, [ids[0]])).rejects.toThrow(/append-only/);
      await expect(stack.dataSource.query(`DELETE FROM audit_event WHERE id = $1`, [ids[0]])).rejects.toThrow(/append-only/);
      expect((await admin.request('GET', `/audit-events/${ids[0]}`)).body.action).toMatch(/\.created$/);
    });

    it('admin writes appear with the admin actor and the request id', async () => {
      const requestId = randomId('audited');
      const created = await admin.request('POST', '/clients', {
        body: { redirect_uris: ['https://wallet.example/cb'], scope: 'openid' },
        headers: { 'x-request-id': requestId },
      });
      expect(created.status).toBe(201);
      const events = await list(`actor=${ADMIN_ACTOR}&action=client.&request_id=${requestId}`);
      expect(events.items).toEqual([
        expect.objectContaining({ action: 'client.created', actor_type: 'admin', target_type: 'oauth_client', target_id: created.body.client_id }),
      ]);
      expect(JSON.stringify(events)).not.toContain(created.body.client_secret);
    });
  });
});
