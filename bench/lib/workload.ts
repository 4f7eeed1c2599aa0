/**
 * The synthetic workload: event `i` is a pure function of (seed, i), so the raw baseline inserts
 * exactly the events the batched HTTP phase sends, and a re-run sends the same data. Cardinalities
 * are chosen to look like a clinical system's audit trail: a few thousand principals, tens of
 * thousands of patients, a skewed mix of actions, mostly successes, mostly PHI.
 */

/** Actions, most frequent first (a squared-uniform pick skews towards the start). */
export const ACTIONS = [
  'data.read',
  'fhir.Patient.read',
  'fhir.Observation.read',
  'data.write',
  'auth.login.success',
  'fhir.Observation.create',
  'fhir.Patient.update',
  'auth.logout',
  'data.export',
  'fhir.MedicationRequest.create',
  'report.generate',
  'auth.login.failure',
  'consent.grant',
  'admin.user.update',
  'data.delete',
  'consent.revoke',
] as const;

/** FHIR resource types used as targets. */
export const TARGET_TYPES = [
  'Patient',
  'Observation',
  'Encounter',
  'MedicationRequest',
  'Condition',
  'DocumentReference',
  'Consent',
  'Practitioner',
] as const;

/** Number of distinct principals (`user-00000` …). */
export const PRINCIPALS = 2_000;
/** Number of distinct patients (`patient-000000` …). */
export const PATIENTS = 20_000;
/** Distinct resource ids per target type. */
export const TARGET_IDS = 50_000;
/** Events sharing one correlation id (one user request touching several resources). */
export const EVENTS_PER_CORRELATION = 4;

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG; deterministic for a given seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Principal id number `n` as the workload spells it. */
export const principalId = (n: number) => `user-${pad(n, 5)}`;
/** Patient id number `n` as the workload spells it. */
export const patientId = (n: number) => `patient-${pad(n, 6)}`;
/** Target resource id `n` of `type`. */
export const targetId = (type: string, n: number) => `${type}/${n}`;

/** The JSON body of one event, as a producer would send it to `POST /api/v1/events`. */
export interface BenchEvent {
  timestamp: string;
  action: string;
  status: 'attempt' | 'success' | 'failure';
  principalId: string;
  principalType: string;
  targetResourceType: string;
  targetResourceId: string;
  patientId?: string;
  outcomeDescription?: string;
  dataClassification: 'PUBLIC' | 'INTERNAL' | 'CONFIDENTIAL' | 'PHI';
  correlationId: string;
  sessionContext: { sessionId: string; ipAddress: string; userAgent: string };
  retentionPolicy: string;
  eventVersion: string;
  details: Record<string, unknown>;
}

// A fixed epoch for client timestamps keeps events byte-identical between runs. Office hours
// (Monday 09:00 UTC; a million events at 10 ms apart end before 12:00): at 00:00 UTC every PHI
// event fired the off-hours PHI detector, and the server appended an alert storm of its own
// (`bench:detectors --night` measures that case).
const EPOCH_MS = Date.UTC(2026, 0, 5, 9);

/** Event number `i` of the workload seeded with `seed`. */
export function makeEvent(seed: number, i: number): BenchEvent {
  const r = prng((seed ^ Math.imul(i + 1, 0x9e3779b9)) >>> 0);
  const pick = <T>(xs: readonly T[], skew = 1) => xs[Math.floor(Math.pow(r(), skew) * xs.length)]!;
  const principal = Math.floor(r() * PRINCIPALS);
  const type = pick(TARGET_TYPES, 2);
  const u = r();
  const status = u < 0.9 ? 'success' : u < 0.97 ? 'failure' : 'attempt';
  const c = r();
  const dataClassification = c < 0.55 ? 'PHI' : c < 0.75 ? 'CONFIDENTIAL' : c < 0.95 ? 'INTERNAL' : 'PUBLIC';
  const resource = Math.floor(r() * TARGET_IDS);
  const event: BenchEvent = {
    timestamp: new Date(EPOCH_MS + i * 10).toISOString(),
    action: pick(ACTIONS, 2),
    status,
    principalId: principalId(principal),
    principalType: principal % 10 === 0 ? 'service' : 'user',
    targetResourceType: type,
    targetResourceId: targetId(type, resource),
    dataClassification,
    correlationId: `corr-${pad(Math.floor(i / EVENTS_PER_CORRELATION), 8)}`,
    sessionContext: {
      sessionId: `sess-${pad(principal, 5)}-${i % 97}`,
      ipAddress: `10.${principal % 250}.${Math.floor(r() * 250)}.${1 + Math.floor(r() * 250)}`,
      userAgent: 'smedrec-web/3.4 (Mozilla/5.0 (X11; Linux x86_64))',
    },
    retentionPolicy: 'hipaa-6y',
    eventVersion: '1.0',
    details: {
      route: `/fhir/${type}/${resource}`,
      method: status === 'failure' ? 'PUT' : 'GET',
      fields: ['name', 'birthDate', 'identifier'].slice(0, 1 + Math.floor(r() * 3)),
      durationMs: Math.floor(r() * 200),
    },
  };
  if (r() < 0.8) event.patientId = patientId(Math.floor(r() * PATIENTS));
  if (status === 'failure') event.outcomeDescription = 'access denied by policy: missing purpose of use';
  return event;
}

/** Events [start, start + count) serialized as a bulk body `{"events":[…]}`, with `receipts` when given. */
export function bulkBody(seed: number, start: number, count: number, receipts?: 'full' | 'compact'): string {
  const events: BenchEvent[] = [];
  for (let i = start; i < start + count; i++) events.push(makeEvent(seed, i));
  return JSON.stringify(receipts ? { events, receipts } : { events });
}
