/**
 * The known data set the report tests compare against: events appended one by one through the
 * REST API (so leaf indexes and recordedAt follow the list order), plus one event of another
 * organization for the same patient, which no report may list.
 */
import type { TestServer } from '../helpers/server';

/** One seeded event and where it landed. */
export interface Seeded {
  name: string;
  body: Record<string, unknown>;
  id: string;
  leafIndex: number;
  recordedAt: string;
}

/** The events, by name (the expectations refer to these names). */
export const SEED: Array<[string, Record<string, unknown>]> = [
  ['read1', { action: 'data.read', status: 'success', principalId: 'dr-ada', principalType: 'session:clinician', patientId: 'p-1', targetResourceType: 'Observation', targetResourceId: 'obs-1', timestamp: '2026-01-02T08:00:00.000Z' }],
  ['write1', { action: 'data.write', status: 'success', principalId: 'dr-bob', patientId: 'p-1', targetResourceType: 'Observation', targetResourceId: 'obs-2' }],
  ['read-other', { action: 'data.read', status: 'success', principalId: 'dr-ada', patientId: 'p-2', targetResourceType: 'Patient', targetResourceId: 'p-2' }],
  [
    'insurer',
    { action: 'disclosure.insurer', status: 'success', principalId: 'billing-svc', patientId: 'p-1', details: { recipient: { name: 'Acme Insurance', id: 'org-77' }, purpose: 'payment' } },
  ],
  [
    'court',
    {
      action: 'disclosure.court-order',
      status: 'success',
      principalId: 'records-office',
      patientId: 'p-1',
      outcomeDescription: 'Records sent in answer to subpoena 2026-114, "urgent", page 1,2',
      timestamp: '2026-02-03T10:30:00.000Z',
      details: { recipient: 'County Court', purpose: 'judicial' },
    },
  ],
  ['research', { action: 'data.share', status: 'success', principalId: 'dr-ada', patientId: 'p-1', details: { recipient: 'Dr. Lee (Univ. research)', purposeOfUse: ['HRESCH'], description: '=HYPERLINK("x")' } }],
  ['failed-disclosure', { action: 'disclosure.research', status: 'failure', principalId: 'dr-ada', patientId: 'p-1', details: { recipient: 'Someone' } }],
  ['login', { action: 'auth.login.success', status: 'success', principalId: 'dr-ada' }],
  ['denied-read', { action: 'data.read', status: 'failure', principalId: 'dr-ada', patientId: 'p-1', outcomeDescription: 'break-glass refused' }],
];

/** Appends the seed in order with `key`; returns where each event landed. */
export async function seed(srv: TestServer, key: string): Promise<Map<string, Seeded>> {
  const out = new Map<string, Seeded>();
  for (const [name, body] of SEED) {
    const res = await srv.request('POST', '/api/v1/events', body, key);
    if (res.status !== 201) throw new Error(`seeding ${name}: ${res.status} ${JSON.stringify(res.body)}`);
    const r = res.body as { id: string; leafIndex: number; recordedAt: string };
    out.set(name, { name, body, id: r.id, leafIndex: r.leafIndex, recordedAt: r.recordedAt });
  }
  return out;
}

/** The seeded events named, in report order: (recordedAt, id). */
export function inOrder(seeded: Map<string, Seeded>, names: string[]): Seeded[] {
  return names.map((n) => seeded.get(n)!).sort((a, b) => (a.recordedAt === b.recordedAt ? (a.id < b.id ? -1 : 1) : a.recordedAt < b.recordedAt ? -1 : 1));
}
