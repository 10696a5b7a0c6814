import { json } from './support/http';
import { auditActionsFor, devAccounts, errorFields, newRmUser, rmLogin, type RmUser } from './support/resource-users';
import { startStack, type TestStack } from './support/stack';
import { randomId } from './support/test-config';

type Resource = { id: string; name: string; type: string; scopes: string[] };
type Page = { owned: Resource[]; delegated: { owner: { sub: string }; resources: Resource[] }[]; next_cursor: string | null };

/**
 * The delegation rules the story test does not walk through: pending delegations by email and when
 * they bind, declining, validation, pagination, and the `related` claim dropping an owner the upstream
 * does not vouch for. Every user here is new (random sub and email), so the shared database is no issue.
 */
describe('Delegation rules', () => {
  let stack: TestStack;
  let owner: RmUser;
  let bob: RmUser;
  let aliases: Resource[];

  beforeAll(async () => {
    stack = await startStack({ env: { RELATED_CACHE_TTL_SECONDS: '0', USERINFO_CACHE_TTL_SECONDS: '0' } });
    [owner, bob] = await Promise.all([newRmUser(stack, 'owner', { accounts: devAccounts(3) }), newRmUser(stack, 'bob')]);
    aliases = ((await json(await owner.get('/resources'))) as Page).owned.sort((a, b) => a.name.localeCompare(b.name));
    expect(aliases).toHaveLength(3);
  });
  afterAll(() => stack?.close());

  const delegate = (from: RmUser, body: Record<string, unknown>) => from.send('POST', '/delegations', body);

  describe('pending delegations by email', () => {
    it('wait for a verified login: an unverified claim to the same address gets nothing, the verified one binds', async () => {
      const address = `${randomId('pending')}@Pending.Example`;
      const created = await delegate(owner, { aliases: [aliases[0].id], scopes: ['read'], delegate: { email: address } });
      expect(created.status).toBe(201);
      const [pending] = await json(created);
      expect(pending).toMatchObject({ status: 'pending', delegate: { sub: null, email: address.toLowerCase() }, alias: { id: aliases[0].id } });

      // Someone signs up upstream with that address but the upstream does not vouch for it.
      const impostor = await newRmUser(stack, 'impostor', { email: address.toLowerCase(), emailVerified: false });
      expect((await json(await owner.get(`/delegations/${pending.id}`))).status).toBe('pending');
      // A new delegation to the address while the impostor's account exists also waits, rather than going to them.
      const [second] = await json(await delegate(owner, { aliases: [aliases[1].id], scopes: ['read'], delegate: { email: address } }));
      expect(second).toMatchObject({ status: 'pending', delegate: { sub: null } });

      const impostorView: Page = await json(await impostor.get('/resources'));
      expect(impostorView.delegated).toEqual([]);
      expect((await json(await impostor.get('/userinfo'))).related).toEqual([]);
      expect((await impostor.get(`/resources/${aliases[0].id}`)).status).toBe(404);
      expect((await impostor.get(`/resources/${aliases[0].id}/data/`)).status).toBe(404);
      expect((await json(await impostor.get('/delegations?direction=received'))).items).toEqual([]);
      // The impostor cannot even read the pending delegation addressed to "their" email.
      expect((await impostor.get(`/delegations/${pending.id}`)).status).toBe(404);
      expect(await auditActionsFor(stack.dataSource, pending.id)).toEqual(['delegation.created']);

      // The rightful user logs in, their upstream asserting the address as verified (in another case).
      const rightful = await newRmUser(stack, 'rightful', { email: address.toUpperCase(), emailVerified: true });
      for (const id of [pending.id, second.id]) {
        expect(await json(await owner.get(`/delegations/${id}`))).toMatchObject({ status: 'active', delegate: { sub: rightful.sub } });
        expect(await auditActionsFor(stack.dataSource, id)).toEqual(['delegation.created', 'delegation.bound']);
      }
      const bound: Page = await json(await rightful.get('/resources'));
      expect(bound.delegated).toEqual([
        expect.objectContaining({
          owner: expect.objectContaining({ sub: owner.sub }),
          resources: [aliases[0], aliases[1]].map((a) => ({ id: a.id, type: 'account', name: a.name, scopes: ['read'] })).sort((x, y) => x.id.localeCompare(y.id)),
        }),
      ]);
      const related = (await json(await rightful.get('/userinfo'))).related;
      expect(related).toEqual([expect.objectContaining({ sub: owner.sub, status: 'available' })]);
      expect(related[0].resources.map((r: Resource) => r.id).sort()).toEqual([aliases[0].id, aliases[1].id].sort());
      expect((await rightful.get(`/resources/${aliases[0].id}/data/`)).status).toBe(200);
      expect((await json(await rightful.get('/delegations?direction=received'))).items.map((d: { id: string }) => d.id).sort()).toEqual(
        [pending.id, second.id].sort(),
      );

      // Still nothing for the impostor, even after logging in again.
      const again = await rmLogin(stack, impostor.upstream);
      expect(((await json(await again.get('/resources'))) as Page).delegated).toEqual([]);
      expect((await json(await again.get('/userinfo'))).related).toEqual([]);
    });

    it('a pending delegation can be revoked by the owner before anyone binds it', async () => {
      const address = `${randomId('never')}@pending.example`;
      const [pending] = await json(await delegate(owner, { aliases: [aliases[2].id], scopes: ['read'], delegate: { email: address } }));
      expect((await owner.send('DELETE', `/delegations/${pending.id}`)).status).toBe(204);
      const late = await newRmUser(stack, 'late', { email: address });
      expect(((await json(await late.get('/resources'))) as Page).delegated).toEqual([]);
      expect((await json(await owner.get(`/delegations/${pending.id}`))).status).toBe('revoked');
    });
  });

  describe('declining', () => {
    it('the delegate declines: gone for them at once, the owner sees it revoked, audited as declined', async () => {
      const [d] = await json(await delegate(owner, { aliases: [aliases[2].id], scopes: ['read'], delegate: { sub: bob.sub } }));
      expect(((await json(await bob.get('/resources'))) as Page).delegated).toHaveLength(1);
      expect((await bob.get(`/resources/${aliases[2].id}/data/`)).status).toBe(200);

      expect((await bob.send('DELETE', `/delegations/${d.id}`)).status).toBe(204);

      expect(((await json(await bob.get('/resources'))) as Page).delegated).toEqual([]);
      expect((await json(await bob.get('/userinfo'))).related).toEqual([]);
      expect((await bob.get(`/resources/${aliases[2].id}`)).status).toBe(404);
      expect((await bob.get(`/resources/${aliases[2].id}/data/`)).status).toBe(404);
      const seenByOwner = await json(await owner.get(`/delegations/${d.id}`));
      expect(seenByOwner).toMatchObject({ status: 'revoked', delegate: { sub: bob.sub } });
      expect(seenByOwner.revoked_at).toEqual(expect.any(String));
      const rows: { action: string; actor_id: string }[] = await stack.dataSource.query(
        `SELECT action, actor_id FROM audit_event WHERE target_id = $1 ORDER BY occurred_at`,
        [d.id],
      );
      expect(rows).toEqual([
        { action: 'delegation.created', actor_id: `account:${owner.sub}` },
        { action: 'delegation.declined', actor_id: `account:${bob.sub}` },
      ]);

      // Declining again changes nothing; the delegate cannot change it; the owner cannot revive it.
      expect((await bob.send('DELETE', `/delegations/${d.id}`)).status).toBe(204);
      expect((await bob.send('PATCH', `/delegations/${d.id}`, { scopes: ['read'] })).status).toBe(404);
      const revived = await owner.send('PATCH', `/delegations/${d.id}`, { scopes: ['read'] });
      expect(revived.status).toBe(409);
      expect(await auditActionsFor(stack.dataSource, d.id)).toEqual(['delegation.created', 'delegation.declined']);
    });
  });

  describe('validation names the field', () => {
    const valid = () => ({ aliases: [aliases[0].id], scopes: ['read'], delegate: { sub: bob.sub } });

    it.each<[string, string, (v: ReturnType<typeof valid>) => unknown]>([
      ['an unknown property', 'isAdmin', (v) => ({ ...v, isAdmin: true })],
      ['an unknown property of the delegate', 'delegate.role', (v) => ({ ...v, delegate: { ...v.delegate, role: 'owner' } })],
      ['a bad alias uuid', 'aliases', (v) => ({ ...v, aliases: ['not-a-uuid'] })],
      ['no aliases', 'aliases', (v) => ({ ...v, aliases: [] })],
      ['aliases not an array', 'aliases', (v) => ({ ...v, aliases: aliases[0].id })],
      ['empty scopes', 'scopes', (v) => ({ ...v, scopes: [] })],
      ['a scope with a space', 'scopes', (v) => ({ ...v, scopes: ['read write'] })],
      ['expires_at in the past', 'expires_at', (v) => ({ ...v, expires_at: new Date(Date.now() - 60_000).toISOString() })],
      ['expires_at not a date', 'expires_at', (v) => ({ ...v, expires_at: 'tomorrow' })],
      ['both delegate.sub and delegate.email', 'delegate', (v) => ({ ...v, delegate: { sub: bob.sub, email: 'x@example.com' } })],
      ['neither delegate.sub nor delegate.email', 'delegate', (v) => ({ ...v, delegate: {} })],
      ['no delegate at all', 'delegate', ({ delegate: _d, ...rest }) => rest],
      ['a delegate that is not an object', 'delegate', (v) => ({ ...v, delegate: 'bob' })],
      ['a bad delegate.sub', 'delegate.sub', (v) => ({ ...v, delegate: { sub: 'bob' } })],
      ['a bad delegate.email', 'delegate.email', (v) => ({ ...v, delegate: { email: 'not-an-email' } })],
    ])('POST /delegations with %s is a 400 naming %s', async (_label, field, change) => {
      const res = await delegate(owner, change(valid()) as Record<string, unknown>);
      const body = await json(res);
      expect({ status: res.status, fields: errorFields(body) }).toEqual({ status: 400, fields: expect.arrayContaining([field]) });
    });

    it('__proto__ and constructor keys are refused like any unknown property, at any depth, on POST and PATCH', async () => {
      const postRaw = (body: string) =>
        fetch(`${stack.issuer}/delegations`, { method: 'POST', headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' }, body });
      const granted = async () => (await json(await owner.get('/delegations?direction=granted&limit=100'))).items.length;
      const before = await granted();
      const base = `"aliases":["${aliases[0].id}"],"scopes":["read"]`;
      const cases: [string, string][] = [
        [`{${base},"delegate":{"sub":"${bob.sub}"},"__proto__":{"isAdmin":true}}`, '__proto__'],
        [`{${base},"delegate":{"__proto__":{"email":"x@example.com"},"sub":"${bob.sub}"}}`, 'delegate.__proto__'],
        [`{${base},"delegate":{"sub":"${bob.sub}"},"constructor":{"prototype":{"isAdmin":true}}}`, 'constructor'],
      ];
      for (const [body, field] of cases) {
        const res = await postRaw(body);
        expect({ field, status: res.status, fields: errorFields(await json(res)) }).toEqual({ field, status: 400, fields: [field] });
      }
      expect(await granted()).toBe(before);
      expect((Object.prototype as { isAdmin?: unknown }).isAdmin).toBeUndefined();

      const [d] = await json(await delegate(owner, { aliases: [aliases[0].id], scopes: ['read'], delegate: { email: `${randomId('proto')}@x.example` } }));
      const patch = await fetch(`${stack.issuer}/delegations/${d.id}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
        body: '{"scopes":["read"],"__proto__":{"scopes":["read","write"]}}',
      });
      expect(patch.status).toBe(400);
      expect(errorFields(await json(patch))).toEqual(['__proto__']);
    });

    it('a body that is not an object is a 400', async () => {
      for (const body of ['[]', '"x"', '42', 'null']) {
        const res = await fetch(`${stack.issuer}/delegations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${owner.token}`, 'content-type': 'application/json' },
          body,
        });
        expect({ body, status: res.status }).toEqual({ body, status: 400 });
      }
    });

    it('an unknown delegate sub is a 404 (not a 400, not a 201)', async () => {
      const res = await delegate(owner, { ...valid(), delegate: { sub: '00000000-0000-4000-8000-000000000000' } });
      expect(res.status).toBe(404);
    });

    it('PATCH: unknown properties, empty scopes and past expiries are 400s; a revoked delegation is a 409', async () => {
      const [d] = await json(await delegate(owner, { aliases: [aliases[1].id], scopes: ['read', 'write'], delegate: { sub: bob.sub } }));
      const cases: [unknown, string][] = [
        [{ status: 'active' }, 'status'],
        [{ scopes: [] }, 'scopes'],
        [{ expires_at: new Date(Date.now() - 1000).toISOString() }, 'expires_at'],
        [{ expires_at: 'soon' }, 'expires_at'],
        [{ delegate: { sub: owner.sub } }, 'delegate'],
      ];
      for (const [body, field] of cases) {
        const res = await owner.send('PATCH', `/delegations/${d.id}`, body);
        expect({ body, status: res.status, fields: errorFields(await json(res)) }).toEqual({ body, status: 400, fields: expect.arrayContaining([field]) });
      }
      expect((await owner.send('PATCH', `/delegations/not-a-uuid`, { scopes: ['read'] })).status).toBe(400);
      expect((await owner.send('DELETE', `/delegations/${d.id}`)).status).toBe(204);
      const afterRevoke = await owner.send('PATCH', `/delegations/${d.id}`, { scopes: ['read'] });
      expect(afterRevoke.status).toBe(409);
      expect((await json(afterRevoke)).error).toBe('CONFLICT');
      expect((await owner.send('PATCH', `/delegations/${d.id}`, { expires_at: null })).status).toBe(409);
    });

    it('GET /delegations needs a valid direction', async () => {
      for (const query of ['', '?direction=', '?direction=sideways', '?direction=granted&direction=received']) {
        const res = await owner.get(`/delegations${query}`);
        const body = await json(res);
        expect({ query, status: res.status, fields: errorFields(body) }).toEqual({ query, status: 400, fields: expect.arrayContaining(['direction']) });
      }
    });
  });

  describe('pagination', () => {
    it('GET /delegations pages with limit and next_cursor, without duplicates or omissions', async () => {
      const creator = await newRmUser(stack, 'pager', { accounts: devAccounts(2) });
      const [alias] = ((await json(await creator.get('/resources'))) as Page).owned;
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const [d] = await json(await delegate(creator, { aliases: [alias.id], scopes: ['read'], delegate: { email: `${randomId(`page${i}`)}@pages.example` } }));
        ids.push(d.id);
      }
      const all = await json(await creator.get('/delegations?direction=granted&limit=100'));
      expect(all.next_cursor).toBeNull();
      expect(all.items.map((d: { id: string }) => d.id).sort()).toEqual([...ids].sort());

      for (const limit of [1, 2, 3, 6, 7, 8]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res: Response = await creator.get(`/delegations?direction=granted&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          expect(res.status).toBe(200);
          const page = await json(res);
          expect(page.items.length).toBeLessThanOrEqual(limit);
          seen.push(...page.items.map((d: { id: string }) => d.id));
          cursor = page.next_cursor;
          pages += 1;
          expect(pages).toBeLessThan(20);
        } while (cursor);
        expect({ limit, seen: [...seen].sort() }).toEqual({ limit, seen: [...ids].sort() });
        expect(new Set(seen).size).toBe(seen.length);
        expect(pages).toBe(Math.ceil(ids.length / limit));
      }
    });

    it.each(['/delegations?direction=granted&', '/resources?'])('%s rejects bad cursors and limits with 400', async (prefix) => {
      for (const query of ['cursor=not-a-cursor', `cursor=${Buffer.from('{"x":1}').toString('base64url')}`, 'cursor=%00', 'limit=101', 'limit=0', 'limit=-1', 'limit=abc', 'limit=1.5']) {
        const res = await owner.get(`${prefix}${query}`);
        expect({ query, status: res.status }).toEqual({ query, status: 400 });
      }
      expect((await owner.get(`${prefix}limit=100`)).status).toBe(200);
    });

    it('GET /resources pages across owned and delegated, for every page size, without duplicates or omissions', async () => {
      const collector = await newRmUser(stack, 'collector', { accounts: devAccounts(3) });
      const other = await newRmUser(stack, 'other', { accounts: devAccounts(2) });
      const otherAliases = ((await json(await other.get('/resources'))) as Page).owned;
      expect((await delegate(owner, { aliases: aliases.map((a) => a.id), scopes: ['read'], delegate: { sub: collector.sub } })).status).toBe(201);
      expect((await delegate(other, { aliases: otherAliases.map((a) => a.id), scopes: ['read'], delegate: { sub: collector.sub } })).status).toBe(201);

      const flatten = (page: Page) => [...page.owned.map((r) => `owned:${r.id}`), ...page.delegated.flatMap((g) => g.resources.map((r) => `${g.owner.sub}:${r.id}`))];
      const full: Page = await json(await collector.get('/resources?limit=100'));
      expect(full.next_cursor).toBeNull();
      const expected = flatten(full);
      expect(full.owned).toHaveLength(3);
      expect(expected).toHaveLength(3 + aliases.length + otherAliases.length);

      for (const limit of [1, 2, 3, 4, 5, 7, 8, 9]) {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const res: Response = await collector.get(`/resources?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
          expect(res.status).toBe(200);
          const page: Page = await json(res);
          const items = flatten(page);
          expect(items.length).toBeLessThanOrEqual(limit);
          seen.push(...items);
          cursor = page.next_cursor;
          pages += 1;
          expect(pages).toBeLessThan(30);
        } while (cursor);
        expect({ limit, seen: [...seen].sort() }).toEqual({ limit, seen: [...expected].sort() });
        expect(new Set(seen).size).toBe(seen.length);
      }

      // Filtered by owner, paged as well.
      const byOwner: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Page = await json(await collector.get(`/resources?owner=${owner.sub}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`));
        expect(page.owned).toEqual([]);
        byOwner.push(...flatten(page));
        cursor = page.next_cursor;
      } while (cursor);
      expect(byOwner.sort()).toEqual(aliases.map((a) => `${owner.sub}:${a.id}`).sort());
    });
  });

  describe('the related claim', () => {
    it('drops an owner whose upstream userinfo answers for a different sub, audits it, and still answers 200', async () => {
      const viewer = await newRmUser(stack, 'viewer');
      const honest = await newRmUser(stack, 'honest', { accounts: devAccounts(1) });
      const shifty = await newRmUser(stack, 'shifty', { accounts: devAccounts(1) });
      for (const from of [honest, shifty]) {
        const [alias] = ((await json(await from.get('/resources'))) as Page).owned;
        expect((await delegate(from, { aliases: [alias.id], scopes: ['read'], delegate: { sub: viewer.sub } })).status).toBe(201);
      }
      const before = (await json(await viewer.get('/userinfo'))).related as { sub: string }[];
      expect(before.map((e) => e.sub).sort()).toEqual([honest.sub, shifty.sub].sort());

      // The stored upstream subject no longer matches what the upstream says for shifty's token.
      await stack.dataSource.query(`UPDATE account SET sub = sub || '-elsewhere' WHERE id = $1`, [shifty.sub]);
      const res = await viewer.get('/userinfo');
      expect(res.status).toBe(200);
      const related = (await json(res)).related as { sub: string; status: string }[];
      expect(related).toEqual([expect.objectContaining({ sub: honest.sub, status: 'available' })]);
      const events: { actor_type: string; outcome: string; details: { reason: string; caller: string } }[] = await stack.dataSource.query(
        `SELECT actor_type, outcome, details FROM audit_event WHERE action = 'related.owner_dropped' AND target_id = $1`,
        [shifty.sub],
      );
      expect(events.length).toBeGreaterThanOrEqual(1);
      expect(events[0]).toMatchObject({ actor_type: 'system', outcome: 'failure', details: { reason: 'upstream_subject_mismatch', caller: viewer.sub } });
    });
  });
});
