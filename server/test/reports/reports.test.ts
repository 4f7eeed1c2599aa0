/* eslint-disable @typescript-eslint/no-unsafe-return -- JSON answers are read as `any` in these tests */
/**
 * Compliance reports against a known data set (seed.ts): every report kind over REST (JSON, CSV)
 * and tRPC, compared with hand-computed expectations — which events, in which order, with which
 * leaf indexes, against which signed checkpoint; the disclosure rule and its exclusions; tenant
 * isolation; permissions; the report's own audit event; integrity with erased and tampered leaves.
 */
import { createTRPCClient, httpBatchStreamLink } from '@trpc/client';
import { createOrganization } from '../../src/auth/organizations';
import { openCheckpoint, parseVerifierKey, verifyInclusion } from '../../src/ledger';
import type { AppRouter } from '../../src/trpc/routers';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { inOrder, seed, type Seeded } from './seed';

/** A small RFC 4180 parser (quoted fields, doubled quotes, CRLF), strict about line endings. */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      record.push(field);
      field = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i += 2;
    } else if (c === '\n' || c === '\r') {
      throw new Error(`bare line break at ${i}`);
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || record.length > 0) throw new Error('last record lacks its CRLF');
  return records;
}

describeEachBackend('compliance reports on %s', (backend) => {
  let srv: TestServer;
  let producer: string;
  let auditor: string;
  let developer: string;
  let officer: string;
  let seeded: Map<string, Seeded>;
  let to: string;
  beforeAll(async () => {
    srv = await startTestServer(backend);
    const keys = srv.runtime.services.apiKeys;
    producer = (await keys.create(srv.organizationId, 'ehr', 'producer')).key;
    auditor = (await keys.create(srv.organizationId, 'auditor', 'auditor')).key;
    developer = (await keys.create(srv.organizationId, 'dev', 'developer')).key;
    officer = (await keys.create(srv.organizationId, 'privacy officer', 'compliance_officer')).key;
    // Another organization's event about the same patient id: never in organization A's reports.
    const b = await createOrganization(srv.runtime.database, 'tenant-b');
    const bKey = (await keys.create(b.id, 'b ehr', 'producer')).key;
    expect((await srv.request('POST', '/api/v1/events', { action: 'disclosure.insurer', status: 'success', principalId: 'dr-ada', patientId: 'p-1', details: { recipient: 'B only' } }, bKey)).status).toBe(201);
    seeded = await seed(srv, producer);
    const last = [...seeded.values()].reduce((a, b) => (a.recordedAt > b.recordedAt ? a : b));
    to = new Date(Date.parse(last.recordedAt) + 1).toISOString();
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** A report as the compliance officer (who sees identifiers) or `key`. */
  async function report(body: Record<string, unknown>, key = officer) {
    return srv.request('POST', '/api/v1/reports', body, key);
  }

  const leaves = (names: string[]) => inOrder(seeded, names).map((s) => s.leafIndex);

  it('patient-access lists every event of the patient in the range, oldest first, with leaf indexes and the checkpoint', async () => {
    const res = await report({ kind: 'patient-access', patientId: 'p-1', to });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const { header, rows, summary } = res.body;
    expect(header).toMatchObject({
      kind: 'patient-access',
      title: 'Patient access report',
      organization: { id: srv.organizationId, name: 'default' },
      subject: { patientId: 'p-1' },
      range: { from: null, to },
    });
    const names = ['read1', 'write1', 'insurer', 'court', 'research', 'failed-disclosure', 'denied-read'];
    expect(rows.map((r: any) => r.leafIndex)).toEqual(leaves(names));
    expect(rows.map((r: any) => r.eventId)).toEqual(inOrder(seeded, names).map((s) => s.id));
    const read1 = seeded.get('read1')!;
    expect(rows[0]).toEqual({
      leafIndex: read1.leafIndex,
      recordedAt: read1.recordedAt,
      timestamp: '2026-01-02T08:00:00.000Z',
      principalId: 'dr-ada',
      principalType: 'session:clinician',
      action: 'data.read',
      target: 'Observation/obs-1',
      status: 'success',
      outcomeDescription: '',
      eventId: read1.id,
    });
    expect(rows.at(-1)).toMatchObject({ action: 'data.read', status: 'failure', outcomeDescription: 'break-glass refused' });
    expect(summary).toEqual({ rows: 7, counts: { events: 7 } });
    // The checkpoint is a signed note of this log that covers every listed leaf: each one proves.
    const cp = header.checkpoint;
    expect(cp.origin).toBe(`test.audit/${srv.organizationId}`);
    expect(res.headers.get('x-report-checkpoint-tree-size')).toBe(String(cp.treeSize));
    const opened = openCheckpoint(cp.note, [parseVerifierKey(srv.verifierKey)]);
    expect(opened.checkpoint.size).toBe(cp.treeSize);
    expect(opened.checkpoint.rootHash.toString('base64')).toBe(cp.rootHash);
    for (const r of rows) {
      expect(r.leafIndex).toBeLessThan(cp.treeSize);
      const proof = (await srv.request('GET', `/api/v1/ledger/proofs/inclusion?leafIndex=${r.leafIndex}&treeSize=${cp.treeSize}`)).body;
      expect(() =>
        verifyInclusion(Buffer.from(proof.leafHash, 'base64'), r.leafIndex, cp.treeSize, proof.hashes.map((h: string) => Buffer.from(h, 'base64')), opened.checkpoint.rootHash),
      ).not.toThrow();
    }
  });

  it('patient-access honours from (inclusive) and to (exclusive)', async () => {
    const write1 = seeded.get('write1')!;
    const court = seeded.get('court')!;
    const res = await report({ kind: 'patient-access', patientId: 'p-1', from: write1.recordedAt, to: court.recordedAt });
    expect(res.status).toBe(200);
    const expected = inOrder(seeded, ['read1', 'write1', 'insurer', 'court', 'research', 'failed-disclosure', 'denied-read']).filter(
      (s) => s.recordedAt >= write1.recordedAt && s.recordedAt < court.recordedAt,
    );
    expect(res.body.rows.map((r: any) => r.eventId)).toEqual(expected.map((s) => s.id));
    expect(expected.map((s) => s.name)).toContain('write1');
  });

  it('user-activity lists everything one principal did', async () => {
    const res = await report({ kind: 'user-activity', principalId: 'dr-ada', to });
    expect(res.status).toBe(200);
    const names = ['read1', 'read-other', 'research', 'failed-disclosure', 'login', 'denied-read'];
    expect(res.body.rows.map((r: any) => r.leafIndex)).toEqual(leaves(names));
    const login = res.body.rows.find((r: any) => r.action === 'auth.login.success');
    expect(login).toEqual({
      leafIndex: seeded.get('login')!.leafIndex,
      recordedAt: seeded.get('login')!.recordedAt,
      timestamp: seeded.get('login')!.recordedAt, // defaulted to recordedAt at ingest
      action: 'auth.login.success',
      target: '',
      patientId: '',
      status: 'success',
      outcomeDescription: '',
      eventId: seeded.get('login')!.id,
    });
    expect(res.body.header.subject).toEqual({ principalId: 'dr-ada' });
  });

  it('accounting-of-disclosures lists the successful disclosures not exempt by §164.528(a)(1), over six years by default', async () => {
    const res = await report({ kind: 'accounting-of-disclosures', patientId: 'p-1', to });
    expect(res.status).toBe(200);
    const { header, rows, summary } = res.body;
    expect(Date.parse(to) - Date.parse(header.range.from)).toBe((6 * 365 + 2) * 86_400_000);
    expect(rows).toEqual([
      {
        leafIndex: seeded.get('court')!.leafIndex,
        date: '2026-02-03T10:30:00.000Z',
        recordedAt: seeded.get('court')!.recordedAt,
        recipient: 'County Court',
        description: 'Records sent in answer to subpoena 2026-114, "urgent", page 1,2',
        purpose: 'judicial',
        principalId: 'records-office',
        action: 'disclosure.court-order',
        eventId: seeded.get('court')!.id,
      },
      {
        leafIndex: seeded.get('research')!.leafIndex,
        date: seeded.get('research')!.recordedAt,
        recordedAt: seeded.get('research')!.recordedAt,
        recipient: 'Dr. Lee (Univ. research)',
        description: '=HYPERLINK("x")',
        purpose: 'HRESCH',
        principalId: 'dr-ada',
        action: 'data.share',
        eventId: seeded.get('research')!.id,
      },
    ]);
    // 7 events of p-1: 2 listed, the insurer's (payment) exempt, the failed one not a disclosure made.
    expect(summary).toEqual({ rows: 2, counts: { eventsOfPatient: 7, listed: 2, excludedPurpose: 1, notSuccessful: 1 } });
    expect(header.notes.join(' ')).toMatch(/164\.528\(a\)\(1\)/);
  });

  it('refuses an accounting longer than six years, naming the field', async () => {
    const res = await report({ kind: 'accounting-of-disclosures', patientId: 'p-1', from: '2010-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z' });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{ path: 'from', message: expect.stringMatching(/six years/) }]);
  });

  it('the disclosure rule is configurable per organization, and its change is logged', async () => {
    expect((await srv.request('GET', '/api/v1/reports/disclosure-rule', undefined, auditor)).body).toMatchObject({ custom: false, rule: { actionPrefixes: ['disclosure.'] } });
    // An auditor may read the rule but not change it; a compliance officer may.
    expect((await srv.request('POST', '/api/v1/reports/disclosure-rule', { actions: ['data.share'] }, auditor)).status).toBe(403);
    const set = await srv.request('POST', '/api/v1/reports/disclosure-rule', { actionPrefixes: [], actions: ['disclosure.insurer'], eventsWithRecipient: false, excludedPurposes: [] }, officer);
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({ custom: true, rule: { actions: ['disclosure.insurer'], excludedPurposes: [] } });
    try {
      const res = await report({ kind: 'accounting-of-disclosures', patientId: 'p-1', to });
      expect(res.body.rows.map((r: any) => r.leafIndex)).toEqual([seeded.get('insurer')!.leafIndex]);
      expect(res.body.rows[0]).toMatchObject({ recipient: 'Acme Insurance (org-77)', purpose: 'payment', description: 'disclosure.insurer' });
      const changes = (await srv.request('GET', '/api/v1/events?actions=admin.reports.disclosure-rule.update&limit=5')).body.items;
      expect(changes[0]).toMatchObject({ principalType: 'apiKey:compliance_officer', details: { rule: { actions: ['disclosure.insurer'] } } });
    } finally {
      expect((await srv.request('POST', '/api/v1/reports/disclosure-rule', {}, officer)).status).toBe(200);
    }
  });

  it('CSV is RFC 4180: a header record, CRLF, quoting, the checkpoint on every record, formulas neutralized', async () => {
    const res = await srv.request('POST', '/api/v1/reports', { kind: 'accounting-of-disclosures', patientId: 'p-1', to, format: 'csv' }, officer);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    const text = res.body as string;
    const records = parseCsv(text);
    const size = res.headers.get('x-report-checkpoint-tree-size');
    const root = res.headers.get('x-report-checkpoint-root-hash');
    expect(records).toEqual([
      ['leafIndex', 'date', 'recipient', 'description', 'purpose', 'principalId', 'eventId', 'checkpointTreeSize', 'checkpointRootHash'],
      [String(seeded.get('court')!.leafIndex), '2026-02-03T10:30:00.000Z', 'County Court', 'Records sent in answer to subpoena 2026-114, "urgent", page 1,2', 'judicial', 'records-office', seeded.get('court')!.id, size, root],
      [String(seeded.get('research')!.leafIndex), seeded.get('research')!.recordedAt, 'Dr. Lee (Univ. research)', `'=HYPERLINK("x")`, 'HRESCH', 'dr-ada', seeded.get('research')!.id, size, root],
    ]);
    expect(text).toContain('"Records sent in answer to subpoena 2026-114, ""urgent"", page 1,2"');
  });

  it('never lists another organization’s events', async () => {
    const res = await report({ kind: 'accounting-of-disclosures', patientId: 'p-1', to });
    expect(JSON.stringify(res.body)).not.toContain('B only');
    const pa = await report({ kind: 'patient-access', patientId: 'p-1' });
    expect(pa.body.rows.every((r: any) => r.eventId !== undefined && r.leafIndex < pa.body.header.checkpoint.treeSize)).toBe(true);
    expect(JSON.stringify(pa.body)).not.toContain('B only');
  });

  it('generating a report is audited (audit.log.report), after the checkpoint it lists, whoever the caller', async () => {
    const before = (await srv.request('GET', '/api/v1/events?actions=audit.log.report&limit=100')).body.items.length;
    const res = await report({ kind: 'patient-access', patientId: 'p-2' }, srv.adminKey);
    expect(res.status).toBe(200);
    const after = (await srv.request('GET', '/api/v1/events?actions=audit.log.report&limit=100')).body.items;
    expect(after).toHaveLength(before + 1);
    expect(after[0]).toMatchObject({ principalType: 'apiKey:admin', patientId: 'p-2', dataClassification: 'PHI', details: { operation: 'reports.patient-access', input: { kind: 'patient-access', patientId: 'p-2' } } });
    // Not in the report that caused it (it comes after the report's checkpoint) …
    expect(res.body.rows.map((r: any) => r.eventId)).toEqual([seeded.get('read-other')!.id]);
    // … but the next report on the same patient shows who looked.
    const next = await report({ kind: 'patient-access', patientId: 'p-2' });
    expect(next.body.rows.map((r: any) => r.action)).toEqual(['data.read', 'audit.log.report']);
  });

  it('an auditor sees pseudonyms instead of patient and principal ids, and may name the subject by its pseudonym', async () => {
    const res = await report({ kind: 'patient-access', patientId: 'p-1', to }, auditor);
    expect(res.status).toBe(200);
    const pseudonym = res.body.header.subject.patientId as string;
    expect(pseudonym).toMatch(/^pseu_[A-Za-z0-9_-]{22}$/);
    const text = JSON.stringify(res.body);
    for (const id of ['p-1', 'dr-ada', 'dr-bob', 'records-office', 'billing-svc']) expect(text).not.toContain(`"${id}"`);
    const clear = await report({ kind: 'patient-access', patientId: 'p-1', to });
    expect(res.body.rows.map((r: any) => r.eventId)).toEqual(clear.body.rows.map((r: any) => r.eventId));
    // The same person has the same pseudonym on every row; the auditor can ask again by pseudonym.
    const ada = res.body.rows[0].principalId;
    expect(res.body.rows.filter((r: any) => r.principalId === ada).map((r: any) => r.eventId)).toEqual(clear.body.rows.filter((r: any) => r.principalId === 'dr-ada').map((r: any) => r.eventId));
    const again = await report({ kind: 'patient-access', patientId: pseudonym, to }, auditor);
    expect(again.body.rows.map((r: any) => r.eventId)).toEqual(clear.body.rows.map((r: any) => r.eventId));
    // A pseudonym shown in a report can be resolved by whoever may (and that is logged by privacy).
    const resolved = await srv.request('GET', `/api/v1/privacy/pseudonyms/${ada}`, undefined, officer);
    expect(resolved.body).toMatchObject({ value: 'dr-ada' });
  });

  it('needs audit.reports:create: producers and developers are refused, auditors allowed', async () => {
    expect((await report({ kind: 'patient-access', patientId: 'p-1' }, producer)).status).toBe(403);
    expect((await report({ kind: 'patient-access', patientId: 'p-1' }, developer)).status).toBe(403);
    expect((await report({ kind: 'patient-access', patientId: 'p-1' }, officer)).status).toBe(200);
    expect((await report({ kind: 'patient-access', patientId: 'p-1' }, null as unknown as string)).status).toBe(401);
  });

  it('rejects bad input with the field named', async () => {
    const res = await report({ kind: 'patient-access', patientId: '', format: 'xml', extra: 1 });
    expect(res.status).toBe(400);
    expect(res.body.error.issues.map((i: any) => i.path).sort()).toEqual(['extra', 'format', 'patientId']);
    expect((await report({ kind: 'no-such' })).status).toBe(400);
  });

  it('tRPC reports.create streams the same records', async () => {
    const client = createTRPCClient<AppRouter>({
      links: [httpBatchStreamLink({ url: `${srv.url}/trpc`, headers: () => ({ authorization: `Bearer ${officer}` }) })],
    });
    const records: any[] = [];
    for await (const r of await client.reports.create.mutate({ kind: 'user-activity', principalId: 'dr-ada', to })) records.push(r);
    expect(records[0]).toMatchObject({ type: 'header', kind: 'user-activity' });
    expect(records.slice(1, -1).map((r) => r.leafIndex)).toEqual(leaves(['read1', 'read-other', 'research', 'failed-disclosure', 'login', 'denied-read']));
    expect(records.at(-1)).toEqual({ type: 'summary', rows: 6, counts: { events: 6 } });
    expect((await client.reports.disclosureRule.query()).rule.actionPrefixes).toEqual(['disclosure.']);
  });

  describe('integrity', () => {
    it('verifies the whole log: every event and checkpoint by position, erased fields counted, not failures', async () => {
      // Erase one field the way the erasure path does (value and salt go, the commitment stays).
      const c = await srv.runtime.database.connect();
      try {
        await c.query(`UPDATE events SET outcome_description = NULL, salts = salts - 'outcomeDescription' WHERE organization_id = $1 AND leaf_index = $2`, [
          srv.organizationId,
          seeded.get('denied-read')!.leafIndex,
        ]);
      } finally {
        c.release();
      }
      const res = await report({ kind: 'integrity' });
      expect(res.status).toBe(200);
      const { header, rows, summary } = res.body;
      const size = header.checkpoint.treeSize;
      const events = rows.filter((r: any) => r.record === 'event');
      expect(events.map((r: any) => r.position)).toEqual(Array.from({ length: size }, (_, i) => i));
      expect(rows.every((r: any) => r.result === 'ok')).toBe(true);
      expect(events.find((r: any) => r.position === seeded.get('denied-read')!.leafIndex).erased).toBe('outcomeDescription');
      expect(rows.find((r: any) => r.record === 'checkpoint' && r.position === size)).toMatchObject({ id: header.checkpoint.rootHash, result: 'ok' });
      expect(summary).toMatchObject({ ok: true, failures: [], counts: { start: 0, end: size, events: size, erasedFields: 1, failures: 0 } });
    });

    it('names a tampered leaf by its position', async () => {
      const victim = seeded.get('write1')!.leafIndex;
      const c = await srv.runtime.database.connect();
      try {
        await c.query(`SET session_replication_role = replica`);
        await c.query(`UPDATE events SET principal_id = 'dr-mallory' WHERE organization_id = $1 AND leaf_index = $2`, [srv.organizationId, victim]);
        await c.query(`SET session_replication_role = DEFAULT`);
      } finally {
        c.release();
      }
      const res = await report({ kind: 'integrity', start: 0, end: victim + 1 });
      expect(res.status).toBe(200);
      const { rows, summary } = res.body;
      expect(rows.filter((r: any) => r.result === 'FAILED').map((r: any) => [r.record, r.position])).toEqual([['event', victim]]);
      expect(summary.ok).toBe(false);
      expect(summary.failures[0]).toMatchObject({ kind: 'leaf', leafIndex: victim });
    });
  });
});
