/**
 * Subject erasure (docs/privacy.md "Erasure"), on each backend: every personal field of every
 * event naming the subject loses value and salt in bounded batches; the export still verifies
 * (in process and with `audit-verify bundle`) and reports the erased fields; the self-audit stays
 * green; the values are gone from every table, from a pg_dump and from every log line; cached
 * event reads do not survive; the request is in the log as a keyed hash only; a repeat changes
 * nothing; a legal hold refuses it with 409; malformed requests are 400s naming the field.
 */
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import {
  allRowsText,
  auditVerifyBundle,
  exportNdjson,
  pgDump,
  verifyNdjson,
  waitForErasure,
  type Erasure,
} from './helpers';

jest.setTimeout(180_000);

const SUBJECT = 'patient-erase-9f3c';
const OTHER = 'patient-keep-51aa';
const SECRET_NOTE = 'diagnosis-note-7d2e';

describeEachBackend('subject erasure on %s', (backend) => {
  let srv: TestServer;
  const logs: string[] = [];
  let auditorKey: string;

  beforeAll(async () => {
    srv = await startTestServer(
      backend,
      {
        PRIVACY_ERASURE_BATCH_SIZE: '7',
        INGEST_MAX_WAIT_MS: '0',
        AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
        LOG_LEVEL: 'debug',
      },
      { log: (line) => logs.push(line) },
    );
    auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key;
    const events = [
      ...Array.from({ length: 30 }, (_, i) => ({
        action: 'data.read',
        status: 'success',
        principalId: `dr-${i % 3}`,
        patientId: SUBJECT,
        targetResourceType: 'Observation',
        targetResourceId: `obs-${i}`,
        outcomeDescription: `${SECRET_NOTE} ${i}`,
        sessionContext: { sessionId: `s-${i}`, ipAddress: '10.0.0.1' },
        details: { note: SECRET_NOTE },
      })),
      // Names the subject only as the target.
      {
        action: 'data.read',
        status: 'success',
        principalId: 'dr-9',
        targetResourceType: 'Patient',
        targetResourceId: SUBJECT,
      },
      ...Array.from({ length: 5 }, (_, i) => ({
        action: 'data.read',
        status: 'success',
        principalId: 'dr-1',
        patientId: OTHER,
        details: { i },
      })),
    ];
    expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(events.length);
    // An auditor's read naming the subject among others is recorded in the log (audit.log.read).
    expect(
      (
        await srv.request(
          'GET',
          `/api/v1/events?patientIds=${SUBJECT},${OTHER}&limit=5`,
          undefined,
          auditorKey,
        )
      ).status,
    ).toBe(200);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  async function erase(body: Record<string, unknown>): Promise<{ status: number; body: any }> {
    return srv.request('POST', '/api/v1/privacy/erasures', body);
  }

  it('erases every personal field of every event naming the subject, and the export still verifies', async () => {
    const page = (await srv.request('GET', `/api/v1/events?patientIds=${SUBJECT}&limit=1`)).body as {
      items: Array<{ id: string }>;
    };
    const someId = page.items[0]!.id;
    // Cached before the erasure: it must not be served afterwards.
    expect((await srv.request('GET', `/api/v1/events/${someId}`)).body.event.patientId).toBe(SUBJECT);

    const res = await erase({ patientId: SUBJECT, reason: 'GDPR Art. 17 request 1' });
    expect(res.status).toBe(202);
    const done: Erasure = await waitForErasure(srv, res.body.id);
    // 30 by patientId, 1 by targetResourceId, 1 recorded read naming it.
    expect(done.eventsErased).toBe(32);
    expect(done.batches).toBeGreaterThanOrEqual(5); // bounded batches of 7

    const after = (await srv.request('GET', `/api/v1/events/${someId}`)).body.event;
    expect(after.patientId).toBeUndefined();
    expect(after.principalId).toBeUndefined();
    expect(after.details).toBeUndefined();
    expect(after.erasedFields).toEqual(
      expect.arrayContaining(['patientId', 'principalId', 'outcomeDescription', 'sessionContext', 'details']),
    );
    expect(after.action).toBe('data.read');
    expect(after.targetResourceId).toMatch(/^obs-/); // not the subject: kept
    expect((await srv.request('GET', `/api/v1/events?patientIds=${SUBJECT}`)).body.items).toEqual([]);
    expect((await srv.request('GET', `/api/v1/events?patientIds=${OTHER}`)).body.items).toHaveLength(5);

    const bundle = await exportNdjson(srv);
    const report = verifyNdjson(bundle, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.erasedFields).toBeGreaterThanOrEqual(30 * 5);
    expect(report.erased).toContainEqual(expect.objectContaining({ field: 'patientId' }));
    expect(bundle).not.toContain(SUBJECT);
    expect(bundle).not.toContain(SECRET_NOTE);
    const cli = auditVerifyBundle(bundle, srv.verifierKey);
    expect(cli.stderr + cli.stdout).toMatch(/erased/i);
    expect(cli.status).toBe(0);

    const selfAudit = await srv.runtime.selfAudit!.runOnce();
    expect(selfAudit.every((r) => r.ok)).toBe(true);
  });

  it('appends privacy.erase with a keyed hash of the subject, never the subject', async () => {
    const logged = (
      await srv.request('GET', '/api/v1/events?actions=privacy.erase,privacy.erase.completed&limit=10')
    ).body.items as Array<{ action: string; details: unknown }>;
    expect(logged.map((e): string => e.action).sort()).toEqual(['privacy.erase', 'privacy.erase.completed']);
    const request = logged.find((e) => e.action === 'privacy.erase');
    const listed = ((await srv.request('GET', '/api/v1/privacy/erasures')).body.erasures as Erasure[])[0]!;
    expect(request!.details).toMatchObject({
      subjectField: 'patientId',
      subjectHash: listed.subjectHash,
      keyVersion: 1,
      hash: 'HMAC-SHA256',
    });
    expect(listed.subjectHash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(logged)).not.toContain(SUBJECT);
  });

  it('leaves no erased value in any table, in a pg_dump or in a log line', async () => {
    const rows = await allRowsText(srv);
    expect(rows).toContain(OTHER); // the dump does hold values
    expect(rows).not.toContain(SUBJECT);
    expect(rows).not.toContain(SECRET_NOTE);
    if (backend === 'postgres') {
      const dump = pgDump(srv.env.DATABASE_URL!);
      expect(dump).toContain(OTHER);
      expect(dump).not.toContain(SUBJECT);
      expect(dump).not.toContain(SECRET_NOTE);
    }
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((l) => l.includes(SUBJECT) || l.includes(SECRET_NOTE))).toEqual([]);
  });

  it('is idempotent: a repeated erasure finds nothing and the export still verifies', async () => {
    const res = await erase({ patientId: SUBJECT, reason: 'repeat' });
    expect(res.status).toBe(202);
    const done = await waitForErasure(srv, res.body.id);
    expect(done.eventsErased).toBe(0);
    expect(verifyNdjson(await exportNdjson(srv), srv.verifierKey).ok).toBe(true);
  });

  it('answers an unknown subject like any other (no existence oracle), through tRPC too', async () => {
    const r = await srv.client().privacy.erase.mutate({ principalId: 'nobody-3b1e', reason: 'request 2' });
    expect(r.state === 'running' || r.state === 'completed').toBe(true);
    expect((await waitForErasure(srv, r.id)).eventsErased).toBe(0);
  });

  it('refuses with 409 while a legal hold covers the subject, and erases once it is released', async () => {
    const held = await srv.request('POST', '/api/v1/legal-holds', {
      scope: 'subject',
      patientId: OTHER,
      reason: 'litigation 17',
    });
    expect(held.status).toBe(201);
    expect(held.body).toMatchObject({ scope: 'subject', subjectField: 'patientId', active: true });
    expect(JSON.stringify(held.body)).not.toContain(OTHER);
    const refused = await erase({ patientId: OTHER, reason: 'request 3' });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toMatch(/legal hold .* covers this subject/);
    expect(refused.body.error.message).not.toContain(OTHER);
    expect((await srv.request('GET', `/api/v1/events?patientIds=${OTHER}`)).body.items).toHaveLength(5);

    const org = await srv.request('POST', '/api/v1/legal-holds', {
      scope: 'organization',
      reason: 'regulator inquiry',
    });
    expect((await erase({ principalId: 'dr-1', reason: 'request 4' })).status).toBe(409);
    const range = await srv.request('POST', '/api/v1/legal-holds', {
      scope: 'timeRange',
      from: '2000-01-01T00:00:00Z',
      reason: 'audit period',
    });
    expect((await srv.request('POST', `/api/v1/legal-holds/${org.body.id}/release`)).status).toBe(200);
    expect((await erase({ principalId: 'dr-1', reason: 'request 4' })).status).toBe(409); // the range still covers it
    expect((await srv.request('POST', `/api/v1/legal-holds/${range.body.id}/release`)).status).toBe(200);
    expect((await srv.request('POST', `/api/v1/legal-holds/${held.body.id}/release`)).status).toBe(200);
    expect((await srv.request('POST', `/api/v1/legal-holds/${held.body.id}/release`)).status).toBe(409);

    const holds = (await srv.request('GET', '/api/v1/legal-holds')).body.holds as Array<{ active: boolean }>;
    expect(holds).toHaveLength(3);
    expect(holds.every((h) => !h.active)).toBe(true);
    const audited = (
      await srv.request('GET', '/api/v1/events?actions=legal.hold.place,legal.hold.release&limit=20')
    ).body.items;
    expect(audited).toHaveLength(6);
    const res = await erase({ patientId: OTHER, reason: 'request 3' });
    // The recorded read that named both lost its details with the first erasure.
    expect((await waitForErasure(srv, res.body.id)).eventsErased).toBe(5);
  });

  it('rejects malformed requests with 400 naming the field', async () => {
    const none = await erase({ reason: 'x' });
    expect(none.status).toBe(400);
    expect(none.body.error.issues.map((i: { path: string }) => i.path)).toContain('patientId');
    const two = await erase({ patientId: 'a', principalId: 'b', reason: 'x' });
    expect(two.status).toBe(400);
    const noReason = await erase({ patientId: 'a' });
    expect(noReason.body.error.issues.map((i: { path: string }) => i.path)).toContain('reason');
    const unknown = await erase({ patientId: 'a', reason: 'x', extra: 1 });
    expect(unknown.body.error.issues.map((i: { path: string }) => i.path)).toContain('extra');
    expect((await srv.request('POST', '/api/v1/legal-holds', { scope: 'subject', reason: 'x' })).status).toBe(
      400,
    );
    expect(
      (await srv.request('POST', '/api/v1/legal-holds', { scope: 'timeRange', reason: 'x' })).status,
    ).toBe(400);
    expect((await srv.request('POST', '/api/v1/legal-holds/not-a-uuid/release')).status).toBe(400);
  });

  it('is refused to roles without privacy.subjects:erase', async () => {
    expect(
      (await srv.request('POST', '/api/v1/privacy/erasures', { patientId: 'a', reason: 'x' }, auditorKey))
        .status,
    ).toBe(403);
  });
});
