/**
 * A seeded, deterministic data set for the analytics tests and the benchmark: principals with
 * working habits (actions, targets, hours, network, browser) and planted anomalies that break them.
 */

/** mulberry32: a small seeded PRNG, so every run sees the same traffic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;

/** One principal's habits. */
export interface Habit {
  principalId: string;
  principalType: string;
  actions: readonly string[];
  targets: readonly string[];
  /** Working hours [start, end) UTC, weekdays only. */
  hours: [number, number];
  subnet: string;
  userAgent: string;
}

const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15';

/** The principals of the data set. */
export const HABITS: readonly Habit[] = [
  { principalId: 'clerk-anna', principalType: 'user', actions: ['data.read', 'data.search'], targets: ['Patient', 'Appointment'], hours: [8, 16], subnet: '10.1.1', userAgent: CHROME },
  { principalId: 'clerk-ben', principalType: 'user', actions: ['data.read', 'data.write'], targets: ['Appointment', 'Coverage'], hours: [9, 17], subnet: '10.1.2', userAgent: CHROME },
  { principalId: 'dr-chen', principalType: 'user', actions: ['data.read', 'data.write'], targets: ['Observation', 'Condition', 'Patient'], hours: [7, 19], subnet: '10.2.1', userAgent: SAFARI },
  { principalId: 'dr-diaz', principalType: 'user', actions: ['data.read', 'fhir.MedicationRequest.create'], targets: ['MedicationRequest', 'Patient'], hours: [12, 22], subnet: '10.2.2', userAgent: FIREFOX },
  { principalId: 'nurse-eva', principalType: 'user', actions: ['data.read', 'data.write'], targets: ['Observation', 'Patient'], hours: [6, 14], subnet: '10.3.1', userAgent: CHROME },
  { principalId: 'lab-sync', principalType: 'service', actions: ['data.write'], targets: ['Observation', 'DiagnosticReport'], hours: [0, 24], subnet: '10.9.9', userAgent: 'okhttp/4.12.0' },
];

/** An event as the API takes it. */
export type TrafficEvent = Record<string, unknown> & { principalId: string };

/** A normal event of `h` on a weekday of the week starting `monday` (UTC midnight). */
export function normalEvent(r: () => number, h: Habit, monday: number): TrafficEvent {
  const day = Math.floor(r() * 5);
  const hour = h.hours[0] + Math.floor(r() * (h.hours[1] - h.hours[0]));
  const ts = new Date(monday + ((day * 24 + hour) * 60 + Math.floor(r() * 60)) * 60_000);
  return {
    timestamp: ts.toISOString(),
    action: pick(r, h.actions),
    status: r() < 0.05 ? 'failure' : 'success',
    principalId: h.principalId,
    principalType: h.principalType,
    targetResourceType: pick(r, h.targets),
    targetResourceId: `res-${Math.floor(r() * 1000)}`,
    patientId: `patient-${Math.floor(r() * 500)}`,
    dataClassification: 'PHI',
    sessionContext: { ipAddress: `${h.subnet}.${1 + Math.floor(r() * 250)}`, userAgent: h.userAgent },
  };
}

/**
 * Planted anomalies: a clerk reading charts at 3 a.m. on a Sunday from an outside network with
 * curl, a doctor exporting at night with a script, a nurse signing in failing from abroad.
 */
export function plantedAnomalies(monday: number): TrafficEvent[] {
  const at = (day: number, hour: number) => new Date(monday + (day * 24 + hour) * 3_600_000 + 17 * 60_000).toISOString();
  return [
    {
      timestamp: at(6, 3),
      action: 'data.export',
      status: 'success',
      principalId: 'clerk-anna',
      principalType: 'user',
      targetResourceType: 'Bundle',
      patientId: 'patient-7',
      dataClassification: 'PHI',
      sessionContext: { ipAddress: '203.0.113.9', userAgent: 'curl/8.5.0' },
    },
    {
      timestamp: at(5, 2),
      action: 'data.export',
      status: 'success',
      principalId: 'dr-chen',
      principalType: 'user',
      targetResourceType: 'Bundle',
      dataClassification: 'PHI',
      sessionContext: { ipAddress: '198.51.100.23', userAgent: 'python-requests/2.31.0' },
    },
    {
      timestamp: at(6, 1),
      action: 'auth.login.failure',
      status: 'failure',
      principalId: 'nurse-eva',
      principalType: 'user',
      targetResourceType: 'Session',
      dataClassification: 'CONFIDENTIAL',
      sessionContext: { ipAddress: '2001:db8:beef::1', userAgent: 'Go-http-client/1.1' },
    },
  ];
}

/** Monday 2026-11-02 00:00 UTC. */
export const MONDAY = Date.UTC(2026, 10, 2);

/** `perPrincipal` normal events of every principal, spread over `weeks` weeks from MONDAY, shuffled. */
export function normalTraffic(seed: number, perPrincipal: number, weeks = 4): TrafficEvent[] {
  const r = rng(seed);
  const out: TrafficEvent[] = [];
  for (const h of HABITS) for (let i = 0; i < perPrincipal; i++) out.push(normalEvent(r, h, MONDAY + Math.floor(r() * weeks) * 7 * 86_400_000));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
