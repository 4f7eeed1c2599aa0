/**
 * Security alerts through the running server: events appended over REST raise an alert once the
 * detectors (after COMMIT) have seen them; the lifecycle over tRPC and REST; every raise and change
 * appended to the organization's log; roles; counts; and the ledger self-audit raising
 * `ledger_integrity` without writing to the damaged log.
 */
import pg from 'pg';
import { createOrganization } from '../../src/auth/organizations';
import { describeEachBackend } from '../helpers/backends';
import { bulkItems } from '../helpers/events';
import { startTestServer, type TestServer } from '../helpers/server';

describeEachBackend('security alerts API on %s', (backend) => {
  let srv: TestServer;
  let producer: string;
  let auditor: string;
  let officer: string;
  let officerKeyId: string;

  beforeAll(async () => {
    srv = await startTestServer(backend, { AUDIT_SELF_AUDIT_INTERVAL_MS: '0', ALERTS_DETECTORS_ENABLED: 'true' });
    const keys = srv.runtime.services.apiKeys;
    producer = (await keys.create(srv.organizationId, 'ehr', 'producer')).key;
    auditor = (await keys.create(srv.organizationId, 'auditor', 'auditor')).key;
    const o = await keys.create(srv.organizationId, 'security officer', 'compliance_officer');
    officer = o.key;
    officerKeyId = o.id;
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** Events of the log with one of `actions`, newest last. */
  async function logged(actions: string[]) {
    const res = await srv.request('GET', `/api/v1/events?actions=${actions.join(',')}&limit=100`);
    expect(res.status).toBe(200);
    return (res.body.items as Array<{ action: string; principalId?: string; targetResourceId?: string; details?: any }>).reverse();
  }

  let alertId: string;

  it('five failed sign-ins of one principal, appended over REST, raise one failed_auth alert with their ids', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await srv.request('POST', '/api/v1/events', { action: 'auth.login.failure', status: 'failure', principalId: 'mallory', sessionContext: { ipAddress: '203.0.113.7' } }, producer);
      expect(res.status).toBe(201);
      ids.push(res.body.id as string);
      await srv.runtime.detectors!.flush();
      const open = await srv.request('GET', '/api/v1/alerts?status=open&detector=failed_auth');
      expect(open.body.items.filter((a: { subject: string }) => a.subject === 'principal:mallory')).toHaveLength(i < 4 ? 0 : 1);
    }
    const open = await srv.request('GET', '/api/v1/alerts?status=open&detector=failed_auth', undefined, officer);
    expect(open.status).toBe(200);
    const byPrincipal = open.body.items.find((a: { subject: string }) => a.subject === 'principal:mallory');
    const byIp = open.body.items.find((a: { subject: string }) => a.subject === 'ip:203.0.113.7');
    expect(byPrincipal).toMatchObject({ detector: 'failed_auth', severity: 'high', status: 'active', count: 5, title: 'Repeated failed authentication' });
    expect([...byPrincipal.eventIds].sort()).toEqual([...ids].sort());
    expect(byIp).toMatchObject({ count: 5 });
    alertId = byPrincipal.id;
    const raised = (await logged(['alert.raised'])).filter((e) => e.targetResourceId === alertId);
    expect(raised).toHaveLength(1);
    // The log names the subject by its pseudonym only; a resolver resolves it (docs/alerts.md).
    expect(raised[0]).toMatchObject({ principalId: 'system:alerts', details: { detector: 'failed_auth', subject: expect.stringMatching(/^principal:pseu_[A-Za-z0-9_-]{22}$/), count: 5 } });
    expect(JSON.stringify(raised[0])).not.toContain('mallory');
    const pseudonym = (raised[0]!.details as { subject: string }).subject.slice('principal:'.length);
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${pseudonym}`)).body.value).toBe('mallory');
    // A reader who may not see identifiers (auditor) sees the same alerts under pseudonyms, on
    // REST and tRPC alike: the principal's is the one in the log.
    const seen = await srv.request('GET', '/api/v1/alerts?status=open&detector=failed_auth', undefined, auditor);
    expect(seen.status).toBe(200);
    expect(seen.body.items.find((a: { id: string }) => a.id === alertId)).toMatchObject({ subject: `principal:${pseudonym}`, count: 5 });
    expect(seen.body.items.find((a: { id: string }) => a.id === byIp.id).subject).toMatch(/^ip:pseu_[A-Za-z0-9_-]{22}$/);
    expect(JSON.stringify(seen.body)).not.toMatch(/mallory|203\.0\.113\.7/);
    expect((await srv.client(auditor).alerts.get.query({ id: alertId })).subject).toBe(`principal:${pseudonym}`);
  });

  it('a sixth failure adds to the open alert and appends alert.updated', async () => {
    const res = await srv.request('POST', '/api/v1/events', { action: 'auth.login.failure', status: 'failure', principalId: 'mallory' }, producer);
    await srv.runtime.detectors!.flush();
    const alert = await srv.client(auditor).alerts.get.query({ id: alertId });
    expect(alert.count).toBe(6);
    expect(alert.eventIds).toContain(res.body.id);
    expect((await logged(['alert.updated'])).filter((e) => e.targetResourceId === alertId).at(-1)).toMatchObject({ details: { count: 6, newEventIds: [res.body.id] } });
  });

  it('acknowledge → resolve over tRPC, each appended with the caller as principal; a second resolve is a 409', async () => {
    const ack = await srv.client(officer).alerts.acknowledge.mutate({ id: alertId, note: 'on it' });
    expect(ack).toMatchObject({ status: 'acknowledged', acknowledgedBy: officerKeyId, note: 'on it' });
    const acknowledgedBy = (await srv.client(auditor).alerts.get.query({ id: alertId })).acknowledgedBy;
    expect(acknowledgedBy).toMatch(/^pseu_[A-Za-z0-9_-]{22}$/);
    expect((await srv.request('GET', `/api/v1/privacy/pseudonyms/${acknowledgedBy}`)).body.value).toBe(officerKeyId);
    const resolved = await srv.client(officer).alerts.resolve.mutate({ id: alertId, note: 'password reset' });
    expect(resolved).toMatchObject({ status: 'resolved', closedBy: officerKeyId, note: 'password reset' });
    const again = await srv.request('POST', '/api/v1/alerts/resolve', { id: alertId }, officer);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/is resolved/);
    const dismissed = await srv.request('POST', '/api/v1/alerts/dismiss', { id: alertId }, officer);
    expect(dismissed.status).toBe(409);
    const changes = (await logged(['alert.acknowledged', 'alert.resolved'])).filter((e) => e.targetResourceId === alertId);
    expect(changes.map((e) => [e.action, e.principalId])).toEqual([
      ['alert.acknowledged', officerKeyId],
      ['alert.resolved', officerKeyId],
    ]);
  });

  it('dismisses an active alert over REST; unknown ids are 404; readers cannot change alerts', async () => {
    await srv.request('POST', '/api/v1/events', { action: 'ehr.break-glass.open', status: 'success', principalId: 'dr-night' }, producer);
    await srv.runtime.detectors!.flush();
    const [glass] = (await srv.client(officer).alerts.list.query({ detector: 'break_glass', status: 'active' })).items;
    expect(glass).toMatchObject({ subject: 'principal:dr-night', count: 1 });
    expect((await srv.request('POST', '/api/v1/alerts/acknowledge', { id: glass!.id }, auditor)).status).toBe(403);
    expect((await srv.request('GET', '/api/v1/alerts', undefined, producer)).status).toBe(403);
    const dismissed = await srv.request('POST', '/api/v1/alerts/dismiss', { id: glass!.id, note: 'drill' }, officer);
    expect(dismissed.status).toBe(200);
    expect(dismissed.body).toMatchObject({ status: 'dismissed', note: 'drill' });
    expect((await srv.request('GET', '/api/v1/alerts/01900000-0000-7000-8000-000000000000')).status).toBe(404);
  });

  it('counts alerts by status, and open ones by detector and severity', async () => {
    const stats = await srv.client(auditor).alerts.stats.query();
    expect(stats.byStatus).toMatchObject({ resolved: 1, dismissed: 1 });
    expect(stats.open.byDetector).toMatchObject({ failed_auth: 1 }); // the per-IP alert
    expect(stats.open.total).toBe(stats.byStatus.active + stats.byStatus.acknowledged);
    const rest = await srv.request('GET', '/api/v1/alerts/stats', undefined, auditor);
    expect(rest.body).toEqual(stats);
  });

  it('settings: an unknown time zone is a 400; a change is appended to the log', async () => {
    const bad = await srv.request('POST', '/api/v1/alerts/settings', { timeZone: 'Mars/Olympus' }, officer);
    expect(bad.status).toBe(400);
    const ok = await srv.request('POST', '/api/v1/alerts/settings', { timeZone: 'Europe/Berlin', thresholds: { read_velocity: { count: 80 } } }, officer);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ timeZone: 'Europe/Berlin', overrides: { read_velocity: { count: 80 } }, thresholds: { read_velocity: { count: 80, windowSeconds: 60, enabled: true } } });
    expect((await srv.request('GET', '/api/v1/alerts/settings', undefined, auditor)).body).toEqual(ok.body);
    expect((await logged(['alert.settings.update'])).at(-1)).toMatchObject({ principalId: officerKeyId, details: { timeZone: 'Europe/Berlin' } });
  });

  it('a ledger self-audit failure raises one ledger_integrity alert (critical), without appending to the damaged log', async () => {
    const { id: org } = await createOrganization(srv.runtime.database, 'tampered');
    const results = await srv.runtime.services.events.bulkCreate(org, bulkItems(Array.from({ length: 4 }, (_, i) => ({ action: 'record.read', status: 'success', details: { i } }))));
    expect(results.every((r) => r.ok)).toBe(true);
    await srv.runtime.detectors!.flush();
    // The attacker (a superuser with the triggers off) removes an event.
    const sql = `DELETE FROM events WHERE organization_id = $1 AND leaf_index = 1`;
    if (backend === 'postgres') {
      const c = new pg.Client({ connectionString: srv.env.DATABASE_URL });
      await c.connect();
      await c.query('SET session_replication_role = replica');
      await c.query(sql, [org]);
      await c.end();
    } else {
      const conn = await srv.runtime.database.connect();
      await conn.query('SET session_replication_role = replica');
      await conn.query(sql, [org]);
      await conn.query('SET session_replication_role = DEFAULT');
      conn.release();
    }
    await srv.runtime.selfAudit!.runOnce();
    await srv.runtime.selfAudit!.runOnce();
    const { items } = await srv.runtime.alerts.list(org, { detector: 'ledger_integrity', limit: 10 });
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ subject: 'ledger', severity: 'critical', status: 'active', count: 1 });
    expect(items[0]!.context).toMatchObject({ kind: expect.any(String), reason: expect.any(String) });
    const head = await srv.runtime.services.ledger.checkpoint(org);
    expect(head.treeSize).toBe(4); // nothing appended to the damaged log
  });
});
