/**
 * The read cache through the API on each backend (the in-process LRU on PGlite, Redis on
 * PostgreSQL + Redis): shared by REST, tRPC and GraphQL, invalidated by appends and revocations
 * before they are acknowledged, counted per cache; and with Redis unreachable every request still
 * succeeds while the errors are counted.
 */
import { backends, testRedisUrl } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

/** The value of one sample of the server's Prometheus text, or 0. */
async function sample(srv: TestServer, name: string, labels: string): Promise<number> {
  const text = (await srv.request('GET', '/metrics', undefined, null)).body as string;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

const statsQuery = '{ eventsStats(groupBy: status) { total groups { key count } } }';

describe.each(backends())('read cache through the API on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const graphqlStats = async () =>
    (
      (await srv.request('POST', '/graphql', { query: statsQuery })).body as {
        data: { eventsStats: { total: number } };
      }
    ).data.eventsStats.total;

  it('serves repeated stats from the cache across REST, tRPC and GraphQL, and counts hits and misses', async () => {
    const hits = await sample(srv, 'audit_cache_requests_total', 'cache="stats",result="hit"');
    const rest = (await srv.request('GET', '/api/v1/events/stats?groupBy=status')).body as { total: number };
    const trpc = await srv.client().events.stats.query({ groupBy: 'status' });
    expect(trpc.total).toBe(rest.total);
    expect(await graphqlStats()).toBe(rest.total);
    expect(await sample(srv, 'audit_cache_requests_total', 'cache="stats",result="hit"')).toBe(hits + 2);
    expect(await sample(srv, 'audit_cache_requests_total', 'cache="stats",result="miss"')).toBeGreaterThan(0);
  });

  it('counts an append in the very next stats read, single or bulk, through any transport', async () => {
    const before = await graphqlStats();
    expect(await graphqlStats()).toBe(before); // cached
    await srv.client().events.create.mutate({ action: 'cache.one', status: 'success' });
    expect(await graphqlStats()).toBe(before + 1);
    const bulk = await srv.request('POST', '/api/v1/events/bulk', { events: [{ action: 'cache.two', status: 'failure' }, { action: 'cache.two', status: 'success' }] });
    expect(bulk.status).toBe(200);
    expect((await srv.request('GET', '/api/v1/events/stats?groupBy=status')).body.total).toBe(before + 3);
    const created = await srv.request('POST', '/graphql', { query: 'mutation { eventsCreate(action: "cache.three", status: attempt) { treeSize } }' });
    expect(await graphqlStats()).toBe(before + 4);
    const checkpoint = (await srv.request('GET', '/api/v1/ledger/checkpoint')).body as { treeSize: number };
    expect(checkpoint.treeSize).toBe(created.body.data.eventsCreate.treeSize);
  });

  it('moves a cached event’s proof to the new tree size after an append', async () => {
    const { id } = await srv.client().events.create.mutate({ action: 'cache.proof', status: 'success' });
    const first = await srv.client().events.getById.query({ id, withProof: true });
    expect((await srv.client().events.getById.query({ id, withProof: true })).checkpoint).toEqual(first.checkpoint);
    await srv.client().events.create.mutate({ action: 'cache.proof', status: 'success' });
    const after = await srv.client().events.getById.query({ id, withProof: true });
    expect(after.inclusionProof!.treeSize).toBe(first.inclusionProof!.treeSize + 1);
  });

  it('refuses a revoked key at its very next request', async () => {
    const created = await srv.client().apiKeys.create.mutate({ name: 'short-lived', role: 'auditor' });
    for (let i = 0; i < 3; i++) expect((await srv.request('GET', '/api/v1/ledger/keys', undefined, created.key)).status).toBe(200);
    // Key look-ups are in the read cache only where it is shared (Redis): an in-process copy could
    // not be invalidated by a revocation made by another replica or the admin CLI.
    const keyHits = await sample(srv, 'audit_cache_requests_total', 'cache="apiKey",result="hit"');
    if (backend === 'pglite' || !testRedisUrl()) expect(keyHits).toBe(0);
    else expect(keyHits).toBeGreaterThan(0);
    await srv.client().apiKeys.revoke.mutate({ id: created.id });
    expect((await srv.request('GET', '/api/v1/ledger/keys', undefined, created.key)).status).toBe(401);
    expect((await srv.request('POST', '/graphql', { query: '{ ledgerKeys { keys { keyId } } }' }, created.key)).status).toBe(401);
  });
});

describe('read cache with Redis unreachable', () => {
  let srv: TestServer;
  beforeAll(async () => {
    // Nothing listens on port 1: every cache command fails at once.
    srv = await startTestServer('pglite', { REDIS_URL: 'redis://127.0.0.1:1' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('answers every request from the database and counts the cache errors', async () => {
    const before = (await srv.request('GET', '/api/v1/events/stats?groupBy=action')).body as { total: number };
    expect((await srv.request('POST', '/api/v1/events', { action: 'cache.down', status: 'success' })).status).toBe(201);
    const after = await srv.request('GET', '/api/v1/events/stats?groupBy=action');
    expect(after.status).toBe(200);
    expect(after.body.total).toBe(before.total + 1);
    const created = await srv.client().apiKeys.create.mutate({ name: 'while-down', role: 'auditor' });
    expect((await srv.request('GET', '/api/v1/ledger/keys', undefined, created.key)).status).toBe(200);
    await srv.client().apiKeys.revoke.mutate({ id: created.id });
    expect((await srv.request('GET', '/api/v1/ledger/keys', undefined, created.key)).status).toBe(401);
    expect(await sample(srv, 'audit_cache_errors_total', 'cache="stats",operation="read"')).toBeGreaterThan(0);
    expect(await sample(srv, 'audit_cache_errors_total', 'cache="log",operation="invalidate"')).toBeGreaterThan(0);
    expect(await sample(srv, 'audit_cache_requests_total', 'result="hit"')).toBe(0);
  });
});
