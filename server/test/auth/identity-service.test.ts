/**
 * People, memberships and sign-in in process: the IdentityService over the database itself
 * (PGlite, and PostgreSQL when TEST_DATABASE_URL is set) with the in-process session store, and
 * the sign-in library's routes served by a bare HTTP server of the test (no audit server). Pins
 * the input checks and their messages, how a session resolves to an organization and role, the
 * session cookie, disabled users, revocation, and member management per organization.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { eq } from 'drizzle-orm';
import { IdentityService, ORGANIZATION_HEADER, type IdentityOptions } from '../../src/auth/identity';
import { createOrganization } from '../../src/auth/organizations';
import { memorySessionStore } from '../../src/auth/session-store';
import { memberships, userSessions, users } from '../../src/db/schema';
import { createLogger } from '../../src/observability/logger';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRUSTED = 'https://app.example.org';
const PASSWORD = 'correct horse battery';

/** Log lines the service wrote, parsed. */
function capturedLogger(): { logger: IdentityOptions['logger']; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('debug', sink), lines };
}

/** The identity service's /auth routes on a port of their own. */
async function serve(identity: IdentityService): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    identity.handle(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        // fetch keeps connections alive; they would hold the server (and the test process) open.
        server.closeAllConnections();
      }),
  };
}

describeEachBackend('identity service on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let identity: IdentityService;
  let log: ReturnType<typeof capturedLogger>;
  let site: { url: string; close: () => Promise<void> };
  let org: string;
  let org2: string;

  const optionsFor = (o: Partial<IdentityOptions> = {}): IdentityOptions => ({
    secret: 'identity-test-secret-0123456789abcdefghijklmnop',
    baseURL: undefined,
    trustedOrigins: [TRUSTED],
    secureCookies: true,
    signUpEnabled: false,
    sessionTtlSeconds: 7_200,
    store: memorySessionStore(),
    logger: log.logger,
    ...o,
  });

  const post = (url: string, path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  async function signIn(email: string, password: string, url = site.url): Promise<{ status: number; body: string; setCookie: string | undefined }> {
    const res = await post(url, '/auth/sign-in/email', { email, password });
    const setCookie = res.headers.getSetCookie().find((c) => /^(__Secure-)?audit\.session_token=/.test(c));
    return { status: res.status, body: await res.text(), setCookie };
  }
  const cookieOf = (setCookie: string | undefined) => setCookie!.split(';')[0]!;

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend);
    log = capturedLogger();
    identity = new IdentityService(idb.database, optionsFor());
    site = await serve(identity);
    org = (await createOrganization(idb.database, 'first')).id;
    org2 = (await createOrganization(idb.database, 'second')).id;
  }, 120_000);
  afterAll(async () => {
    await site?.close();
    await idb?.close();
  });

  describe('the session cookie', () => {
    it('is named with the __Secure- prefix only when cookies are secure', () => {
      // Both built here, in the test: a name computed in beforeAll is not what a mutation run checks.
      expect(new IdentityService(idb.database, optionsFor({ secureCookies: true })).cookieName).toBe('__Secure-audit.session_token');
      expect(new IdentityService(idb.database, optionsFor({ secureCookies: false })).cookieName).toBe('audit.session_token');
      expect(identity.cookieName).toBe('__Secure-audit.session_token');
    });

    it('is recognised in a cookie header by its exact name', () => {
      expect(identity.hasSessionCookie(undefined)).toBe(false);
      expect(identity.hasSessionCookie('')).toBe(false);
      expect(identity.hasSessionCookie('theme=dark; audit.session_token=abc')).toBe(false);
      expect(identity.hasSessionCookie('theme=dark; __Secure-audit.session_token=abc')).toBe(true);
      expect(identity.hasSessionCookie('__Secure-audit.session_tokenx=abc')).toBe(false);
    });
  });

  describe('creating users', () => {
    it('stores a lower-cased, trimmed address and a trimmed name, and lists the user without secrets', async () => {
      const u = await identity.createUser({ email: '  Alice@Example.ORG ', name: '  Alice  ', password: PASSWORD });
      expect(u).toEqual({ id: u.id, email: 'alice@example.org', name: 'Alice', createdAt: u.createdAt, disabledAt: null });
      expect(u.createdAt).toMatch(ISO);
      // Ids are random UUIDs of ours, and the address counts as unverified (no e-mail flows).
      expect(u.id).toMatch(UUID);
      const row = (await idb.database.db.select().from(users).where(eq(users.id, u.id)))[0]!;
      expect(row.emailVerified).toBe(false);
      expect(await identity.findUser(u.id)).toEqual(u);
      expect(await identity.findUser(' ALICE@example.org ')).toEqual(u);
    });

    it.each([
      ['without @', 'alice.example.org'],
      ['with two @', 'a@b@example.org'],
      ['with a space', 'al ice@example.org'],
      ['with nothing before @', '@example.org'],
      ['with nothing after @', 'alice@'],
      ['of 2 characters', 'a@'],
      ['longer than 254 characters', `${'a'.repeat(243)}@example.org`],
    ])('refuses an address %s', async (_what, email) => {
      await expect(identity.createUser({ email, name: 'X', password: PASSWORD })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
        message: 'email must be an e-mail address',
        issues: [{ path: 'email', message: 'invalid e-mail address' }],
      });
    });

    it('accepts addresses of 3 and of 254 characters', async () => {
      expect((await identity.createUser({ email: 'a@b', name: 'Short', password: PASSWORD })).email).toBe('a@b');
      const long = `${'b'.repeat(242)}@example.org`;
      expect(long).toHaveLength(254);
      expect((await identity.createUser({ email: long, name: 'Long', password: PASSWORD })).email).toBe(long);
    });

    it.each([11, 129])('refuses a password of %i characters', async (n) => {
      await expect(identity.createUser({ email: `pw${n}@example.org`, name: 'P', password: 'p'.repeat(n) })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
        message: 'password must have 12–128 characters',
        issues: [{ path: 'password', message: '12–128 characters' }],
      });
      await expect(identity.findUser(`pw${n}@example.org`)).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such user' });
    });

    it.each([12, 128])('accepts a password of %i characters, and it signs in', async (n) => {
      await identity.createUser({ email: `ok${n}@example.org`, name: 'P', password: 'q'.repeat(n) });
      expect((await signIn(`ok${n}@example.org`, 'q'.repeat(n))).status).toBe(200);
    });

    it.each([
      ['empty', '   '],
      ['longer than 200 characters', 'n'.repeat(201)],
    ])('refuses a name that is %s', async (_what, name) => {
      await expect(identity.createUser({ email: 'named@example.org', name, password: PASSWORD })).rejects.toMatchObject({
        code: 'BAD_REQUEST',
        message: 'name must have 1–200 characters',
        issues: [{ path: 'name', message: '1–200 characters' }],
      });
    });

    it('accepts a name of 200 characters', async () => {
      expect((await identity.createUser({ email: 'n200@example.org', name: 'n'.repeat(200), password: PASSWORD })).name).toHaveLength(200);
    });

    it('refuses a second user with the same address in another case', async () => {
      await identity.createUser({ email: 'dup@example.org', name: 'Dup', password: PASSWORD });
      await expect(identity.createUser({ email: 'DUP@example.org', name: 'Dup 2', password: PASSWORD })).rejects.toMatchObject({
        code: 'CONFLICT',
        message: 'a user with this e-mail address exists',
      });
    });

    it('answers 404 for an unknown id or address', async () => {
      await expect(identity.findUser('nobody@example.org')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such user' });
      await expect(identity.findUser('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such user' });
    });

    it('lists every user oldest first', async () => {
      const listed = await identity.listUsers();
      const sorted = [...listed].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
      expect(listed).toEqual(sorted);
      expect(listed[0]!.email).toBe('alice@example.org');
      expect(listed.length).toBeGreaterThan(5);
    });
  });

  describe('signing in', () => {
    beforeAll(async () => {
      await identity.createUser({ email: 'bob@example.org', name: 'Bob', password: PASSWORD });
      await identity.addMember(org, 'bob@example.org', 'auditor');
    });

    it('sets an HttpOnly, Secure, SameSite=Strict cookie for the whole site, valid for the session TTL', async () => {
      const res = await post(site.url, '/auth/sign-in/email', { email: 'Bob@Example.org', password: PASSWORD });
      expect(res.status).toBe(200);
      // One cookie only: no cached copy of the session beside it (the cookie cache is off).
      expect(res.headers.getSetCookie().map((c) => c.split('=')[0])).toEqual(['__Secure-audit.session_token']);
      const r = { setCookie: res.headers.getSetCookie()[0] };
      const attrs = r.setCookie!.split(';').map((a) => a.trim().toLowerCase());
      expect(attrs[0]).toMatch(/^__secure-audit\.session_token=/);
      expect(attrs).toEqual(expect.arrayContaining(['httponly', 'secure', 'samesite=strict', 'path=/', 'max-age=7200']));
    });

    it('resolves the cookie to the user and session, kept in the session store rather than the database', async () => {
      const r = await signIn('bob@example.org', PASSWORD);
      const s = await identity.sessionOf({ cookie: cookieOf(r.setCookie) });
      const bob = await identity.findUser('bob@example.org');
      expect(s).toEqual({ userId: bob.id, sessionId: s!.sessionId, email: 'bob@example.org' });
      expect(s!.sessionId.length).toBeGreaterThan(0);
      expect(await idb.database.db.select().from(userSessions)).toEqual([]);
      expect(await identity.sessionOf({})).toBeNull();
      expect(await identity.sessionOf({ cookie: '__Secure-audit.session_token=forged.value' })).toBeNull();
    });

    it('never extends a session while resolving a request’s cookie: the stored expiry stays that of the cookie', async () => {
      // A session older than the library's refresh age (an hour here) would be extended on lookup,
      // but a request cannot carry the renewed cookie back: the store and the cookie would disagree.
      const sessions = memorySessionStore();
      const stored = new IdentityService(idb.database, optionsFor({ store: sessions }));
      const own = await serve(stored);
      try {
        const r = await signIn('bob@example.org', PASSWORD, own.url);
        const token = decodeURIComponent(cookieOf(r.setCookie).split('=')[1]!).split('.')[0]!;
        const record = JSON.parse((await sessions.get(token))!) as { session: { expiresAt: string } };
        // Make the session look 3,601 s old: 7,200 s of life, 3,599 s left.
        const aged = new Date(Date.now() + 3_599_000).toISOString();
        await sessions.set(token, JSON.stringify({ ...record, session: { ...record.session, expiresAt: aged } }), 3_599);
        expect(await stored.sessionOf({ cookie: cookieOf(r.setCookie) })).toMatchObject({ email: 'bob@example.org' });
        const after = JSON.parse((await sessions.get(token))!) as { session: { expiresAt: string } };
        expect(after.session.expiresAt).toBe(aged);
      } finally {
        await own.close();
      }
    });

    it('answers a wrong password, an unknown account and a disabled account identically', async () => {
      await identity.createUser({ email: 'dora@example.org', name: 'Dora', password: PASSWORD });
      const dora = await signIn('dora@example.org', PASSWORD);
      expect(dora.status).toBe(200);
      await identity.disableUser('dora@example.org');
      const wrong = await signIn('bob@example.org', 'not the password!');
      const unknown = await signIn('nobody@example.org', PASSWORD);
      const disabled = await signIn('DORA@example.org', PASSWORD);
      expect(wrong.status).toBe(401);
      expect([unknown.status, unknown.body]).toEqual([wrong.status, wrong.body]);
      expect([disabled.status, disabled.body]).toEqual([wrong.status, wrong.body]);
      expect(disabled.setCookie).toBeUndefined();
      // Disabling also ended the session Dora had.
      expect(await identity.sessionOf({ cookie: cookieOf(dora.setCookie) })).toBeNull();
      // The library's warnings reach the server's log as messages only, never with the address.
      const auth = log.lines.filter((l) => l.component === 'auth');
      expect(auth).toEqual(expect.arrayContaining([expect.objectContaining({ level: 40, msg: 'Invalid password' }), expect.objectContaining({ level: 40, msg: 'User not found' })]));
      expect(JSON.stringify(log.lines)).not.toContain('@example.org');
      // Without a password the library refuses the request itself, for a disabled account as for any.
      const bare = async (email: string) => {
        const res = await post(site.url, '/auth/sign-in/email', { email });
        return [res.status, await res.text()];
      };
      expect(await bare('dora@example.org')).toEqual(await bare('nobody@example.org'));
    });

    it('refuses self sign-up unless enabled; enabled, it holds to the password bounds', async () => {
      const off = await post(site.url, '/auth/sign-up/email', { email: 'mallory@example.org', password: PASSWORD, name: 'M' });
      expect(off.status).toBe(400);
      await expect(identity.findUser('mallory@example.org')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      const open = new IdentityService(idb.database, optionsFor({ signUpEnabled: true }));
      const openSite = await serve(open);
      try {
        expect((await post(openSite.url, '/auth/sign-up/email', { email: 'short@example.org', password: 'p'.repeat(11), name: 'S' })).status).toBe(400);
        expect((await post(openSite.url, '/auth/sign-up/email', { email: 'long@example.org', password: 'p'.repeat(129), name: 'L' })).status).toBe(400);
        // A field of ours cannot be set by signing up.
        const forged = await post(openSite.url, '/auth/sign-up/email', { email: 'self@example.org', password: 'p'.repeat(12), name: 'Self', disabledAt: '2020-01-01T00:00:00.000Z' });
        expect([forged.status, await forged.json()]).toEqual([400, { message: 'disabledAt is not allowed to be set', code: 'FIELD_NOT_ALLOWED' }]);
        const self = await post(openSite.url, '/auth/sign-up/email', { email: 'self@example.org', password: 'p'.repeat(12), name: 'Self' });
        expect(self.status).toBe(200);
        expect(await identity.findUser('self@example.org')).toMatchObject({ name: 'Self', disabledAt: null });
        // Signing up with a disabled user's address is the library's "exists" answer, not a sign-in failure.
        await identity.createUser({ email: 'frozen@example.org', name: 'Frozen', password: PASSWORD });
        await identity.disableUser('frozen@example.org');
        const taken = await post(openSite.url, '/auth/sign-up/email', { email: 'frozen@example.org', password: PASSWORD, name: 'F' });
        expect(taken.status).toBe(422);
        // The library's info line about it names the address: only warnings and errors are logged.
        expect(JSON.stringify(log.lines)).not.toContain('frozen@example.org');
      } finally {
        await openSite.close();
      }
    });

    it('warns in the log that the base URL is taken from requests only when none is configured', async () => {
      const withBase = capturedLogger();
      const based = new IdentityService(idb.database, optionsFor({ baseURL: 'https://audit.example.org', logger: withBase.logger }));
      const basedSite = await serve(based);
      try {
        expect((await fetch(`${basedSite.url}/auth/get-session`)).status).toBe(200);
      } finally {
        await basedSite.close();
      }
      expect(withBase.lines.filter((l) => String(l.msg).includes('Base URL is not set'))).toEqual([]);
      expect(log.lines.filter((l) => l.level === 40 && String(l.msg).includes('Base URL is not set')).length).toBeGreaterThan(0);
    });

    it('leaves rate limits to the server: the library does not answer 429 to repeated failures from one address', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await post(site.url, '/auth/sign-in/email', { email: 'bob@example.org', password: `wrong password ${i}` }, { 'x-forwarded-for': '203.0.113.9' });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
    });

    it('ends every session of a user at once when asked', async () => {
      const a = await signIn('bob@example.org', PASSWORD);
      const b = await signIn('bob@example.org', PASSWORD);
      expect(await identity.sessionOf({ cookie: cookieOf(a.setCookie) })).not.toBeNull();
      await identity.revokeUserSessions((await identity.findUser('bob@example.org')).id);
      expect(await identity.sessionOf({ cookie: cookieOf(a.setCookie) })).toBeNull();
      expect(await identity.sessionOf({ cookie: cookieOf(b.setCookie) })).toBeNull();
      expect((await signIn('bob@example.org', PASSWORD)).status).toBe(200);
    });

    it('keeps the first disabling time when a user is disabled twice', async () => {
      await identity.createUser({ email: 'eve@example.org', name: 'Eve', password: PASSWORD });
      const first = await identity.disableUser('eve@example.org');
      expect(first.disabledAt).toMatch(ISO);
      const second = await identity.disableUser('EVE@example.org');
      expect(second).toEqual(first);
    });
  });

  describe('organizations of a session', () => {
    const session = (userId: string) => ({ userId, sessionId: 'session-1', email: 'x@example.org' });

    it('resolves a member of one organization to it, with the membership’s role', async () => {
      const u = await identity.createUser({ email: 'one@example.org', name: 'One', password: PASSWORD });
      await identity.addMember(org, 'one@example.org', 'developer');
      const expected = { organizationId: org, role: 'developer', keyId: `user:${u.id}`, kind: 'session', userId: u.id, sessionId: 'session-1', subject: 'x@example.org' };
      expect(await identity.principalOf(session(u.id), undefined)).toEqual(expected);
      expect(await identity.principalOf(session(u.id), org)).toEqual(expected);
      await expect(identity.principalOf(session(u.id), org2)).rejects.toMatchObject({ code: 'FORBIDDEN', message: `not a member of organization ${org2}` });
    });

    it('asks a member of several organizations to name one, and resolves the one named', async () => {
      const u = await identity.createUser({ email: 'two@example.org', name: 'Two', password: PASSWORD });
      await identity.addMember(org, u.id, 'auditor');
      await identity.addMember(org2, u.id, 'compliance_officer');
      await expect(identity.principalOf(session(u.id), undefined)).rejects.toMatchObject({
        code: 'BAD_REQUEST',
        message: `this user belongs to 2 organizations: name one in the ${ORGANIZATION_HEADER} header`,
        issues: [{ path: 'x-organization-id', message: 'required for a member of several organizations' }],
      });
      expect(await identity.principalOf(session(u.id), org2)).toMatchObject({ organizationId: org2, role: 'compliance_officer' });
      expect(await identity.principalOf(session(u.id), org)).toMatchObject({ organizationId: org, role: 'auditor' });
    });

    it('refuses a user of no organization, and a disabled member', async () => {
      const none = await identity.createUser({ email: 'none@example.org', name: 'None', password: PASSWORD });
      await expect(identity.principalOf(session(none.id), undefined)).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'not a member of any organization' });
      const off = await identity.createUser({ email: 'off@example.org', name: 'Off', password: PASSWORD });
      await identity.addMember(org, off.id, 'admin');
      await identity.disableUser(off.id);
      await expect(identity.principalOf(session(off.id), undefined)).rejects.toMatchObject({ code: 'FORBIDDEN', message: 'not a member of any organization' });
      await expect(identity.principalOf(session(off.id), org)).rejects.toMatchObject({ code: 'FORBIDDEN', message: `not a member of organization ${org}` });
    });
  });

  describe('members', () => {
    let o: string;
    beforeAll(async () => {
      o = (await createOrganization(idb.database, 'members')).id;
      await identity.createUser({ email: 'm1@example.org', name: 'Member One', password: PASSWORD });
      await identity.createUser({ email: 'm2@example.org', name: 'Member Two', password: PASSWORD });
    });

    it('adds a member, changes the role on a second add, and lists members oldest first', async () => {
      const m1 = await identity.addMember(o, 'M1@example.org', 'member');
      const u1 = await identity.findUser('m1@example.org');
      expect(m1).toEqual({ userId: u1.id, email: 'm1@example.org', name: 'Member One', role: 'member', createdAt: m1.createdAt });
      expect(m1.createdAt).toMatch(ISO);
      const m2 = await identity.addMember(o, 'm2@example.org', 'producer');
      const changed = await identity.addMember(o, 'm1@example.org', 'admin');
      expect(changed).toEqual({ ...m1, role: 'admin' });
      expect(await identity.listMembers(o)).toEqual([changed, m2]);
      expect(await identity.roleOf(o, 'm1@example.org')).toBe('admin');
    });

    it('lists members with the same joining time by user id', async () => {
      const at = new Date('2026-03-04T05:06:07.089Z');
      await idb.database.db.update(memberships).set({ createdAt: at }).where(eq(memberships.organizationId, o));
      const listed = await identity.listMembers(o);
      expect(listed.map((m) => m.userId)).toEqual(listed.map((m) => m.userId).sort());
      expect(listed.every((m) => m.createdAt === at.toISOString())).toBe(true);
    });

    it('refuses an unknown organization or user', async () => {
      const unknown = '00000000-0000-4000-8000-000000000000';
      await expect(identity.addMember(unknown, 'm1@example.org', 'member')).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no organization ${unknown}` });
      await expect(identity.addMember(o, 'ghost@example.org', 'member')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such user' });
    });

    it('answers null for the role of a non-member and lists a user’s organizations by address', async () => {
      expect(await identity.roleOf(org2, 'm1@example.org')).toBeNull();
      await identity.addMember(org2, 'm1@example.org', 'auditor');
      expect((await identity.organizationsOf(' M1@Example.org ')).sort()).toEqual([o, org2].sort());
      expect(await identity.organizationsOf('ghost@example.org')).toEqual([]);
    });

    it('removes a member of one organization only, and answers 404 the second time', async () => {
      const u2 = await identity.findUser('m2@example.org');
      await identity.addMember(org2, 'm2@example.org', 'member');
      expect(await identity.removeMember(o, 'm2@example.org')).toEqual({ userId: u2.id });
      expect(await identity.roleOf(o, 'm2@example.org')).toBeNull();
      expect(await identity.roleOf(org2, 'm2@example.org')).toBe('member');
      await expect(identity.removeMember(o, 'm2@example.org')).rejects.toMatchObject({ code: 'NOT_FOUND', message: 'no such member' });
    });
  });
});
