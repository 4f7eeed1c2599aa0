/**
 * Live streams across replicas that are separate processes (docs/alerts.md §8): two real servers
 * (`server/src/main.ts`, spawned as operators run it) on one PostgreSQL and one Redis. A client of
 * replica A sees every event appended through replica B — the notification crosses Redis pub/sub,
 * the events are read from the shared database — and a client that reconnects with
 * `Last-Event-ID` resumes right after the last leaf it got: dropped by the client while B keeps
 * appending (resumed on A), and cut by A's death (SIGKILL, resumed on B). Across the three
 * connections the leaf indexes received are one contiguous run of the log, each exactly once, and
 * each event is the one the log holds at that index.
 */
import { randomBytes } from 'node:crypto';
import { generateSignerKey } from '../../src/ledger';
import { createTestDatabase, describePostgresAndRedis, testRedisUrl } from '../helpers/backends';
import { getJson, killServer, postJson, spawnServer, type ServerProcess } from '../helpers/process';
import { TEST_ADMIN_KEY } from '../helpers/server';
import { eventsOf, openSse, type SseReader } from '../helpers/sse';

jest.setTimeout(300_000);

describePostgresAndRedis('live streams across two server processes on one PostgreSQL and one Redis', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;
  const auth = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

  beforeAll(async () => {
    db = await createTestDatabase();
    const prefix = `test:${randomBytes(6).toString('hex')}:`;
    const env = {
      DATABASE_URL: db.url,
      AUDIT_SIGNING_KEY: generateSignerKey('streams.audit').signerKey,
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_LOG_ORIGIN: 'streams.audit',
      AUDIT_ROLE: 'api',
      RATE_LIMIT_PER_MINUTE: '0',
      INGEST_MAX_WAIT_MS: '2',
      // Redis db 15 is shared by every test run: this run's keys and channels under a prefix of their own.
      REDIS_URL: testRedisUrl()!,
      CACHE_KEY_PREFIX: prefix,
      JOBS_KEY_PREFIX: `${prefix}jobs`,
      LOG_LEVEL: 'warn',
    };
    [a, b] = await Promise.all([spawnServer(env), spawnServer(env)]);
  });
  afterAll(async () => {
    await Promise.all([a, b].filter(Boolean).map((s) => killServer(s)));
    await db?.drop();
  });

  /** Appends through B; returns leaf index → event id of each receipt. */
  const appendViaB = async (action: string, n: number): Promise<Map<number, string>> => {
    const acked = new Map<number, string>();
    if (n === 1) {
      const res = await postJson(`${b.url}/api/v1/events`, TEST_ADMIN_KEY, { action, status: 'success', principalId: 'streamer' });
      expect(res.status).toBe(201);
      acked.set(res.body.leafIndex, res.body.id);
    } else {
      const res = await postJson(`${b.url}/api/v1/events/bulk`, TEST_ADMIN_KEY, { events: Array.from({ length: n }, () => ({ action, status: 'success', principalId: 'streamer' })) });
      expect(res.status).toBe(200);
      for (const r of res.body.results as Array<{ ok: boolean; receipt: { leafIndex: number; id: string } }>) {
        expect(r.ok).toBe(true);
        acked.set(r.receipt.leafIndex, r.receipt.id);
      }
    }
    return acked;
  };
  const has = (r: SseReader, leaves: Iterable<number>) => {
    const got = new Set(eventsOf(r).map((e) => e.leafIndex));
    return [...leaves].every((l) => got.has(l));
  };
  const lastId = (r: SseReader) => eventsOf(r).at(-1)!.leafIndex;

  it('a client of A sees what B appends, and resumes with Last-Event-ID without gaps or duplicates', async () => {
    const acked = new Map<number, string>();
    const record = (m: Map<number, string>) => m.forEach((id, leaf) => acked.set(leaf, id));

    // 1. Connected to A; events appended through B, one at a time and in bulk.
    const s1 = await openSse(`${a.url}/api/v1/events/stream`, auth);
    expect(s1.status).toBe(200);
    for (let i = 0; i < 5; i++) record(await appendViaB('replica.b.single', 1));
    record(await appendViaB('replica.b.bulk', 20));
    await s1.until("B's first 25 events at A", (r) => has(r, acked.keys()));

    // 2. B keeps appending while the client drops its connection and resumes on A.
    const background = (async () => {
      for (let i = 0; i < 30; i++) record(await appendViaB('replica.b.background', i % 3 === 0 ? 4 : 1));
    })();
    const before = eventsOf(s1).length;
    await s1.until('some of the background appends', (r) => eventsOf(r).length >= before + 5);
    await s1.close();
    const s2 = await openSse(`${a.url}/api/v1/events/stream`, { ...auth, 'last-event-id': String(lastId(s1)) });
    expect(s2.status).toBe(200);
    await background;
    await s2.until('every background append', (r) => has(r, [...acked.keys()].filter((l) => l > lastId(s1))));

    // 3. A dies (SIGKILL): its client resumes on B from the last leaf it got.
    await killServer(a, 'SIGKILL');
    await s2.done;
    const s3 = await openSse(`${b.url}/api/v1/events/stream`, { ...auth, 'last-event-id': String(lastId(s2)) });
    expect(s3.status).toBe(200);
    const tail = await appendViaB('replica.b.after-failover', 5);
    record(tail);
    await s3.until('the appends after the failover', (r) => has(r, tail.keys()));
    await s3.close();

    // One contiguous run of the log, each leaf exactly once, in order across the connections.
    const received = [s1, s2, s3].flatMap((s) => eventsOf(s));
    const leaves = received.map((e) => e.leafIndex);
    const first = leaves[0]!;
    expect(leaves).toEqual(Array.from({ length: leaves.length }, (_, i) => first + i));
    // Every append B acknowledged is among them, as the same event.
    const byLeaf = new Map(received.map((e) => [e.leafIndex, e.event]));
    for (const [leaf, id] of acked) expect({ leaf, id: byLeaf.get(leaf)?.id }).toEqual({ leaf, id });
    // And each is the event the log holds at its index (the stream is the log, not a copy of the requests).
    const log = await getJson(`${b.url}/api/v1/ledger/leaves?start=${first}&end=${leaves.at(-1)! + 1}`, TEST_ADMIN_KEY);
    expect(log.status).toBe(200);
    expect((log.body.leaves as Array<{ id: string }>).map((l) => l.id)).toEqual(received.map((e) => e.event.id));
  });
});
