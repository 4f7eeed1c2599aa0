/**
 * Delivery to real receivers started by the test (an HTTPS webhook receiver, a TLS syslog listener
 * speaking RFC 5425, an HTTP server speaking Splunk's HEC API; self-signed certificate made by
 * openssl for the run), on each backend (PGlite + in-process queue; PostgreSQL + Redis/BullMQ).
 *
 * While events are appended, every receiver is killed mid-stream (all connections cut while a
 * batch is arriving) and started again: each receiver ends up with every leaf — nothing lost —
 * the first copy of every batch arrives in log order, duplicates carry the same batch id and the
 * same events, each webhook is signed (HMAC-SHA256 over timestamp "." body), and every batch
 * verifies on its own against the signed checkpoint it carries (the SIEM copy checks out). A
 * receiver that keeps failing makes a dead letter, which replay sends again with its id.
 */
import { createHmac } from 'node:crypto';
import { BundleVerifier, parseVerifierKey } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { bulkItems } from '../helpers/events';
import { startTestServer, type TestServer } from '../helpers/server';
import { waitFor } from '../jobs/helpers';
import { Receiver, selfSignedCert } from './receivers';

const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef';
const HEC_TOKEN = '11111111-2222-3333-4444-555555555555';

/** One record as a receiver got it, with the batch it came in. */
interface Piece {
  batch: string;
  seq: number;
  count: number;
  type: string;
  range: { start: number; end: number } | null;
  record: Record<string, unknown>;
}

/** Everything a receiver got, as pieces (webhook: one batch per request; HEC: one event per line; syslog: one record per frame). */
function piecesOf(kind: 'webhook' | 'splunk_hec' | 'syslog', r: Receiver): Piece[] {
  const out: Piece[] = [];
  for (const m of r.received) {
    if (kind === 'webhook') {
      const b = JSON.parse(m.body) as { id: string; type: string; range: Piece['range']; records: Array<Record<string, unknown>> };
      b.records.forEach((record, seq) => out.push({ batch: b.id, seq, count: b.records.length, type: b.type, range: b.range, record }));
    } else if (kind === 'splunk_hec') {
      for (const line of m.body.split('\n')) {
        const e = (JSON.parse(line) as { event: { batch: string; seq: number; count: number; type: string; range: Piece['range']; record: Record<string, unknown> } }).event;
        out.push({ batch: e.batch, seq: e.seq, count: e.count, type: e.type, range: e.range, record: e.record });
      }
    } else {
      const sd = /\[audit@32473 ([^\]]*)\] /.exec(m.body)!;
      const param = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(sd[1]!)?.[1];
      const start = param('start');
      out.push({
        batch: param('batch')!,
        seq: Number(param('seq')),
        count: Number(param('count')),
        type: param('type')!,
        range: start === undefined ? null : { start: Number(start), end: Number(param('end')) },
        record: JSON.parse(m.body.slice(sd.index + sd[0].length)) as Record<string, unknown>,
      });
    }
  }
  return out;
}

/** Leaf index → event id of every event piece. */
function leavesOf(pieces: Piece[]): Map<number, string> {
  const m = new Map<number, string>();
  for (const p of pieces) {
    if (p.record.type !== 'event') continue;
    const leaf = p.record.leafIndex as number;
    const prev = m.get(leaf);
    if (prev !== undefined) expect(prev).toBe(p.record.id); // a duplicate is the same event
    m.set(leaf, p.record.id as string);
  }
  return m;
}

/** Complete batches (every seq present), by id, in order of first completion. */
function completeBatches(pieces: Piece[]): Array<{ id: string; range: Piece['range']; records: Array<Record<string, unknown>> }> {
  const partial = new Map<string, Map<number, Piece>>();
  const done: Array<{ id: string; range: Piece['range']; records: Array<Record<string, unknown>> }> = [];
  const seen = new Set<string>();
  for (const p of pieces) {
    const m = partial.get(p.batch) ?? new Map<number, Piece>();
    partial.set(p.batch, m);
    if (p.seq === 0) m.clear(); // a resend starts the batch again
    m.set(p.seq, p);
    if (m.size === p.count && !seen.has(p.batch)) {
      seen.add(p.batch);
      done.push({ id: p.batch, range: p.range, records: [...m.values()].sort((a, b) => a.seq - b.seq).map((x) => x.record) });
    }
  }
  return done;
}

describeEachBackend('delivery to SIEMs and webhooks on %s', (backend) => {
  let srv: TestServer;
  const cert = selfSignedCert();
  const receivers: Record<'webhook' | 'splunk_hec' | 'syslog', Receiver> = {} as never;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    receivers.webhook = await Receiver.https(cert, () => ({ status: 200, body: '{}' }));
    receivers.splunk_hec = await Receiver.https(cert, (r) =>
      r.headers.authorization === `Splunk ${HEC_TOKEN}` ? { status: 200, body: '{"text":"Success","code":0}' } : { status: 401, body: '{"text":"Invalid token","code":4}' },
    );
    receivers.syslog = await Receiver.syslog(cert);
    srv = await startTestServer(backend, {
      DELIVERY_BATCH_EVENTS: '4',
      DELIVERY_SWEEP_INTERVAL_MS: '200',
      DELIVERY_BACKOFF_MS: '1500',
      DELIVERY_ATTEMPTS: '3',
      DELIVERY_TIMEOUT_MS: '5000',
      DELIVERY_SECRET_KEY: Buffer.alloc(32, 9).toString('base64'),
      INGEST_MAX_WAIT_MS: '0',
    });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
    await Promise.all(Object.values(receivers).map((r) => r.close()));
  });

  const create = async (kind: string, url: string, extra: Record<string, unknown> = {}) => {
    const res = await srv.request('POST', '/api/v1/destinations', { name: kind, kind, url, ca: cert.cert, ...extra });
    expect(res.status).toBe(201);
    return res.body as { id: string; secretVersion: number; secretFingerprint: string | null };
  };

  it('delivers every event to each receiver despite kills mid-stream, in order, duplicates with the same ids, each batch verifiable', async () => {
    const wh = await create('webhook', `https://127.0.0.1:${receivers.webhook.port}/hook`, { secret: WEBHOOK_SECRET });
    expect(wh).toMatchObject({ secretVersion: 1 });
    expect(JSON.stringify(wh)).not.toContain(WEBHOOK_SECRET); // write-only
    ids.webhook = wh.id;
    ids.splunk_hec = (await create('splunk_hec', `https://127.0.0.1:${receivers.splunk_hec.port}`, { secret: HEC_TOKEN, index: 'audit' })).id;
    ids.syslog = (await create('syslog', `syslog+tls://127.0.0.1:${receivers.syslog.port}`)).id;

    // Each receiver dies mid-stream: the webhook and HEC servers with a request read but not
    // answered, the syslog listener in the middle of a batch's frames.
    receivers.webhook.dieAfter(2);
    receivers.splunk_hec.dieAfter(3);
    receivers.syslog.dieAfter(6);
    const total = 40;
    for (let i = 0; i < total; ) {
      const n = Math.min(total - i, 1 + (i % 5));
      await srv.runtime.services.events.bulkCreate(srv.organizationId, bulkItems(Array.from({ length: n }, (_, k) => ({ action: 'record.read', status: 'success', principalId: `u${i + k}` }))));
      i += n;
      for (const kind of ['webhook', 'splunk_hec', 'syslog'] as const) {
        const r = receivers[kind];
        // Started again once the server has seen the failure (its destination reports it).
        if (r.kills === 1 && (await srv.request('GET', `/api/v1/destinations/${ids[kind]}`)).body.lastError) {
          r.kills++;
          await r.restart();
        }
      }
    }
    for (const kind of ['webhook', 'splunk_hec', 'syslog'] as const) {
      const r = receivers[kind];
      await waitFor(async () => r.kills > 0 && (r.kills > 1 || (await srv.request('GET', `/api/v1/destinations/${ids[kind]}`)).body.lastError !== null), `${kind} to be killed and noticed`);
      if (r.kills === 1) {
        r.kills++;
        await r.restart();
      }
    }
    for (const kind of ['webhook', 'splunk_hec', 'syslog'] as const) {
      await waitFor(() => leavesOf(piecesOf(kind, receivers[kind])).size === total, `${kind} to hold every leaf`);
    }

    const verifier = parseVerifierKey(srv.verifierKey);
    for (const kind of ['webhook', 'splunk_hec', 'syslog'] as const) {
      const pieces = piecesOf(kind, receivers[kind]);
      // Nothing lost: leaves 0..total-1, each always the same event.
      expect([...leavesOf(pieces).keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
      // In order: complete batches, first copies, cover the log contiguously.
      const batches = completeBatches(pieces);
      let next = 0;
      for (const b of batches) {
        expect(b.range!.start).toBe(next);
        next = b.range!.end;
      }
      expect(next).toBe(total);
      // Every batch verifies on its own against its signed checkpoint.
      for (const b of batches) {
        const v = new BundleVerifier({ verifiers: [verifier] });
        for (const rec of b.records) v.push(rec);
        const report = v.finish();
        expect({ batch: b.id, ok: report.ok, failures: report.failures }).toEqual({ batch: b.id, ok: true, failures: [] });
      }
      const dest = (await srv.request('GET', `/api/v1/destinations/${ids[kind]}`)).body;
      expect(dest).toMatchObject({ nextLeaf: total, lastError: null });
      expect((await srv.request('GET', `/api/v1/deliveries/dead-letters?id=${ids[kind]}`)).body.deadLetters).toEqual([]);
    }
    // Duplicates: each receiver was cut mid-batch, so some batch id arrived more than once.
    for (const kind of ['webhook', 'splunk_hec', 'syslog'] as const) {
      const pieces = piecesOf(kind, receivers[kind]);
      expect(pieces.length).toBeGreaterThan(new Set(pieces.map((p) => `${p.batch}:${p.seq}`)).size);
    }
    // Webhooks are signed: v1=hex(HMAC-SHA256(secret, timestamp "." body)).
    for (const m of receivers.webhook.received) {
      const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${String(m.headers['x-audit-timestamp'])}.${m.body}`).digest('hex');
      expect(m.headers['x-audit-signature']).toBe(`v1=${expected}`);
      expect(m.headers['x-audit-delivery-id']).toBe((JSON.parse(m.body) as { id: string }).id);
    }
  });

  it('dead-letters a batch the receiver keeps refusing, and replays it with the same id', async () => {
    await srv.request('POST', '/api/v1/destinations/update', { id: ids.syslog, enabled: false });
    await srv.request('POST', '/api/v1/destinations/update', { id: ids.splunk_hec, enabled: false });
    const hook = receivers.webhook;
    hook.status = 500;
    const before = hook.received.length;
    await srv.runtime.services.events.bulkCreate(srv.organizationId, bulkItems([{ action: 'record.read', status: 'success', principalId: 'late' }]));
    await waitFor(async () => (await srv.request('GET', `/api/v1/deliveries/dead-letters?id=${ids.webhook!}`)).body.deadLetters.length === 1, 'a dead letter');
    const [letter] = (await srv.request('GET', `/api/v1/deliveries/dead-letters?id=${ids.webhook!}`)).body.deadLetters as Array<{ id: string; attempts: number; error: string; range: unknown }>;
    expect(letter).toMatchObject({ attempts: 3, error: 'the receiver answered 500', range: { start: 40, end: 41 } });
    // Every attempt sent the same batch, under the same id.
    const attempts = hook.received.slice(before).map((m) => (JSON.parse(m.body) as { id: string }).id);
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    expect(new Set(attempts)).toEqual(new Set([letter!.id]));
    const sentBefore = hook.received.length;

    hook.status = 200;
    const replay = await srv.request('POST', '/api/v1/deliveries/replay', { id: ids.webhook });
    expect([replay.status, replay.body]).toEqual([200, { replayed: 1 }]);
    await waitFor(() => hook.received.length > sentBefore, 'the replayed batch');
    const sent = JSON.parse(hook.received.at(-1)!.body) as { id: string; range: unknown };
    expect(sent).toMatchObject({ id: letter!.id, range: { start: 40, end: 41 } });
    expect((await srv.request('GET', `/api/v1/deliveries/dead-letters?id=${ids.webhook!}`)).body.deadLetters).toEqual([]);
  });

  it('rotates a webhook secret: both signatures during the grace period, the secret never readable', async () => {
    const rotated = await srv.request('POST', '/api/v1/destinations/rotate-secret', { id: ids.webhook, secret: 'whsec_rotated_abcdefghijklmnop' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secretVersion).toBe(2);
    expect(JSON.stringify(rotated.body)).not.toMatch(/whsec_/);
    const before = receivers.webhook.received.length;
    await srv.runtime.services.events.bulkCreate(srv.organizationId, bulkItems([{ action: 'record.read', status: 'success', principalId: 'after-rotation' }]));
    await waitFor(() => receivers.webhook.received.length > before, 'a batch after the rotation');
    const m = receivers.webhook.received.at(-1)!;
    const sig = (secret: string) => `v1=${createHmac('sha256', secret).update(`${String(m.headers['x-audit-timestamp'])}.${m.body}`).digest('hex')}`;
    expect(m.headers['x-audit-signature']).toBe(`${sig('whsec_rotated_abcdefghijklmnop')},${sig(WEBHOOK_SECRET)}`);
  });

  it('delivers an alert through the interface the detectors call', async () => {
    await srv.request('POST', '/api/v1/destinations/update', { id: ids.syslog, enabled: true });
    const n = await srv.runtime.services.deliveries.enqueueAlert(srv.organizationId, { id: 'alert-1', detector: 'failed_auth', subject: 'u1', count: 5 });
    expect(n).toBe(2); // webhook and syslog (HEC is paused)
    await waitFor(() => piecesOf('syslog', receivers.syslog).some((p) => p.type === 'alert' && p.record.id === 'alert-1'), 'the alert over syslog');
    await waitFor(() => piecesOf('webhook', receivers.webhook).some((p) => p.type === 'alert' && p.record.id === 'alert-1'), 'the alert over the webhook');
  });
});
