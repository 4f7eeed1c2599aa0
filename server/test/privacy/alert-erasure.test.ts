/**
 * Subject erasure reaches the security alerts (docs/privacy.md §2, docs/alerts.md), on each
 * backend: an alert about a principal, raised before and after alert events were pseudonymized,
 * loses the principal's identifier from `security_alerts` and from every stored value of the log
 * (the old `alert.*` events' details are erased); the export still verifies with `audit-verify`;
 * alert events appended since carry the subject's pseudonym only, which a resolver can resolve
 * until the subject is erased.
 */
import { AlertService } from '../../src/alerts/service';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { allRowsText, auditVerifyBundle, exportNdjson, pgDump, verifyNdjson, waitForErasure } from './helpers';

jest.setTimeout(180_000);

const PRINCIPAL = 'dr-alerted-4b7e';
const LATER = 'dr-later-81c2';

describeEachBackend('subject erasure of security alerts on %s', (backend) => {
  let srv: TestServer;

  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0', AUDIT_SELF_AUDIT_INTERVAL_MS: '0' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  type Logged = { action: string; details?: { subject?: string; context?: unknown } };
  async function alertEvents(): Promise<Logged[]> {
    return (await srv.request('GET', '/api/v1/events?actions=alert.raised,alert.updated&limit=100')).body.items as Logged[];
  }

  it('erases the principal from security_alerts and from the log; new alert events carry only the pseudonym', async () => {
    const org = srv.organizationId;
    const event = { action: 'data.read', status: 'success', principalId: PRINCIPAL, patientId: 'patient-kept-1', targetResourceType: 'Observation', targetResourceId: 'obs-1' };
    const kept = { ...event, principalId: 'dr-kept-5a1' };
    expect((await srv.request('POST', '/api/v1/events/bulk', { events: [event, kept] })).body.accepted).toBe(2);

    // An alert event written the way alerts were before their subjects were pseudonymized.
    const legacy = new AlertService(srv.runtime.database, { append: (o, e) => srv.runtime.services.events.create(o, e) });
    const raised = await legacy.raise(org, { detector: 'break_glass', subject: `principal:${PRINCIPAL}`, context: { principal: PRINCIPAL, ref: `Practitioner/${PRINCIPAL}` } });
    expect(raised.created).toBe(true);

    // The same alert, raised again through the server's service: `alert.updated` names the pseudonym.
    const again = await srv.runtime.alerts.raise(org, { detector: 'break_glass', subject: `principal:${PRINCIPAL}`, context: { principal: PRINCIPAL } });
    expect(again.created).toBe(false);
    const updated = (await alertEvents()).find((e) => e.action === 'alert.updated')!;
    expect(updated.details!.subject).toMatch(/^principal:pseu_[A-Za-z0-9_-]{22}$/);
    expect(JSON.stringify(updated)).not.toContain(PRINCIPAL);
    const pseudonym = updated.details!.subject!.slice('principal:'.length);
    // A holder of privacy.pseudonyms:resolve resolves it, as any pseudonym.
    const resolved = await srv.request('GET', `/api/v1/privacy/pseudonyms/${pseudonym}`);
    expect(resolved.status).toBe(200);
    expect(resolved.body.value).toBe(PRINCIPAL);

    const res = await srv.request('POST', '/api/v1/privacy/erasures', { principalId: PRINCIPAL, reason: 'GDPR Art. 17 alert subject' });
    expect(res.status).toBe(202);
    await waitForErasure(srv, res.body.id);

    const alert = (await srv.request('GET', `/api/v1/alerts/${raised.id}`)).body as { subject: string; context: Record<string, unknown> };
    expect(alert.subject).toBe(`principal:${pseudonym}`);
    expect(alert.context).toEqual({ principal: pseudonym });
    const rows = await allRowsText(srv);
    expect(rows).toContain('dr-kept-5a1'); // the dump does hold values
    expect(rows).not.toContain(PRINCIPAL);
    if (backend === 'postgres') expect(pgDump(srv.env.DATABASE_URL!)).not.toContain(PRINCIPAL);
    // Erased: the pseudonym no longer resolves.
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${pseudonym}`)).status).toBe(404);

    // A repeat changes nothing.
    const repeat = await srv.request('POST', '/api/v1/privacy/erasures', { principalId: PRINCIPAL, reason: 'repeat' });
    expect((await waitForErasure(srv, repeat.body.id)).eventsErased).toBe(0);

    // An alert raised after the erasure, about someone else: only the pseudonym is logged.
    await srv.runtime.alerts.raise(org, { detector: 'off_hours_phi', subject: `principal:${LATER}`, context: { hour: 3 } });
    const raisedLater = (await alertEvents()).filter((e) => e.action === 'alert.raised' && e.details?.subject?.startsWith('principal:pseu_'));
    expect(raisedLater).toHaveLength(1);
    expect(JSON.stringify(await alertEvents())).not.toContain(LATER);

    const bundle = await exportNdjson(srv);
    expect(bundle).not.toContain(PRINCIPAL);
    expect(bundle).not.toContain(LATER);
    const report = verifyNdjson(bundle, srv.verifierKey);
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    const cli = auditVerifyBundle(bundle, srv.verifierKey);
    expect(cli.status).toBe(0);
  });

  it('a second erasure of a subject who triggered the same detector again merges the two open alerts instead of failing', async () => {
    const org = srv.organizationId;
    // Still open under the pseudonym since the first erasure; the person comes back and breaks the glass again.
    const before = (await srv.runtime.alerts.list(org, { detector: 'break_glass', status: 'open', limit: 100 })).items;
    expect(before).toHaveLength(1);
    const merged = before[0]!;
    expect(merged.subject).toMatch(/^principal:pseu_/);
    const comeback = await srv.runtime.alerts.raise(org, { detector: 'break_glass', subject: `principal:${PRINCIPAL}`, context: { principal: PRINCIPAL }, count: 3 });
    expect(comeback.created).toBe(true);
    expect((await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', principalId: PRINCIPAL })).status).toBe(201);

    const res = await srv.request('POST', '/api/v1/privacy/erasures', { principalId: PRINCIPAL, reason: 'GDPR Art. 17, second request' });
    expect(res.status).toBe(202);
    expect(await waitForErasure(srv, res.body.id)).toMatchObject({ state: 'completed', eventsErased: 1 });

    const open = (await srv.runtime.alerts.list(org, { detector: 'break_glass', status: 'open', limit: 100 })).items;
    expect(open.map((a) => [a.id, a.subject, a.count])).toEqual([[merged.id, merged.subject, merged.count + 3]]);
    expect(open[0]!.eventIds).toEqual(merged.eventIds);
    expect(await srv.runtime.alerts.get(org, comeback.id)).toMatchObject({
      subject: merged.subject,
      status: 'dismissed',
      closedBy: 'system:privacy',
      note: `merged into alert ${merged.id} when its subject was erased`,
      context: { principal: merged.subject.slice('principal:'.length) },
    });
    expect(await allRowsText(srv)).not.toContain(PRINCIPAL);
  });
});
