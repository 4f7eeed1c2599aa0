/**
 * Live streams: SSE at GET /api/v1/events/stream and the tRPC subscription streams.events, both
 * read raw off the wire (text/event-stream) from a running server on each backend: new events with
 * their leaf index as id, alert changes, resuming with Last-Event-ID, and a slow consumer cut off
 * with the reason while its buffer stays bounded.
 */
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startRuntime, type Runtime } from '../../src/runtime';
import { MemoryStreamBus } from '../../src/streams/bus';
import { SLOW_CONSUMER, StreamHub } from '../../src/streams/hub';
import { describeEachBackend, describePostgres } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { openSse, type SseMessage } from '../helpers/sse';

/** An SSE stream whose `until` takes a predicate on the messages so far. */
async function openStream(url: string, headers: Record<string, string>) {
  const s = await openSse(url, headers);
  return {
    status: s.status,
    messages: s.messages,
    until: (pred: (m: SseMessage[]) => boolean) => s.until('the expected messages', (r) => pred(r.messages)),
    close: () => s.close(),
  };
}

describeEachBackend('live streams on %s', (backend) => {
  let srv: TestServer;
  const auth = () => ({ authorization: `Bearer ${srv.adminKey}` });

  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  const append = async (action: string) => {
    const res = await srv.request('POST', '/api/v1/events', { action, status: 'success' });
    expect(res.status).toBe(201);
    return res.body as { id: string; leafIndex: number };
  };

  it('SSE: new events with their leaf index as id, alert changes, and resuming after Last-Event-ID', async () => {
    const s = await openStream(`${srv.url}/api/v1/events/stream`, auth());
    expect(s.status).toBe(200);
    const a = await append('stream.test.one');
    const b = await append('stream.test.two');
    const c = await append('stream.test.three');
    const ours = (m: SseMessage[]) => m.filter((x) => x.event === 'event' && JSON.parse(x.data).action.startsWith('stream.test.'));
    await s.until((m) => ours(m).length >= 3);
    expect(ours(s.messages).map((m) => [m.id, (JSON.parse(m.data) as { id: string }).id])).toEqual([
      [String(a.leafIndex), a.id],
      [String(b.leafIndex), b.id],
      [String(c.leafIndex), c.id],
    ]);
    // An auditor (no privacy.pseudonyms:resolve) sees the alert's subject as a pseudonym, as in event reads.
    const auditorKey = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'stream auditor', 'auditor')).key;
    const seen = await openStream(`${srv.url}/api/v1/events/stream`, { authorization: `Bearer ${auditorKey}` });
    expect(seen.status).toBe(200);
    const alert = await srv.runtime.alerts.raise(srv.organizationId, { detector: 'test.stream', subject: 'principal:streamer', eventIds: [a.id] }, { appendToLog: false });
    await s.until((m) => m.some((x) => x.event === 'alert'));
    const got = JSON.parse(s.messages.find((x) => x.event === 'alert')!.data);
    expect(got).toMatchObject({ change: 'raised', alert: { id: alert.id, detector: 'test.stream', subject: 'principal:streamer' } });
    await seen.until((m) => m.some((x) => x.event === 'alert'));
    const pseudonymous = seen.messages.find((x) => x.event === 'alert')!.data;
    expect(JSON.parse(pseudonymous)).toMatchObject({ change: 'raised', alert: { id: alert.id, subject: expect.stringMatching(/^principal:pseu_[A-Za-z0-9_-]{22}$/) } });
    expect(pseudonymous).not.toContain('streamer');
    await seen.close();
    await s.close();

    // Resume after the first: the next two come again, read from the log.
    const r = await openStream(`${srv.url}/api/v1/events/stream`, { ...auth(), 'last-event-id': String(a.leafIndex) });
    await r.until((m) => ours(m).length >= 2);
    expect(ours(r.messages).slice(0, 2).map((m) => m.id)).toEqual([String(b.leafIndex), String(c.leafIndex)]);
    await r.close();
  });

  it('tRPC subscription streams.events: tracked items, resumable with lastEventId', async () => {
    const first = await append('stream.trpc.one');
    await append('stream.trpc.two');
    const input = encodeURIComponent(JSON.stringify({ lastEventId: String(first.leafIndex - 1) }));
    const s = await openStream(`${srv.url}/trpc/streams.events?input=${input}`, auth());
    expect(s.status).toBe(200);
    const items = (m: SseMessage[]) => m.filter((x) => x.id !== undefined && x.data.includes('stream.trpc.'));
    await s.until((m) => items(m).length >= 2);
    const [one, two] = items(s.messages);
    expect(one!.id).toBe(String(first.leafIndex));
    expect(JSON.parse(one!.data)).toMatchObject({ type: 'event', leafIndex: first.leafIndex, event: { action: 'stream.trpc.one' } });
    expect(two!.id).toBe(String(first.leafIndex + 1));
    await s.close();
  });

  it('refuses a bad Last-Event-ID, and a reader without audit.events:read', async () => {
    const bad = await srv.request('GET', '/api/v1/events/stream?lastEventId=abc');
    expect(bad.status).toBe(400);
    const producer = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'p', 'producer')).key;
    const denied = await srv.request('GET', '/api/v1/events/stream', undefined, producer);
    expect(denied.status).toBe(403);
  });

  it('disconnects a consumer that falls behind, with the reason, holding at most one page meanwhile', async () => {
    const hub = new StreamHub(srv.runtime.database, new MemoryStreamBus(), { maxClients: 10, maxLagEvents: 10, pageSize: 5 });
    const bus = (hub as unknown as { bus: MemoryStreamBus }).bus;
    const sub = await hub.subscribe(srv.organizationId, { lastEventId: null, alerts: true });
    const start = sub.cursor;
    let reason: string | null = null;
    sub.onClose((r) => (reason = r));
    // Events arrive; the consumer reads one and stops reading.
    for (let i = 0; i < 6; i++) await append(`stream.slow.${i}`);
    bus.publish(srv.organizationId, { kind: 'events', size: start + 6 });
    expect((await sub.next())?.type).toBe('event');
    expect(hub.buffered).toBeLessThanOrEqual(5);
    for (let i = 0; i < 10; i++) await append(`stream.slow.more.${i}`);
    bus.publish(srv.organizationId, { kind: 'events', size: start + 16 });
    expect(reason).toMatch(new RegExp(`^${SLOW_CONSUMER}: 15 events behind the log \\(limit 10\\)`));
    expect(await sub.next()).toBeNull();
    expect(hub.clients).toBe(0);
    expect(hub.buffered).toBe(0);
    await hub.close();
  });
});

describePostgres('live streams across two servers on one PostgreSQL and one Redis', () => {
  let a: TestServer;
  let b: Runtime;

  beforeAll(async () => {
    a = await startTestServer('postgres', { INGEST_MAX_WAIT_MS: '0' });
    // A second server over the same database, Redis and key prefix: another replica.
    b = await startRuntime(loadConfig({ ...a.env, PORT: '0' }), createLogger('silent'));
  }, 180_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('a client of one replica sees the events another replica appends, and its alerts', async () => {
    if (!a.env.REDIS_URL) throw new Error('TEST_REDIS_URL must be set with TEST_DATABASE_URL');
    const s = await openStream(`${b.url}/api/v1/events/stream`, { authorization: `Bearer ${a.adminKey}` });
    expect(s.status).toBe(200);
    const res = await a.request('POST', '/api/v1/events', { action: 'replica.a.wrote', status: 'success' });
    expect(res.status).toBe(201);
    await s.until((m) => m.some((x) => x.event === 'event' && x.data.includes('replica.a.wrote')));
    expect(s.messages.find((x) => x.data.includes('replica.a.wrote'))!.id).toBe(String(res.body.leafIndex));
    await a.runtime.alerts.raise(a.organizationId, { detector: 'test.replicas', subject: 'principal:x' }, { appendToLog: false });
    await s.until((m) => m.some((x) => x.event === 'alert' && x.data.includes('test.replicas')));
    await s.close();
  });
});
