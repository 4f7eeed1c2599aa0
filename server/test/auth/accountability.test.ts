/**
 * Reads of the audit log by people and auditor keys land in the log (`audit.log.read` /
 * `audit.log.export`, caller as principal, filters with patient ids); producer and admin keys'
 * reads do not. Denied requests, key and membership changes and failed sign-ins are audited too.
 */
import { backends } from '../helpers/backends';
import { signIn, TEST_AUTH_ENV } from '../helpers/people';
import { startTestServer, type TestServer } from '../helpers/server';

const ORIGIN = 'https://app.example.org';

describe.each(backends())('accountability on %s', (backend) => {
  let srv: TestServer;
  let auditorCookie: string;
  let auditorKey: string;
  let producerKey: string;
  beforeAll(async () => {
    srv = await startTestServer(backend, { ...TEST_AUTH_ENV, CORS_ORIGINS: ORIGIN });
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'ida@example.org', name: 'Ida', password: 'ida password 12345' });
    await identity.addMember(srv.organizationId, 'ida@example.org', 'auditor');
    auditorCookie = await signIn(srv.url, 'ida@example.org', 'ida password 12345');
    auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'external auditor', role: 'auditor' })).key;
    producerKey = (await srv.client().apiKeys.create.mutate({ name: 'ehr', role: 'producer' })).key;
    await srv.request('POST', '/api/v1/events', { action: 'data.read', status: 'success', patientId: 'patient-7' }, producerKey);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** Events of one action, newest first, read with the admin key (whose reads are not audited). */
  interface Logged {
    id: string;
    principalId: string;
    status: string;
    targetResourceId?: string;
    details: Record<string, unknown> & { operation?: string; permission?: string };
  }
  async function eventsOf(action: string): Promise<Logged[]> {
    const res = await srv.request('GET', `/api/v1/events?actions=${action}&limit=100`);
    expect(res.status).toBe(200);
    return (res.body as { items: Logged[] }).items;
  }

  it('a person’s query appends audit.log.read with the person, the filters and the patient', async () => {
    const before = (await eventsOf('audit.log.read')).length;
    const res = await fetch(`${srv.url}/trpc/events.query?input=${encodeURIComponent(JSON.stringify({ patientIds: ['patient-7'], limit: 5 }))}`, { headers: { cookie: auditorCookie } });
    expect(res.status).toBe(200);
    const reads = await eventsOf('audit.log.read');
    expect(reads).toHaveLength(before + 1);
    expect(reads[0]).toMatchObject({
      principalId: 'ida@example.org',
      principalType: 'session:auditor',
      patientId: 'patient-7',
      dataClassification: 'PHI',
      details: { operation: 'events.query', input: { patientIds: ['patient-7'], limit: 5 } },
    });
  });

  it('an auditor key’s getById, stats and proofs are audited; an export is audit.log.export', async () => {
    const before = (await eventsOf('audit.log.read')).length;
    const some = ((await srv.request('GET', '/api/v1/events?limit=1', undefined, auditorKey)).body as { items: Logged[] }).items[0]!;
    expect((await srv.request('GET', `/api/v1/events/${some.id}`, undefined, auditorKey)).status).toBe(200);
    expect((await srv.request('GET', '/api/v1/events/stats?groupBy=action', undefined, auditorKey)).status).toBe(200);
    expect((await srv.request('GET', '/api/v1/ledger/proofs/inclusion?leafIndex=0', undefined, auditorKey)).status).toBe(200);
    const reads = await eventsOf('audit.log.read');
    expect(reads.slice(0, 4).map((e) => e.details.operation).sort()).toEqual(['events.getById', 'events.query', 'events.stats', 'ledger.inclusionProof']);
    expect(reads).toHaveLength(before + 4);
    const exportsBefore = (await eventsOf('audit.log.export')).length;
    const bundle = await fetch(`${srv.url}/api/v1/ledger/export`, { headers: { authorization: `Bearer ${auditorKey}` } });
    expect(bundle.status).toBe(200);
    await bundle.text();
    const exportEvents = await eventsOf('audit.log.export');
    expect(exportEvents).toHaveLength(exportsBefore + 1);
    expect(exportEvents[0]).toMatchObject({ principalType: 'apiKey:auditor', details: { operation: 'ledger.export' } });
  });

  it('producer and admin keys’ reads are not re-audited', async () => {
    const before = (await eventsOf('audit.log.read')).length;
    expect((await srv.request('GET', '/api/v1/ledger/proofs/inclusion?leafIndex=0', undefined, producerKey)).status).toBe(200);
    expect((await srv.request('GET', '/api/v1/events?limit=1')).status).toBe(200);
    expect(await eventsOf('audit.log.read')).toHaveLength(before);
  });

  it('audits a denied request, key creation and revocation, membership changes and a failed sign-in', async () => {
    expect((await srv.request('GET', '/api/v1/events', undefined, producerKey)).status).toBe(403);
    const denied = await fetch(`${srv.url}/trpc/apiKeys.list`, { headers: { cookie: auditorCookie } });
    expect(denied.status).toBe(403);
    const created = await srv.client().apiKeys.create.mutate({ name: 'temp', role: 'developer' });
    await srv.client().apiKeys.revoke.mutate({ id: created.id });
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'jack@example.org', name: 'Jack', password: 'jack password 12345' });
    await srv.client().members.add.mutate({ email: 'jack@example.org', role: 'member' });
    await srv.client().members.remove.mutate({ email: 'jack@example.org' });
    const failed = await fetch(`${srv.url}/auth/sign-in/email`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ida@example.org', password: 'not the password' }),
    });
    expect(failed.status).toBe(401);
    await failed.text();
    // Denials and sign-in failures are appended after the answer: wait for them.
    const deadline = Date.now() + 30_000;
    let deniedEvents: Logged[] = [];
    let failures: Logged[] = [];
    while (Date.now() < deadline) {
      deniedEvents = await eventsOf('auth.access.denied');
      failures = await eventsOf('auth.login.failure');
      if (deniedEvents.length >= 2 && failures.length >= 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(deniedEvents.map((e) => e.details.permission).sort()).toEqual(['admin.apiKeys:read', 'audit.events:read']);
    expect(deniedEvents.find((e) => e.details.permission === 'admin.apiKeys:read')).toMatchObject({ principalId: 'ida@example.org', status: 'failure' });
    expect(failures[0]).toMatchObject({ principalId: 'ida@example.org', status: 'failure', details: { reason: 'rejected' } });
    expect((await eventsOf('auth.apikey.create')).find((e) => e.targetResourceId === created.id)).toMatchObject({ details: { role: 'developer' } });
    expect((await eventsOf('auth.apikey.revoke')).find((e) => e.targetResourceId === created.id)).toBeDefined();
    expect((await eventsOf('auth.member.add'))[0]).toMatchObject({ details: { email: 'jack@example.org', role: 'member' } });
    expect(await eventsOf('auth.member.remove')).toHaveLength(1);
  });
});
