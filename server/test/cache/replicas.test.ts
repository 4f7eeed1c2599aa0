/**
 * The read cache across replicas: two server processes on one PostgreSQL and one Redis. A write
 * on one replica is visible on the other at the next request (the invalidation completes before
 * the write is acknowledged): a revoked key is refused, an append changes the stats. Two
 * organizations asking the same questions never see each other's cached answers.
 */
import { randomBytes } from 'node:crypto';
import { ApiKeyService } from '../../src/auth/api-keys';
import { createOrganization } from '../../src/auth/organizations';
import { openDatabase } from '../../src/db/client';
import { generateSignerKey } from '../../src/ledger';
import { createTestDatabase, testRedisUrl } from '../helpers/backends';
import { getJson, killServer, postJson, spawnServer, type ServerProcess } from '../helpers/process';
import { TEST_ADMIN_KEY } from '../helpers/server';

jest.setTimeout(180_000);
const maybe = process.env.TEST_DATABASE_URL && testRedisUrl() ? describe : describe.skip;

/** DELETE with a key. */
async function del(url: string, key: string): Promise<number> {
  return (await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } })).status;
}

/** The value of one sample of the Prometheus text `metrics`, or 0. */
function sample(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && labels.split(',').every((kv) => l.includes(kv)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

maybe('read cache across two replicas on one Redis', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    db = await createTestDatabase();
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: testRedisUrl()!,
      CACHE_KEY_PREFIX: `test:${randomBytes(6).toString('hex')}:`,
      CACHE_TTL_SECONDS: '300',
      AUDIT_SIGNING_KEY: generateSignerKey('cache.audit').signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_LOG_ORIGIN: 'cache.audit',
      RATE_LIMIT_PER_MINUTE: '0',
    };
    a = await spawnServer(env);
    b = await spawnServer(env);
  });
  afterAll(async () => {
    await Promise.all([a, b].filter(Boolean).map((s) => killServer(s, 'SIGKILL')));
    await db?.drop();
  });

  it('refuses a key on one replica at once after it was revoked on the other', async () => {
    const created = await postJson(`${a.url}/api/v1/api-keys`, TEST_ADMIN_KEY, { name: 'to-revoke', role: 'auditor' });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    // Both replicas have looked the key up (so it is cached), twice each.
    for (const s of [a, b, a, b]) expect((await getJson(`${s.url}/api/v1/ledger/keys`, key)).status).toBe(200);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(sample(metrics, 'audit_cache_requests_total', 'cache="apiKey",result="hit"')).toBeGreaterThan(0);

    expect(await del(`${a.url}/api/v1/api-keys/${created.body.id as string}`, TEST_ADMIN_KEY)).toBe(200);
    // The very next request on the other replica is refused: no wait, no TTL.
    const after = await getJson(`${b.url}/api/v1/ledger/keys`, key);
    expect(after.status).toBe(401);
    expect((await getJson(`${a.url}/api/v1/ledger/keys`, key)).status).toBe(401);
  });

  it('changes the stats on one replica at once after an append on the other', async () => {
    const stats = async (s: ServerProcess) => (await getJson(`${s.url}/api/v1/events/stats?groupBy=action`, TEST_ADMIN_KEY)).body as { total: number };
    const before = await stats(b);
    expect((await stats(b)).total).toBe(before.total); // now cached
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(sample(metrics, 'audit_cache_requests_total', 'cache="stats",result="hit"')).toBeGreaterThan(0);

    expect((await postJson(`${a.url}/api/v1/events`, TEST_ADMIN_KEY, { action: 'cache.append', status: 'success' })).status).toBe(201);
    expect((await stats(b)).total).toBe(before.total + 1);
    const bulk = await postJson(`${a.url}/api/v1/events/bulk`, TEST_ADMIN_KEY, { events: [{ action: 'cache.bulk', status: 'success' }, { action: 'cache.bulk', status: 'failure' }] });
    expect(bulk.status).toBe(200);
    expect((await stats(b)).total).toBe(before.total + 3);
    // The latest checkpoint moves with the log too.
    expect((await getJson(`${b.url}/api/v1/ledger/checkpoint`, TEST_ADMIN_KEY)).body.treeSize).toBe(before.total + 3);
  });

  it('never answers one organization with another’s cached value for the same question', async () => {
    // A second organization with its own admin key, made directly in the database (as the admin CLI does).
    const database = await openDatabase({ url: db.url, poolMax: 1 });
    let otherKey: string;
    try {
      const org = await createOrganization(database, 'other');
      otherKey = (await new ApiKeyService(database).create(org.id, 'other admin', 'admin')).key;
    } finally {
      await database.close();
    }
    const appended = await postJson(`${a.url}/api/v1/events`, TEST_ADMIN_KEY, { action: 'cache.tenant', status: 'success', principalId: 'only-in-first' });
    const id = appended.body.id as string;
    // The first organization's answers are cached on both replicas...
    for (const s of [a, b]) {
      expect((await getJson(`${s.url}/api/v1/events/${id}`, TEST_ADMIN_KEY)).body.event.principalId).toBe('only-in-first');
      expect((await getJson(`${s.url}/api/v1/events/stats?groupBy=action`, TEST_ADMIN_KEY)).body.total).toBeGreaterThan(0);
    }
    // ...and the same requests from the other organization get its own (empty) answers.
    for (const s of [a, b]) {
      const byId = await getJson(`${s.url}/api/v1/events/${id}`, otherKey);
      expect(byId.status).toBe(404);
      const stats = await getJson(`${s.url}/api/v1/events/stats?groupBy=action`, otherKey);
      expect(stats.body).toEqual({ groupBy: 'action', total: 0, groups: [] });
      const checkpoint = await getJson(`${s.url}/api/v1/ledger/checkpoint`, otherKey);
      expect(checkpoint.body.treeSize).toBe(0);
    }
  });
});
