/**
 * Subject access and portability (docs/privacy.md §5): every event about a subject as json, ndjson
 * or csv (RFC 4180, documented column order), each with its committed form and an inclusion proof
 * against the latest signed checkpoint, which the export carries; every receipt verifies with
 * `audit-verify receipt`; an unknown subject is 200 with no events; bad input is a 400 naming the
 * field; the export is audited.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTRPCClient, httpBatchStreamLink } from '@trpc/client';
import { committedFieldStatus, rebuildLeafHash } from '../../src/ledger/fast-commitment';
import { openCheckpoint, parseVerifierKey, verifyInclusion } from '../../src/ledger';
import { SUBJECT_CSV_COLUMNS, type SubjectEvent, type SubjectExportRecord } from '../../src/privacy/subject-export';
import type { AppRouter } from '../../src/trpc/routers';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

jest.setTimeout(180_000);

const SUBJECT = 'patient-access-4e21';
const TRICKY = 'said "no", then\nleft; ok';

/** A minimal RFC 4180 parser (quoted fields, doubled quotes, CRLF records). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

describeEachBackend('subject export on %s', (backend) => {
  let srv: TestServer;
  let officerKey: string;
  beforeAll(async () => {
    srv = await startTestServer(backend, { INGEST_MAX_WAIT_MS: '0' });
    officerKey = (await srv.client().apiKeys.create.mutate({ name: 'privacy office', role: 'compliance_officer' })).key;
    for (let batch = 0; batch < 3; batch++) {
      const events = [
        ...Array.from({ length: 4 }, (_, i) => ({ action: 'data.read', status: 'success', principalId: `dr-${i}`, patientId: SUBJECT, outcomeDescription: TRICKY, details: { batch, i } })),
        { action: 'data.read', status: 'success', principalId: 'dr-x', patientId: 'someone-else' },
      ];
      expect((await srv.request('POST', '/api/v1/events/bulk', { events })).body.accepted).toBe(5);
    }
    expect((await srv.request('POST', '/api/v1/events', { action: 'fhir.Patient.update', status: 'success', targetResourceType: 'Patient', targetResourceId: SUBJECT })).status).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  async function get(query: string, key = officerKey): Promise<{ status: number; type: string | null; text: string }> {
    const res = await fetch(`${srv.url}/api/v1/privacy/subject-export?${query}`, { headers: { authorization: `Bearer ${key}` } });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  }

  it('exports every event about the subject as NDJSON, each provably in the signed log', async () => {
    const res = await get(`patientId=${SUBJECT}&format=ndjson`);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/x-ndjson/);
    const records = res.text.trimEnd().split('\n').map((l) => JSON.parse(l) as SubjectExportRecord);
    expect(records[0]!.type).toBe('checkpoint');
    // 13 events about the subject, and this export's own record (an export names its subject).
    expect(records.at(-1)).toEqual({ type: 'end', events: 14 });
    const checkpoint = records[0] as Extract<SubjectExportRecord, { type: 'checkpoint' }>;
    const { checkpoint: signed } = openCheckpoint(checkpoint.note, [parseVerifierKey(srv.verifierKey)]);
    const events = records.filter((r): r is SubjectEvent => r.type === 'event');
    expect(events.filter((e) => e.event.action === 'audit.log.export')).toHaveLength(1);
    expect(events).toHaveLength(14);
    for (const e of events) {
      expect(e.event.patientId === SUBJECT || e.event.targetResourceId === SUBJECT).toBe(true);
      // Values match their commitments, the commitments make the leaf, the leaf is in the signed tree.
      for (const f of Object.values(e.fields)) expect(committedFieldStatus(f)).toBe('ok');
      const commitments = Object.fromEntries(Object.entries(e.fields).map(([k, f]) => [k, f.commitment]));
      const leaf = rebuildLeafHash(srv.organizationId, e.event.id, e.event.recordedAt, commitments);
      expect(leaf.toString('base64')).toBe(e.receipt.leafHash);
      expect(e.receipt.inclusionProof.treeSize).toBe(signed.size);
      expect(() => verifyInclusion(leaf, e.receipt.leafIndex, signed.size, e.receipt.inclusionProof.hashes.map((h) => Buffer.from(h, 'base64')), signed.rootHash)).not.toThrow();
    }
    // Offline, with nothing but the public key, as the subject would.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'subject-export-'));
    try {
      const file = path.join(dir, 'receipt.json');
      fs.writeFileSync(file, JSON.stringify(events[5]!.receipt));
      const cli = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli/audit-verify.ts', 'receipt', file, '--key', srv.verifierKey], {
        cwd: path.resolve(__dirname, '../../..'),
        encoding: 'utf8',
        timeout: 170_000,
      });
      expect(cli.stdout).toMatch(/^OK: event/);
      expect(cli.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exports JSON and RFC 4180 CSV with the documented columns', async () => {
    const json = await get(`patientId=${SUBJECT}&format=json`);
    expect(json.type).toMatch(/^application\/json/);
    const doc = JSON.parse(json.text) as { checkpoint: { treeSize: number }; events: SubjectEvent[]; count: number };
    const isData = (e: SubjectEvent) => e.event.action !== 'audit.log.export';
    expect(doc.count).toBe(15); // and the two exports so far
    expect(doc.events.filter(isData)).toHaveLength(13);
    expect(doc.events[0]!.receipt.inclusionProof.treeSize).toBe(doc.checkpoint.treeSize);

    const csv = await get(`patientId=${SUBJECT}&format=csv`);
    expect(csv.type).toMatch(/^text\/csv/);
    const rows = parseCsv(csv.text);
    expect(rows[0]).toEqual([...SUBJECT_CSV_COLUMNS]);
    expect(rows).toHaveLength(1 + 13 + 3);
    const col = (name: string) => SUBJECT_CSV_COLUMNS.indexOf(name as never);
    const first = rows.find((r) => r[col('action')] === 'data.read')!;
    expect(first).toHaveLength(SUBJECT_CSV_COLUMNS.length);
    expect(first[col('patientId')]).toBe(SUBJECT);
    expect(first[col('outcomeDescription')]).toBe(TRICKY);
    expect(JSON.parse(first[col('details')]!)).toEqual({ batch: 0, i: 0 });
    expect(first[col('checkpoint')]).toContain('\n— ');
    // Against the latest checkpoint at the time of this export (which the export's own record grew).
    expect(Number(first[col('treeSize')])).toBeGreaterThan(doc.checkpoint.treeSize);
  });

  it('answers an unknown subject with 200 and no events, streams through tRPC, and is audited', async () => {
    const none = await get('principalId=nobody-0000&format=ndjson');
    expect(none.status).toBe(200);
    expect(none.text.trimEnd().split('\n').map((l) => (JSON.parse(l) as { type: string }).type)).toEqual(['checkpoint', 'end']);

    const client = createTRPCClient<AppRouter>({ links: [httpBatchStreamLink({ url: `${srv.url}/trpc`, headers: () => ({ authorization: `Bearer ${officerKey}` }) })] });
    const records: SubjectExportRecord[] = [];
    for await (const r of await client.privacy.subjectExport.query({ patientId: SUBJECT, format: 'ndjson' })) records.push(r);
    expect(records.filter((r) => r.type === 'event' && r.event.action === 'data.read')).toHaveLength(12);

    const audited = (await srv.request('GET', '/api/v1/events?actions=audit.log.export&limit=20')).body.items as Array<{ details: { operation: string } }>;
    expect(audited.filter((e) => e.details.operation === 'privacy.subjectExport').length).toBeGreaterThanOrEqual(4);
  });

  it('accepts a pseudonym as the subject', async () => {
    const auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'auditor', role: 'auditor' })).key;
    const p = (await srv.request('GET', '/api/v1/events?actions=fhir.Patient.update&limit=1', undefined, auditorKey)).body.items[0].targetResourceId as string;
    expect(p).toMatch(/^pseu_/);
    const res = await get(`targetResourceId=${p}&format=ndjson`);
    expect(res.text.trimEnd().split('\n').at(-1)).toBe('{"type":"end","events":1}');
  });

  it('rejects bad input with 400 naming the field, and callers without privacy.subjects:export', async () => {
    const none = await get('format=json');
    expect(none.status).toBe(400);
    expect(JSON.parse(none.text).error.issues.map((i: { path: string }) => i.path)).toContain('patientId');
    const badFormat = await get(`patientId=${SUBJECT}&format=xml`);
    expect(JSON.parse(badFormat.text).error.issues.map((i: { path: string }) => i.path)).toContain('format');
    const auditorKey = (await srv.client().apiKeys.create.mutate({ name: 'auditor 2', role: 'auditor' })).key;
    expect((await get(`patientId=${SUBJECT}`, auditorKey)).status).toBe(403);
  });
});
