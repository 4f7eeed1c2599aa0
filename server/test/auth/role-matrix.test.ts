/**
 * Every tRPC procedure and every REST route of the running app, called with a credential of every
 * role, allows or denies exactly as the role table (auth/permissions.ts) says. Routes and
 * procedures are found in the app itself, not listed here: one added without an access decision
 * fails the first two tests, and one whose gate disagrees with the table fails the others.
 */
import { createOperations, type AnyOperation } from '../../src/api/operations';
import { ROLES, can, type Role } from '../../src/auth/permissions';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { procedureAccess } from '../../src/trpc/access';
import { createAppRouter } from '../../src/trpc/routers';
import { describeEachBackend } from '../helpers/backends';
import { appRoutes, type AppRoute } from '../helpers/routes';
import { startTestServer, type TestServer } from '../helpers/server';

const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
const procedures = procedureAccess(createAppRouter(operations));
const SOME_UUID = '00000000-0000-4000-8000-000000000000';

describeEachBackend('role matrix on %s', (backend) => {
  let srv: TestServer;
  let routes: AppRoute[];
  const keyOf = new Map<Role, string>();
  beforeAll(async () => {
    srv = await startTestServer(backend);
    for (const role of ROLES)
      keyOf.set(
        role,
        (await srv.runtime.services.apiKeys.create(srv.organizationId, `matrix ${role}`, role)).key,
      );
    routes = appRoutes(srv.runtime.app);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('finds every REST route of the operation table in the app, and each declares its access', () => {
    const found = new Set(routes.map((r) => `${r.method} ${r.path}`));
    for (const op of Object.values(operations) as AnyOperation[])
      expect(found).toContain(`${op.rest.method.toUpperCase()} /api/v1${op.rest.path}`);
    expect(routes.filter((r) => r.access === null)).toEqual([]);
    for (const op of Object.values(operations) as AnyOperation[]) {
      expect(
        routes.find((r) => r.path === `/api/v1${op.rest.path}` && r.method === op.rest.method.toUpperCase())
          ?.access,
      ).toBe(op.permission);
    }
  });

  it('every tRPC procedure declares its access', () => {
    expect(procedures.length).toBeGreaterThanOrEqual(Object.keys(operations).length);
    expect(procedures.filter((p) => p.access === null)).toEqual([]);
  });

  async function restStatus(route: AppRoute, key: string | null): Promise<number> {
    const path = route.path.replace(/:[A-Za-z]+/g, SOME_UUID);
    if (path.endsWith('/stream')) {
      // A live stream never ends: the status is all there is to check.
      const res = await fetch(srv.url + path, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      await res.body?.cancel();
      return res.status;
    }
    const res = await srv.request(route.method, path, route.method === 'POST' ? {} : undefined, key);
    return res.status;
  }

  /**
   * A tRPC subscription answers over SSE: 200, then its first message is either `connected` or a
   * `serialized-error` carrying the HTTP status of the refusal (the stream never ends otherwise).
   */
  async function subscriptionStatus(res: Response): Promise<number> {
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      return res.status;
    }
    const reader = res.body.getReader();
    let text = '';
    while (!text.includes('\n\n')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    await reader.cancel();
    const status = /^event: serialized-error$/m.test(text) ? /"httpStatus":(\d+)/.exec(text)?.[1] : undefined;
    return status ? Number(status) : 200;
  }

  async function trpcStatus(path: string, type: string, key: string): Promise<number> {
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const res =
      type === 'mutation'
        ? await fetch(`${srv.url}/trpc/${path}`, { method: 'POST', headers, body: '{}' })
        : await fetch(`${srv.url}/trpc/${path}?input=${encodeURIComponent('{}')}`, { headers });
    if (type === 'subscription') return subscriptionStatus(res);
    await res.arrayBuffer();
    return res.status;
  }

  it.each(ROLES)('REST: role %s is allowed and denied exactly as the table says', async (role) => {
    const wrong: string[] = [];
    for (const route of routes) {
      const status = await restStatus(route, route.access === 'public' ? null : keyOf.get(role)!);
      const allowed = route.access === 'public' || can(role, route.access!);
      const denied = status === 401 || status === 403;
      if (allowed === denied || (!allowed && status !== 403))
        wrong.push(`${route.method} ${route.path} (${route.access}): ${status}`);
    }
    expect(wrong).toEqual([]);
  });

  it.each(ROLES)('tRPC: role %s is allowed and denied exactly as the table says', async (role) => {
    const wrong: string[] = [];
    for (const p of procedures) {
      const status = await trpcStatus(p.path, p.type, keyOf.get(role)!);
      const allowed = p.access === 'public' || can(role, p.access!);
      const denied = status === 401 || status === 403;
      if (allowed === denied || (!allowed && status !== 403))
        wrong.push(`${p.path} (${p.access}): ${status}`);
    }
    expect(wrong).toEqual([]);
  });
});
