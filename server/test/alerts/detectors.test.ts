/**
 * Every detector at its threshold edges — just below, at, above, and after the window expires —
 * with an injected clock (no sleeps): the engine runs over the real alert store of a running
 * server and the real window store of the backend (Redis when TEST_REDIS_URL is set, in process
 * otherwise). Deduplication: one open alert per detector and subject, with a count and the
 * triggering event ids.
 */
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { DEFAULT_THRESHOLDS, evaluate, hourIn, inHours, type ObservedEvent } from '../../src/alerts/detectors';
import { DetectorEngine } from '../../src/alerts/engine';
import type { AlertView } from '../../src/alerts/service';
import { MemoryWindowStore, RedisWindowStore, type WindowStore } from '../../src/alerts/windows';
import { uuidv7 } from '../../src/util/uuid';
import { describeEachBackend, testRedisUrl } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

const T0 = Date.parse('2026-03-02T12:00:00.000Z'); // a Monday, noon UTC: not off-hours
const SEC = 1000;

describe('detector rules (pure)', () => {
  const base = { recordedAt: new Date(T0), status: 'success' as const };
  it('ignores the alert service’s own events', () => {
    const r = evaluate({ ...base, id: 'x', action: 'alert.raised', principalId: 'p', dataClassification: 'PHI', details: { breakGlass: true } }, DEFAULT_THRESHOLDS, 'UTC');
    expect(r).toEqual({ windows: [], instants: [] });
  });
  it('counts a failed sign-in per principal and per client IP', () => {
    const r = evaluate({ ...base, id: 'x', action: 'auth.login.failure', status: 'failure', principalId: 'eve', details: { clientIp: '10.0.0.9' } }, DEFAULT_THRESHOLDS, 'UTC');
    expect(r.windows.map((w) => w.subject)).toEqual(['principal:eve', 'ip:10.0.0.9']);
  });
  it('does not count a successful sign-in, a failed PHI read, or a non-PHI read', () => {
    expect(evaluate({ ...base, id: 'x', action: 'auth.login', principalId: 'eve' }, DEFAULT_THRESHOLDS, 'UTC').windows).toEqual([]);
    expect(evaluate({ ...base, id: 'x', action: 'fhir.Patient.read', status: 'failure', principalId: 'eve', dataClassification: 'PHI' }, DEFAULT_THRESHOLDS, 'UTC').windows).toEqual([]);
    expect(evaluate({ ...base, id: 'x', action: 'fhir.Patient.read', principalId: 'eve', dataClassification: 'INTERNAL' }, DEFAULT_THRESHOLDS, 'UTC').windows).toEqual([]);
  });
  it('off-hours wrap past midnight and follow the time zone (daylight saving included)', () => {
    expect([21, 22, 23, 0, 5, 6].map((h) => inHours(h, 22, 6))).toEqual([false, true, true, true, true, false]);
    expect(inHours(12, 9, 17)).toBe(true);
    expect(hourIn(new Date('2026-07-01T02:30:00Z'), 'America/New_York')).toBe(22); // EDT, UTC-4
    expect(hourIn(new Date('2026-01-01T02:30:00Z'), 'America/New_York')).toBe(21); // EST, UTC-5
  });
});

describe('in-process windows', () => {
  it('keep at most window/resolution buckets per key and drop the least recently hit key beyond the limit', async () => {
    const store = new MemoryWindowStore(3);
    for (let i = 0; i < 1000; i++) await store.hit([{ key: 'k', windowMs: 10 * SEC, weight: 1, id: `e${i}`, keepIds: 5 }], T0 + i * 100);
    const [r] = await store.hit([{ key: 'k', windowMs: 10 * SEC, weight: 1, id: 'last', keepIds: 5 }], T0 + 100_000);
    expect(r!.ids).toEqual(['last', 'e999', 'e998', 'e997', 'e996']);
    // 1000 hits 100 ms apart; exactly, (90 s, 100 s] holds 99 of them plus this one. The 1 s bucket
    // of 90.0–90.9 s leaves with its newest hit, so the hit at 90.0 s is counted too (late, never early).
    expect(r!.sum).toBe(101);
    for (const key of ['a', 'b', 'c', 'd']) await store.hit([{ key, windowMs: 10 * SEC, weight: 1, id: key, keepIds: 0 }], T0 + 100_000);
    expect(store.size).toBe(3);
  });
});

describeEachBackend('detectors at their thresholds on %s', (backend) => {
  let srv: TestServer;
  let redis: Redis | null = null;
  let windows: WindowStore;
  let engine: DetectorEngine;
  let clock = T0;
  let org: string;

  beforeAll(async () => {
    // The server's own detectors stay off: only the engine under test (with its clock) raises.
    srv = await startTestServer(backend, { ALERTS_DETECTORS_ENABLED: 'false', INGEST_MAX_WAIT_MS: '0' });
    org = srv.organizationId;
    const url = testRedisUrl();
    if (backend === 'postgres' && url) {
      redis = new Redis(url, { maxRetriesPerRequest: 1 });
      windows = new RedisWindowStore(redis, `test:alerts:${randomBytes(6).toString('hex')}:`, (err) => {
        throw err;
      });
    } else {
      windows = new MemoryWindowStore();
    }
    engine = new DetectorEngine(windows, srv.runtime.alerts, {}, { now: () => clock });
  }, 120_000);
  afterAll(async () => {
    redis?.disconnect();
    await srv?.close();
  });

  let seq = 0;
  /** An event of `principal` at the current clock. */
  function ev(fields: Partial<ObservedEvent> & { action: string }): ObservedEvent {
    return { id: uuidv7(clock + seq++), status: 'success', recordedAt: new Date(clock), ...fields };
  }
  async function feed(...events: ObservedEvent[]): Promise<void> {
    await engine.evaluate(org, events);
  }
  async function openAlerts(detector: string, subject: string): Promise<AlertView[]> {
    const { items } = await srv.runtime.alerts.list(org, { detector, limit: 100 });
    return items.filter((a) => a.subject === subject);
  }
  /** A fresh principal per test: windows and alerts never carry over between tests. */
  const who = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

  /**
   * The common edge test of a counting detector: `threshold - 1` events → nothing; the threshold
   * → one alert carrying all of them; one more → the same alert, count + 1.
   */
  async function edges(detector: string, threshold: number, make: (p: string) => ObservedEvent, stepMs: number) {
    const p = who(detector);
    clock = T0;
    const ids: string[] = [];
    for (let i = 0; i < threshold - 1; i++) {
      const e = make(p);
      ids.push(e.id);
      await feed(e);
      clock += stepMs;
    }
    expect(await openAlerts(detector, `principal:${p}`)).toEqual([]);
    const at = make(p);
    ids.push(at.id);
    await feed(at);
    const [alert] = await openAlerts(detector, `principal:${p}`);
    expect(alert).toMatchObject({ detector, status: 'active', count: threshold });
    expect(new Set(alert!.eventIds)).toEqual(new Set(ids.slice(-Math.min(threshold, 100))));
    clock += stepMs;
    const above = make(p);
    await feed(above);
    const again = await openAlerts(detector, `principal:${p}`);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ id: alert!.id, count: threshold + 1 });
    // The first 100 event ids are kept.
    if (threshold < 100) expect(again[0]!.eventIds).toContain(above.id);
    else expect(again[0]!.eventIds).toHaveLength(100);
  }

  /**
   * Window expiry: `threshold - 1` events from t0, the next one exactly when the first leaves the
   * window (the window is (now - W, now]) → nothing; 1 ms earlier → an alert.
   */
  async function expiry(detector: string, threshold: number, windowMs: number, make: (p: string) => ObservedEvent) {
    for (const [offset, fires] of [
      [0, false],
      [-1, true],
    ] as const) {
      const p = who(detector);
      const start = T0 + 10 * windowMs; // clear of the other tests' windows
      clock = start;
      await feed(make(p));
      for (let i = 1; i < threshold - 1; i++) {
        clock = start + windowMs / 2 + i; // the rest well inside the window
        await feed(make(p));
      }
      clock = start + windowMs + offset;
      await feed(make(p));
      expect((await openAlerts(detector, `principal:${p}`)).length).toBe(fires ? 1 : 0);
    }
  }

  const failedLogin = (p: string) => ev({ action: 'auth.login.failure', status: 'failure', principalId: p });
  const denied = (p: string) => ev({ action: 'auth.access.denied', status: 'failure', principalId: p });
  const phiRead = (p: string) => ev({ action: 'fhir.Patient.read', principalId: p, dataClassification: 'PHI' });
  const exportReq = (p: string) => ev({ action: 'audit.log.export', principalId: p, dataClassification: 'CONFIDENTIAL' });

  it('failed authentication: 4 → nothing, 5 in 5 min → alert, 6 → same alert', () => edges('failed_auth', 5, failedLogin, 30 * SEC));
  it('failed authentication: the window expires after 5 minutes', () => expiry('failed_auth', 5, 300 * SEC, failedLogin));
  it('failed authentication from one IP across principals raises per IP', async () => {
    clock = T0;
    const ip = `10.${[1, 2, 3].map(() => Math.floor(Math.random() * 250)).join('.')}`;
    for (let i = 0; i < 5; i++) await feed(ev({ action: 'auth.login.failure', status: 'failure', principalId: who('spray'), details: { clientIp: ip } }));
    expect(await openAlerts('failed_auth', `ip:${ip}`)).toHaveLength(1);
  });

  it('unauthorized access: 2 → nothing, 3 in 10 min → alert, 4 → same alert', () => edges('unauthorized_access', 3, denied, 60 * SEC));
  it('unauthorized access: the window expires after 10 minutes', () => expiry('unauthorized_access', 3, 600 * SEC, denied));

  it('read velocity: 49 → nothing, 50 PHI reads in a minute → alert, 51 → same alert', () => edges('read_velocity', 50, phiRead, 1000));
  it('read velocity: the window expires after a minute', () => expiry('read_velocity', 50, 60 * SEC, phiRead));

  it('bulk export: 99 requests → nothing, 100 in 5 min → alert, 101 → same alert', () => edges('bulk_export', 100, exportReq, 2 * SEC));
  it('bulk export: the request window expires after 5 minutes', () => expiry('bulk_export', 100, 300 * SEC, exportReq));
  it('bulk export: 1,000 exported events → nothing, over 1,000 → alert', async () => {
    const p = who('exporter');
    clock = T0;
    await feed(ev({ action: 'ledger.leaves.export', principalId: p, details: { count: 600 } }));
    clock += SEC;
    await feed(ev({ action: 'ledger.leaves.export', principalId: p, details: { input: { start: 0, end: 400 } } }));
    expect(await openAlerts('bulk_export', `principal:${p}`)).toEqual([]);
    clock += SEC;
    await feed(ev({ action: 'ledger.leaves.export', principalId: p, details: { count: 1 } }));
    const [alert] = await openAlerts('bulk_export', `principal:${p}`);
    expect(alert).toMatchObject({ count: 3 });
    expect(alert!.context).toMatchObject({ eventsInWindow: 1001 });
  });

  it('off-hours PHI access: 21:59 and 06:00 → nothing, 22:00 and 05:59 → alert (organization time zone)', async () => {
    await srv.runtime.alerts.updateSettings(org, { timeZone: 'Europe/Lisbon' }, { principalId: 'test', principalType: 'test' });
    try {
      const p = who('night');
      // Lisbon is UTC+1 in summer (WEST): 22:00 local = 21:00Z.
      const at = (iso: string) => ev({ action: 'fhir.Patient.read', principalId: p, dataClassification: 'PHI', timestamp: iso });
      await feed(at('2026-07-01T20:59:00.000Z'), at('2026-07-02T05:00:00.000Z'));
      expect(await openAlerts('off_hours_phi', `principal:${p}`)).toEqual([]);
      const late = at('2026-07-01T21:00:00.000Z');
      await feed(late);
      const [alert] = await openAlerts('off_hours_phi', `principal:${p}`);
      expect(alert).toMatchObject({ count: 1, eventIds: [late.id], context: { hour: 22, timeZone: 'Europe/Lisbon' } });
      await feed(at('2026-07-02T04:59:00.000Z'));
      expect((await openAlerts('off_hours_phi', `principal:${p}`))[0]).toMatchObject({ count: 2 });
    } finally {
      await srv.runtime.alerts.updateSettings(org, { timeZone: 'UTC' }, { principalId: 'test', principalType: 'test' });
    }
  });

  it('break-the-glass: every action raises, onto one open alert per principal', async () => {
    const p = who('glass');
    await feed(ev({ action: 'ehr.break-glass.open', principalId: p }));
    expect((await openAlerts('break_glass', `principal:${p}`))[0]).toMatchObject({ count: 1, severity: 'high' });
    await feed(ev({ action: 'fhir.Patient.read', principalId: p, details: { breakGlass: true } }));
    expect(await openAlerts('break_glass', `principal:${p}`)).toEqual([expect.objectContaining({ count: 2 })]);
  });

  it('per-organization thresholds replace the defaults (and a disabled detector never fires)', async () => {
    const actor = { principalId: 'test', principalType: 'test' };
    await srv.runtime.alerts.updateSettings(org, { thresholds: { failed_auth: { count: 2 }, break_glass: { enabled: false } } }, actor);
    try {
      const p = who('strict');
      clock = T0;
      await feed(failedLogin(p));
      expect(await openAlerts('failed_auth', `principal:${p}`)).toEqual([]);
      await feed(failedLogin(p));
      expect(await openAlerts('failed_auth', `principal:${p}`)).toHaveLength(1);
      await feed(ev({ action: 'ehr.break-glass.open', principalId: p }));
      expect(await openAlerts('break_glass', `principal:${p}`)).toEqual([]);
    } finally {
      await srv.runtime.alerts.updateSettings(org, { thresholds: {} }, actor);
    }
  });

  it('a resolved alert stays closed: the next trigger opens a new one; an acknowledged one is still added to', async () => {
    const p = who('cycle');
    const actor = { principalId: 'officer', principalType: 'session:compliance_officer' };
    await feed(ev({ action: 'ehr.break-glass.open', principalId: p }));
    const [first] = await openAlerts('break_glass', `principal:${p}`);
    await srv.runtime.alerts.acknowledge(org, first!.id, actor);
    await feed(ev({ action: 'ehr.break-glass.open', principalId: p }));
    expect(await srv.runtime.alerts.get(org, first!.id)).toMatchObject({ status: 'acknowledged', count: 2 });
    await srv.runtime.alerts.resolve(org, first!.id, actor, 'talked to them');
    await feed(ev({ action: 'ehr.break-glass.open', principalId: p }));
    const all = await openAlerts('break_glass', `principal:${p}`);
    expect(all.map((a) => `${a.status}:${a.count}`).sort()).toEqual(['active:1', 'resolved:2']);
  });
});
