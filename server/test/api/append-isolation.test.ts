/**
 * When the database itself refuses an event inside a group-commit batch, only that event fails:
 * the batch is retried without it, every other event is committed and acknowledged, and the log
 * says what failed with a code and counts — never a value of any event of the batch.
 *
 * Validation leaves no known input that PostgreSQL refuses, so a trigger stands in for one: it
 * raises a data exception (SQLSTATE 22023) for rows whose patient starts with `poison-`, and an
 * internal error (XX000) for `outage-`.
 */
import { randomBytes } from 'node:crypto';
import { describeEachBackend } from '../helpers/backends';
import { verifyReceipt } from '../helpers/receipts';
import { startTestServer, type TestServer } from '../helpers/server';

const TRIGGER = `
CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.patient_id LIKE 'poison-%' THEN RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = '22023'; END IF;
  IF NEW.patient_id LIKE 'outage-%' THEN RAISE EXCEPTION 'failed by test trigger' USING ERRCODE = 'XX000'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_refuse_poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();`;

/** An event with `marker` in every field that can hold text. */
function marked(marker: string, patientId: string) {
  return {
    action: 'data.read',
    status: 'failure',
    principalId: `p-${marker}`,
    principalType: `t-${marker}`,
    targetResourceType: `r-${marker}`,
    targetResourceId: `i-${marker}`,
    patientId,
    outcomeDescription: `o-${marker}`,
    dataClassification: 'PHI',
    correlationId: `c-${marker}`,
    sessionContext: { sessionId: `s-${marker}`, userAgent: `u-${marker}`, geolocation: `g-${marker}` },
    retentionPolicy: `rp-${marker}`,
    eventVersion: `v-${marker}`,
    details: { [`k-${marker}`]: `d-${marker}` },
    idempotencyKey: `idem-${marker}`,
  };
}

describeEachBackend('append isolation on %s', (backend) => {
  let srv: TestServer;
  const logs: string[] = [];
  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '50' }, { log: (line) => logs.push(line) });
    const conn = await srv.runtime.database.connect();
    try {
      await conn.exec(TRIGGER);
    } finally {
      conn.release();
    }
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });
  const origin = () => `test.audit/${srv.organizationId}`;
  const mark = () => `MRK${randomBytes(8).toString('hex')}`;

  it('commits every valid event of a batch in which the database refuses some, and answers those with 400', async () => {
    const markers = Array.from({ length: 33 }, mark);
    const sends = markers.map((m, i) => ({
      poisoned: i % 11 === 5,
      body: marked(m, i % 11 === 5 ? `poison-${m}` : `patient-${m}`),
    }));
    const answers = await Promise.all(sends.map((s) => srv.request('POST', '/api/v1/events', s.body)));
    answers.forEach((res, i) => {
      if (sends[i]!.poisoned) {
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({
          code: 'BAD_REQUEST',
          message: 'the database refused this event (SQLSTATE 22023)',
          issues: [{ path: '(root)' }],
        });
      } else {
        expect(res.status).toBe(201);
        verifyReceipt(res.body, srv.verifierKey, origin());
      }
    });
    const stored = answers
      .filter((_, i) => !sends[i]!.poisoned)
      .map((r) => r.body.leafIndex as number)
      .sort((a, b) => a - b);
    expect(stored).toHaveLength(30);
    expect(stored.at(-1)! - stored[0]! + 1).toBe(30); // contiguous: no gap where a refused event was
    for (const m of markers) expect(logs.filter((l) => l.includes(m))).toEqual([]);
    const failures = logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'append failed');
    expect(failures).toEqual(
      Array(3).fill(expect.objectContaining({ sqlstate: '22023', fault: 'input', events: 1 })),
    );
  });

  it('answers a bulk append per item when the database refuses one item', async () => {
    const markers = Array.from({ length: 6 }, mark);
    const events = markers.map((m, i) => marked(m, i === 2 ? `poison-${m}` : `patient-${m}`));
    const res = await srv.request('POST', '/api/v1/events/bulk', { events });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ accepted: 5, rejected: 1 });
    expect(res.body.results[2]).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    for (const r of res.body.results.filter((x: { ok: boolean }) => x.ok))
      verifyReceipt(r.receipt, srv.verifierKey, origin());
    for (const m of markers) expect(logs.filter((l) => l.includes(m))).toEqual([]);
  });

  it('fails only the event that meets a server fault, with a 500 that says nothing internal', async () => {
    const markers = Array.from({ length: 12 }, mark);
    const sends = markers.map((m, i) => ({
      broken: i === 7,
      body: marked(m, i === 7 ? `outage-${m}` : `patient-${m}`),
    }));
    const answers = await Promise.all(sends.map((s) => srv.request('POST', '/api/v1/events', s.body)));
    answers.forEach((res, i) => {
      if (sends[i]!.broken) {
        expect(res.status).toBe(500);
        expect(res.body.error).toMatchObject({ code: 'INTERNAL', message: 'internal error', issues: [] });
      } else {
        expect(res.status).toBe(201);
      }
    });
    for (const m of markers) expect(logs.filter((l) => l.includes(m))).toEqual([]);
    expect(
      logs.some(
        (l) => /"msg":"append failed"/.test(l) && /"sqlstate":"XX000"/.test(l) && /"level":50/.test(l),
      ),
    ).toBe(true);
    // Nothing of any statement reaches the log: no SQL, no parameter list, no salt.
    expect(logs.filter((l) => /INSERT INTO|params|salts/i.test(l))).toEqual([]);
  });
});
