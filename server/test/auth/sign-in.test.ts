/**
 * People signing in: better-auth at /auth (sign-up off, sign-in, session, sign-out, password
 * change), session cookies (HttpOnly, Secure, SameSite=Strict) resolving to exactly one
 * organization on tRPC and REST, the CSRF origin check, revocation per session and per user, and
 * sign-in failures that say nothing about which accounts exist.
 */
import { createOrganization } from '../../src/auth/organizations';
import { backends } from '../helpers/backends';
import { signIn, TEST_AUTH_ENV, type Cookie } from '../helpers/people';
import { startTestServer, type TestServer } from '../helpers/server';

const ORIGIN = 'https://app.example.org';

describe.each(backends())('sign-in on %s', (backend) => {
  let srv: TestServer;
  let otherOrg: string;
  beforeAll(async () => {
    srv = await startTestServer(backend, { ...TEST_AUTH_ENV, CORS_ORIGINS: ORIGIN });
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'alice@example.org', name: 'Alice', password: 'correct horse battery' });
    await identity.addMember(srv.organizationId, 'alice@example.org', 'admin');
    await identity.createUser({ email: 'bob@example.org', name: 'Bob', password: 'bob password 1234' });
    await identity.addMember(srv.organizationId, 'bob@example.org', 'auditor');
    otherOrg = (await createOrganization(srv.runtime.database, 'other')).id;
    await identity.createUser({ email: 'carol@example.org', name: 'Carol', password: 'carol password 1234' });
    await identity.addMember(srv.organizationId, 'carol@example.org', 'auditor');
    await identity.addMember(otherOrg, 'carol@example.org', 'developer');
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  it('refuses self sign-up by default', async () => {
    const res = await post('/auth/sign-up/email', { email: 'mallory@example.org', password: 'mallory password 1', name: 'M' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    await expect(srv.runtime.services.identity!.findUser('mallory@example.org')).rejects.toThrow('no such user');
  });

  it('sets an HttpOnly, Secure, SameSite=Strict session cookie and resolves the member on tRPC and REST', async () => {
    const res = await post('/auth/sign-in/email', { email: 'Bob@Example.org', password: 'bob password 1234' });
    expect(res.status).toBe(200);
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('__Secure-audit.session_token='))!;
    expect(setCookie).toMatch(/; HttpOnly/i);
    expect(setCookie).toMatch(/; Secure/i);
    expect(setCookie).toMatch(/; SameSite=Strict/i);
    const cookie = setCookie.split(';')[0]!;
    const me = await fetch(`${srv.url}/trpc/account.me`, { headers: { cookie } });
    expect(((await me.json()) as any).result.data).toMatchObject({ organizationId: srv.organizationId, role: 'auditor', credential: 'session', subject: 'bob@example.org' });
    expect((await fetch(`${srv.url}/api/v1/events?limit=1`, { headers: { cookie } })).status).toBe(200);
    // An auditor's session is refused what auditors are refused.
    expect((await fetch(`${srv.url}/api/v1/api-keys`, { headers: { cookie } })).status).toBe(403);
    const session = await fetch(`${srv.url}/auth/get-session`, { headers: { cookie } });
    expect(((await session.json()) as any).user.email).toBe('bob@example.org');
  });

  it('answers a wrong password, an unknown account and a disabled account identically', async () => {
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'dave@example.org', name: 'Dave', password: 'dave password 1234' });
    await identity.disableUser('dave@example.org');
    const answers = [];
    for (const [email, password] of [
      ['alice@example.org', 'wrong password 000'],
      ['nobody@example.org', 'wrong password 000'],
      ['dave@example.org', 'dave password 1234'],
    ] as const) {
      const res = await post('/auth/sign-in/email', { email, password });
      answers.push({ status: res.status, body: await res.json(), cookie: res.headers.getSetCookie().length });
    }
    expect(answers[0]).toEqual({ status: 401, body: { code: 'INVALID_EMAIL_OR_PASSWORD', message: 'Invalid email or password' }, cookie: 0 });
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });

  it('refuses a cookie-authenticated mutation without an allowed Origin (CSRF), accepts it with one', async () => {
    const cookie = await signIn(srv.url, 'alice@example.org', 'correct horse battery');
    const body = { name: 'from-browser', role: 'producer' };
    const none = await srv.request('POST', '/api/v1/api-keys', body, null, { cookie });
    expect(none.status).toBe(403);
    expect(none.body.error.message).toMatch(/origin/i);
    const evil = await srv.request('POST', '/api/v1/api-keys', body, null, { cookie, origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    const trpcEvil = await fetch(`${srv.url}/trpc/apiKeys.create`, { method: 'POST', headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(trpcEvil.status).toBe(403);
    const ok = await srv.request('POST', '/api/v1/api-keys', body, null, { cookie, origin: ORIGIN });
    expect(ok.status).toBe(201);
    // Reads need no Origin; API keys need none either (no ambient credential to forge).
    expect((await srv.request('GET', '/api/v1/api-keys', undefined, null, { cookie })).status).toBe(200);
  });

  it('ends one session on sign-out while the user’s other session lives on; disabling ends them all', async () => {
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'erin@example.org', name: 'Erin', password: 'erin password 1234' });
    await identity.addMember(srv.organizationId, 'erin@example.org', 'member');
    const a: Cookie = await signIn(srv.url, 'erin@example.org', 'erin password 1234');
    const b: Cookie = await signIn(srv.url, 'erin@example.org', 'erin password 1234');
    const me = (cookie: string) => fetch(`${srv.url}/trpc/account.me`, { headers: { cookie } }).then((r) => r.status);
    expect([await me(a), await me(b)]).toEqual([200, 200]);
    expect((await post('/auth/sign-out', {}, { cookie: a, origin: ORIGIN })).status).toBe(200);
    expect([await me(a), await me(b)]).toEqual([401, 200]);
    await identity.disableUser('erin@example.org');
    expect(await me(b)).toBe(401);
  });

  it('changes a password: the old one stops working, the new one signs in', async () => {
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'frank@example.org', name: 'Frank', password: 'frank password 1234' });
    await identity.addMember(srv.organizationId, 'frank@example.org', 'member');
    const cookie = await signIn(srv.url, 'frank@example.org', 'frank password 1234');
    const res = await post('/auth/change-password', { currentPassword: 'frank password 1234', newPassword: 'frank new password 99', revokeOtherSessions: true }, { cookie, origin: ORIGIN });
    expect(res.status).toBe(200);
    expect((await post('/auth/sign-in/email', { email: 'frank@example.org', password: 'frank password 1234' })).status).toBe(401);
    expect((await post('/auth/sign-in/email', { email: 'frank@example.org', password: 'frank new password 99' })).status).toBe(200);
  });

  it('resolves a member of two organizations to exactly the one named by x-organization-id', async () => {
    const cookie = await signIn(srv.url, 'carol@example.org', 'carol password 1234');
    const me = (headers: Record<string, string>) => fetch(`${srv.url}/trpc/account.me`, { headers: { cookie, ...headers } });
    const ambiguous = await me({});
    expect(ambiguous.status).toBe(400);
    expect(JSON.stringify(await ambiguous.json())).toContain('x-organization-id');
    const other = await me({ 'x-organization-id': otherOrg });
    expect(((await other.json()) as any).result.data).toMatchObject({ organizationId: otherOrg, role: 'developer' });
    const first = await me({ 'x-organization-id': srv.organizationId });
    expect(((await first.json()) as any).result.data).toMatchObject({ organizationId: srv.organizationId, role: 'auditor' });
    expect((await me({ 'x-organization-id': '00000000-0000-4000-8000-000000000000' })).status).toBe(403);
  });

  it('answers 401 to a forged or garbage session cookie', async () => {
    for (const cookie of ['__Secure-audit.session_token=forged.value', '__Secure-audit.session_token=' + 'x'.repeat(5000)]) {
      expect((await fetch(`${srv.url}/trpc/account.me`, { headers: { cookie } })).status).toBe(401);
    }
  });
});
