/**
 * Two server processes' worth of runtimes on one PostgreSQL database and one Redis: a session
 * signed in on one works on the other, and signing out, revoking or disabling on one ends it on
 * both at once; failed sign-ins are counted per client address and per account across both (the
 * sixth within the window is 429 with Retry-After, for known and unknown accounts alike). The
 * embedded default counts in process.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import { signIn, TEST_AUTH_ENV } from '../helpers/people';
import { startTestServer, type TestServer } from '../helpers/server';

const ORIGIN = 'https://app.example.org';
const LIMITS = { ...TEST_AUTH_ENV, CORS_ORIGINS: ORIGIN, AUTH_LOGIN_MAX_ATTEMPTS: '5', AUTH_LOGIN_WINDOW_SECONDS: '900' };

/** A client address no other test run uses (the limits live in the shared Redis). */
const someAddress = () => `2001:db8::${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}:${randomBytes(2).toString('hex')}`;
const someEmail = () => `u-${randomBytes(6).toString('hex')}@example.org`;

async function attempt(url: string, email: string, password: string, address: string): Promise<{ status: number; retryAfter: string | null; body: unknown }> {
  const res = await fetch(`${url}/auth/sign-in/email`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
    body: JSON.stringify({ email, password }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

const both = Boolean(process.env.TEST_DATABASE_URL && process.env.TEST_REDIS_URL);

(both ? describe : describe.skip)('two replicas sharing PostgreSQL and Redis', () => {
  let a: TestServer;
  let b: Runtime;
  beforeAll(async () => {
    a = await startTestServer('postgres', LIMITS);
    b = await startRuntime(loadConfig(a.env), createLogger('silent'));
    const identity = a.runtime.services.identity!;
    await identity.createUser({ email: 'kim@example.org', name: 'Kim', password: 'kim password 12345' });
    await identity.addMember(a.organizationId, 'kim@example.org', 'auditor');
  }, 180_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const me = (url: string, cookie: string) => fetch(`${url}/trpc/account.me`, { headers: { cookie } }).then((r) => r.status);

  it('a session signed in on one replica works on the other; signing out on one ends it on both', async () => {
    const cookie = await signIn(a.url, 'kim@example.org', 'kim password 12345', { 'x-forwarded-for': someAddress() });
    expect([await me(a.url, cookie), await me(b.url, cookie)]).toEqual([200, 200]);
    const out = await fetch(`${b.url}/auth/sign-out`, { method: 'POST', headers: { cookie, origin: ORIGIN, 'content-type': 'application/json' }, body: '{}' });
    expect(out.status).toBe(200);
    expect([await me(a.url, cookie), await me(b.url, cookie)]).toEqual([401, 401]);
  });

  it('revoking a user’s sessions or disabling the user on one replica ends them on the other at once', async () => {
    const first = await signIn(a.url, 'kim@example.org', 'kim password 12345', { 'x-forwarded-for': someAddress() });
    expect(await me(b.url, first)).toBe(200);
    const user = await b.services.identity!.findUser('kim@example.org');
    await b.services.identity!.revokeUserSessions(user.id);
    expect(await me(a.url, first)).toBe(401);
    const second = await signIn(b.url, 'kim@example.org', 'kim password 12345', { 'x-forwarded-for': someAddress() });
    expect(await me(a.url, second)).toBe(200);
    await b.services.identity!.disableUser('kim@example.org');
    expect(await me(a.url, second)).toBe(401);
  });

  it('counts failed sign-ins per client address across replicas: the sixth is 429 with Retry-After', async () => {
    const address = someAddress();
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await attempt(i % 2 ? b.url : a.url, someEmail(), 'wrong password 123', address)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const sixth = await attempt(a.url, someEmail(), 'wrong password 123', address);
    expect(sixth.status).toBe(429);
    expect(Number(sixth.retryAfter)).toBeGreaterThan(0);
    expect(Number(sixth.retryAfter)).toBeLessThanOrEqual(900);
  });

  it('counts failed sign-ins per account across addresses and replicas, alike for known and unknown accounts', async () => {
    const identity = a.runtime.services.identity!;
    const known = someEmail();
    await identity.createUser({ email: known, name: 'Known', password: 'known password 123' });
    const unknown = someEmail();
    const answers: Record<string, Array<{ status: number; body: unknown }>> = {};
    for (const email of [known, unknown]) {
      answers[email] = [];
      for (let i = 0; i < 6; i++) {
        const r = await attempt(i % 2 ? b.url : a.url, email, 'wrong password 123', someAddress());
        answers[email].push({ status: r.status, body: r.status === 429 ? 'limited' : r.body });
      }
    }
    expect(answers[known]!.map((x) => x.status)).toEqual([401, 401, 401, 401, 401, 429]);
    expect(answers[unknown]).toEqual(answers[known]);
    // Even the right password is refused while the account is limited.
    expect((await attempt(a.url, known, 'known password 123', someAddress())).status).toBe(429);
  });

  it('successful sign-ins do not use up the allowance', async () => {
    const identity = a.runtime.services.identity!;
    const email = someEmail();
    await identity.createUser({ email, name: 'Often', password: 'often password 123' });
    const address = someAddress();
    for (let i = 0; i < 8; i++) expect((await attempt(i % 2 ? b.url : a.url, email, 'often password 123', address)).status).toBe(200);
  });
});

describe('sign-in limits on the embedded default (in process)', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer('pglite', LIMITS);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('answers the sixth failed attempt from one address with 429 and Retry-After', async () => {
    const address = someAddress();
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await attempt(srv.url, someEmail(), 'wrong password 123', address)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    const limited = await attempt(srv.url, someEmail(), 'wrong password 123', address);
    expect(limited.status).toBe(429);
    expect(Number(limited.retryAfter)).toBeGreaterThan(0);
  });
});
