/**
 * Behaviour analytics on PGlite (which ships pgvector): the worker's catch-up embeds every event
 * once, in batches; similar events, principal baselines and anomaly scores through the API; the
 * anomaly detector finds each planted anomaly and raises nothing for normal traffic; erasure
 * hooks; tenant isolation.
 */
import { createOrganization } from '../../src/auth/organizations';
import { embedEvent, parseVectorLiteral } from '../../src/analytics/embedding';
import type { AnomalyAlert } from '../../src/analytics/service';
import { startTestServer, type TestServer } from '../helpers/server';
import { HABITS, MONDAY, normalTraffic, plantedAnomalies, rng, normalEvent, type TrafficEvent } from './traffic';

const PER_PRINCIPAL = 60;

async function append(srv: TestServer, events: TrafficEvent[], key?: string): Promise<Array<{ id: string; recordedAt: string }>> {
  const out: Array<{ id: string; recordedAt: string }> = [];
  for (let i = 0; i < events.length; i += 500) {
    const res = await srv.request('POST', '/api/v1/events/bulk', { events: events.slice(i, i + 500), receipts: 'compact' }, key);
    expect(res.status).toBe(200);
    expect(res.body.rejected).toBe(0);
    for (const r of res.body.results) out.push({ id: r.receipt.id, recordedAt: r.receipt.recordedAt });
  }
  return out;
}

/** Waits until the clock has passed `iso`, so a window starting now excludes everything before. */
async function clockPast(iso: string): Promise<Date> {
  const t = Date.parse(iso);
  while (Date.now() <= t) await new Promise((r) => setImmediate(r));
  return new Date();
}

async function count(srv: TestServer, sql: string, params: unknown[]): Promise<number> {
  const conn = await srv.runtime.database.connect();
  try {
    const { rows } = await conn.query<{ n: string | number }>(sql, params);
    return Number(rows[0]!.n);
  } finally {
    conn.release();
  }
}

describe('behaviour analytics on pglite', () => {
  let srv: TestServer;
  let phase1: Array<{ id: string; recordedAt: string }>;
  let phase2Start: Date;
  let planted: string[];
  let phase2Normal: string[];
  const alertsPhase1: AnomalyAlert[] = [];
  const alertsPhase2: AnomalyAlert[] = [];

  beforeAll(async () => {
    // The periodic run is off: the test runs the catch-up itself, with a collecting sink.
    srv = await startTestServer('pglite', { ANALYTICS_INTERVAL_MS: '0', ANALYTICS_BATCH_SIZE: '100', ANALYTICS_MAX_BATCHES_PER_RUN: '1000' });
    phase1 = await append(srv, normalTraffic(1, PER_PRINCIPAL));
    const analytics = srv.runtime.services.analytics;
    const first = await analytics.catchUp(async (a) => void alertsPhase1.push(a));
    expect(first.embedded).toBe(phase1.length);

    phase2Start = await clockPast(phase1.at(-1)!.recordedAt);
    const r = rng(2);
    const normal = HABITS.flatMap((h) => Array.from({ length: 8 }, () => normalEvent(r, h, MONDAY + 4 * 7 * 86_400_000)));
    const anomalies = plantedAnomalies(MONDAY + 4 * 7 * 86_400_000);
    // Planted anomalies among normal traffic, in one append.
    const mixed = [...normal.slice(0, 20), anomalies[0]!, ...normal.slice(20, 30), anomalies[1]!, ...normal.slice(30), anomalies[2]!];
    const receipts = await append(srv, mixed);
    planted = [receipts[20]!.id, receipts[31]!.id, receipts.at(-1)!.id];
    phase2Normal = receipts.map((x) => x.id).filter((id) => !planted.includes(id));
    const second = await analytics.catchUp(async (a) => void alertsPhase2.push(a));
    expect(second.embedded).toBe(mixed.length);
  }, 300_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('embeds every event exactly once, and a second run finds nothing to do', async () => {
    const total = phase1.length + phase2Normal.length + planted.length;
    expect(await count(srv, 'SELECT count(*) AS n FROM event_embeddings WHERE organization_id = $1', [srv.organizationId])).toBe(total);
    expect(await count(srv, 'SELECT count(*) AS n FROM events WHERE organization_id = $1', [srv.organizationId])).toBe(total);
    expect(await count(srv, 'SELECT next_leaf_index AS n FROM analytics_progress WHERE organization_id = $1', [srv.organizationId])).toBe(total);
    const again = await srv.runtime.services.analytics.catchUp(null);
    expect(again).toEqual({ embedded: 0, organizations: 0, anomalies: 0, more: false });
    // Stored vectors are unit length (pgvector's own norm).
    expect(await count(srv, 'SELECT count(*) AS n FROM event_embeddings WHERE abs(vector_norm(embedding) - 1) > 1e-5', [])).toBe(0);
  });

  it('normal traffic raises no alert, while the history builds up batch by batch', () => {
    expect(alertsPhase1).toEqual([]);
    expect(alertsPhase2.map((a) => a.anomaly.eventId).filter((id) => phase2Normal.includes(id))).toEqual([]);
  });

  it('the detector raises an alert for each planted anomaly, with its baseline and nearest normal events', () => {
    expect(alertsPhase2.map((a) => a.anomaly.eventId).sort()).toEqual([...planted].sort());
    for (const a of alertsPhase2) {
      expect(a.organizationId).toBe(srv.organizationId);
      expect(a.dedupeKey).toBe(`analytics.anomaly:${a.anomaly.eventId}`);
      expect(a.anomaly.score).toBeGreaterThan(a.threshold);
      expect(a.baseline.principalId).toBe(a.anomaly.principalId);
      expect(a.baseline.events).toBe(PER_PRINCIPAL);
      expect(a.nearestNormal).toHaveLength(3);
      for (const n of a.nearestNormal) {
        expect(n.principalId).toBe(a.anomaly.principalId);
        expect(phase1.map((p) => p.id)).toContain(n.eventId);
      }
      const d = a.nearestNormal.map((n) => n.distance);
      expect([...d].sort((x, y) => x - y)).toEqual(d);
    }
  });

  it('analytics.anomalies ranks the planted anomalies first (REST and tRPC agree)', async () => {
    const res = await srv.request('GET', `/api/v1/analytics/anomalies?from=${encodeURIComponent(phase2Start.toISOString())}&threshold=1&limit=10`);
    expect(res.status).toBe(200);
    const ids: string[] = res.body.anomalies.map((a: { eventId: string }) => a.eventId);
    expect(ids.slice(0, planted.length).sort()).toEqual([...planted].sort());
    const scores: number[] = res.body.anomalies.map((a: { score: number }) => a.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
    // At the organization's threshold (the default), only the planted ones.
    const viaTrpc = await srv.client().analytics.anomalies.query({ from: phase2Start.toISOString() });
    expect(viaTrpc.anomalies.map((a) => a.eventId).sort()).toEqual([...planted].sort());
    expect(viaTrpc.threshold).toBe(4);
    expect(viaTrpc.anomalies[0]!.baseline.events).toBe(PER_PRINCIPAL);
  });

  it('the worker’s periodic task raises a security alert through the alerts service, with the baseline and nearest normal events', async () => {
    const [late] = await append(srv, [plantedAnomalies(MONDAY + 5 * 7 * 86_400_000)[0]!]);
    const run = await srv.runtime.analyticsWorker.runOnce();
    expect(run).toMatchObject({ embedded: 1, anomalies: 1 });
    const res = await srv.request('GET', '/api/v1/alerts?detector=behaviour_anomaly');
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(1);
    const alert = res.body.items[0];
    expect(alert).toMatchObject({ detector: 'behaviour_anomaly', subject: 'principal:clerk-anna', severity: 'high', status: 'active' });
    expect(alert.eventIds).toEqual([late!.id]);
    expect(alert.context.score).toBeGreaterThan(alert.context.threshold);
    expect(alert.context.baseline).toMatchObject({ principalId: 'clerk-anna' });
    expect(alert.context.baseline.events).toBeGreaterThanOrEqual(PER_PRINCIPAL);
    expect(alert.context.nearestNormal).toHaveLength(3);
    for (const n of alert.context.nearestNormal) expect(n.principalId).toBe('clerk-anna');
  });

  it('analytics.similar returns the nearest events of the organization, nearest first, without the event itself', async () => {
    const target = planted[0]!;
    const res = await srv.request('GET', `/api/v1/analytics/events/${target}/similar?k=5`);
    expect(res.status).toBe(200);
    expect(res.body.eventId).toBe(target);
    expect(res.body.neighbors).toHaveLength(5);
    const d: number[] = res.body.neighbors.map((n: { distance: number }) => n.distance);
    expect([...d].sort((a, b) => a - b)).toEqual(d);
    expect(res.body.neighbors.map((n: { eventId: string }) => n.eventId)).not.toContain(target);
    // A normal event's nearest neighbours are its principal's own habits.
    const normal = phase1[0]!.id;
    const near = await srv.client().analytics.similar.query({ id: normal, k: 10 });
    const own = await srv.client().events.getById.query({ id: normal });
    expect(near.neighbors.filter((n) => n.principalId === own.event.principalId).length).toBeGreaterThanOrEqual(8);
    expect(near.neighbors[0]!.distance).toBeLessThan(0.2);
  });

  it('analytics.principalBaseline gives a unit-scale centroid and the spread of the principal’s events', async () => {
    const res = await srv.request('GET', `/api/v1/analytics/principals/clerk-anna/baseline?to=${encodeURIComponent(phase2Start.toISOString())}`);
    expect(res.status).toBe(200);
    expect(res.body.events).toBe(PER_PRINCIPAL);
    expect(res.body.centroid).toHaveLength(64);
    const norm = Math.sqrt(res.body.centroid.reduce((s: number, x: number) => s + x * x, 0));
    expect(norm).toBeGreaterThan(0.5);
    expect(norm).toBeLessThanOrEqual(1 + 1e-6);
    expect(res.body.spread.mean).toBeGreaterThan(0);
    expect(res.body.spread.max).toBeGreaterThanOrEqual(res.body.spread.mean);
    const nobody = await srv.client().analytics.principalBaseline.query({ principalId: 'nobody' });
    expect(nobody).toMatchObject({ events: 0, centroid: null, spread: null });
  });

  it('a window that ends before it starts is a 400 naming from', async () => {
    const res = await srv.request('GET', '/api/v1/analytics/anomalies?from=2100-01-01T00:00:00Z');
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{ path: 'from', message: 'must be before to' }]);
  });

  it('an organization’s own threshold replaces the default', async () => {
    const client = srv.client();
    expect(await client.analytics.setThreshold.mutate({ anomalyThreshold: 1000 })).toEqual({ anomalyThreshold: 1000 });
    expect((await client.analytics.anomalies.query({ from: phase2Start.toISOString() })).anomalies).toEqual([]);
    expect(await client.analytics.setThreshold.mutate({ anomalyThreshold: null })).toEqual({ anomalyThreshold: 4 });
    expect(await client.analytics.settings.query()).toEqual({ anomalyThreshold: 4 });
  });

  it('erasure hooks: deleteEmbeddings removes, reembed recomputes from the event as stored', async () => {
    const analytics = srv.runtime.services.analytics;
    const [a, b] = [phase2Normal[0]!, phase2Normal[1]!];
    const vec = async (id: string) => {
      const conn = await srv.runtime.database.connect();
      try {
        return (await conn.query<{ v: string | null }>('SELECT embedding::text AS v FROM event_embeddings WHERE organization_id = $1 AND event_id = $2', [srv.organizationId, id])).rows[0]?.v ?? null;
      } finally {
        conn.release();
      }
    };
    const before = await vec(b);
    expect(await analytics.reembed(srv.organizationId, [b])).toBe(1);
    expect(await vec(b)).toBe(before);
    expect(await analytics.deleteEmbeddings(srv.organizationId, [a, b])).toBe(2);
    expect(await vec(a)).toBeNull();
    // Another organization's ids delete nothing.
    expect(await analytics.deleteEmbeddings('00000000-0000-4000-8000-000000000000', [phase2Normal[2]!])).toBe(0);
  });

  it('a subject erasure recomputes the embeddings of the erased events without the erased fields, in the same transaction', async () => {
    const vec = async (id: string) => {
      const conn = await srv.runtime.database.connect();
      try {
        const v = (await conn.query<{ v: string }>('SELECT embedding::text AS v FROM event_embeddings WHERE organization_id = $1 AND event_id = $2', [srv.organizationId, id])).rows[0]?.v;
        return v === undefined ? null : parseVectorLiteral(v);
      } finally {
        conn.release();
      }
    };
    const victim = (await srv.client().events.query.query({ principalIds: ['dr-diaz'], limit: 1 })).items[0]!;
    expect(victim.sessionContext?.ipAddress).toBeDefined();
    const before = (await vec(victim.id))!;
    const res = await srv.request('POST', '/api/v1/privacy/erasures', { principalId: 'dr-diaz', reason: 'analytics erasure test' });
    expect([200, 202]).toContain(res.status);
    for (let i = 0; i < 600; i++) {
      const list = await srv.request('GET', '/api/v1/privacy/erasures');
      if (list.body.erasures.every((e: { state: string }) => e.state === 'completed')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const erased = (await srv.client().events.getById.query({ id: victim.id })).event;
    expect(erased.sessionContext).toBeUndefined();
    const after = (await vec(victim.id))!;
    expect(after).not.toEqual(before);
    // Exactly the embedding of the event as it is now: network, subnet, agent and platform are `none`.
    const expected = embedEvent({
      timestamp: erased.timestamp ?? null,
      recordedAt: new Date(erased.recordedAt),
      action: erased.action ?? null,
      status: erased.status ?? null,
      principalType: erased.principalType ?? null,
      targetResourceType: erased.targetResourceType ?? null,
      hasPatient: erased.patientId !== undefined,
      dataClassification: erased.dataClassification ?? null,
      ipAddress: null,
      userAgent: null,
    });
    after.forEach((x, i) => expect(Math.abs(x - expected[i]!)).toBeLessThan(1e-6));
  });

  it('keeps organizations apart: another tenant sees none of these events, and its own are embedded too', async () => {
    const other = await createOrganization(srv.runtime.database, 'analytics-tenant-b');
    const keyB = (await srv.runtime.services.apiKeys.create(other.id, 'b admin', 'admin')).key;
    const b = await append(srv, normalTraffic(3, 5).map((e) => ({ ...e, principalId: `b-${e.principalId}` })), keyB);
    await srv.runtime.services.analytics.catchUp(null);
    // A's event through B's key: not found, nothing of A's in the answer.
    const res = await srv.request('GET', `/api/v1/analytics/events/${planted[0]}/similar`, undefined, keyB);
    expect(res.status).toBe(404);
    const near = await srv.request('GET', `/api/v1/analytics/events/${b[0]!.id}/similar?k=100`, undefined, keyB);
    expect(near.status).toBe(200);
    expect(near.body.neighbors).toHaveLength(b.length - 1);
    const aIds = new Set([...phase1.map((x) => x.id), ...planted, ...phase2Normal]);
    expect(near.body.neighbors.filter((n: { eventId: string }) => aIds.has(n.eventId))).toEqual([]);
    const baseline = await srv.request('GET', '/api/v1/analytics/principals/clerk-anna/baseline', undefined, keyB);
    expect(baseline.body.events).toBe(0);
    const anomalies = await srv.request('GET', `/api/v1/analytics/anomalies?from=${encodeURIComponent(phase2Start.toISOString())}&threshold=0.001`, undefined, keyB);
    expect(anomalies.body.anomalies.filter((x: { eventId: string }) => aIds.has(x.eventId))).toEqual([]);
  });
});
