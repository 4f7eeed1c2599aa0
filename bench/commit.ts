/**
 * `npm run bench:commit`: CPU cost of committing events (docs/ledger-spec.md §4–§5) in-process,
 * with the same-run baselines the figures are read against:
 *
 *  - floor: `crypto.createHash('sha256')` of salt || JSON.stringify(value) per field, and the
 *    one-shot `crypto.hash` of the same bytes (what hashing alone costs, no canonicalization);
 *  - reference: `commitField` per field and `leafHash(leafBytes(…))` per event, the code an auditor
 *    reads (ledger/commitment.ts);
 *  - ingest: `commitFieldFast` per field and `prepareEvent` + `sealEvent` per event, what the
 *    server runs (events/commit-form.ts).
 *
 * Every figure is CPU time of this process read from /proc/self/stat (utime + stime) beside the
 * wall clock; the machine is shared, so CPU µs per unit is the figure to compare. Prints figures,
 * never fails on time (docs/architecture.md §9).
 */
import { createHash, hash as oneShotHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createSaltSource, prepareEvent, sealEvent } from '../server/src/events/commit-form';
import { EVENT_FIELDS, type EventInput } from '../server/src/events/schema';
import { commitField, commitFieldFast, formatRecordedAt, leafBytes, leafHash, newSalt } from '../server/src/ledger';
import { formatTable, num, section } from './lib/report';
import { sampleProcess } from './lib/server-process';
import { makeEvent } from './lib/workload';

const HELP = `Usage: npm run bench:commit -- [options]

  --events N   events per measured pass (default 20000)
  --passes N   passes per measurement, the figure is their total (default 3)
  --help       this text
`;

interface Measure {
  name: string;
  units: number;
  cpuS: number;
  wallS: number;
}

function measure(name: string, units: number, passes: number, run: () => void): Measure {
  run(); // warm-up: JIT, scratch buffers
  const cpu0 = sampleProcess(process.pid).cpuSeconds;
  const t0 = performance.now();
  for (let p = 0; p < passes; p++) run();
  const wallS = (performance.now() - t0) / 1000;
  return { name, units: units * passes, cpuS: sampleProcess(process.pid).cpuSeconds - cpu0, wallS };
}

function main(): void {
  const { values } = parseArgs({
    options: { events: { type: 'string', default: '20000' }, passes: { type: 'string', default: '3' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const count = Number(values.events);
  const passes = Number(values.passes);
  if (!Number.isInteger(count) || count < 100 || !Number.isInteger(passes) || passes < 1) throw new Error('--events ≥ 100 and --passes ≥ 1');

  // The workload's events as the schema leaves them (plain JSON), and every field value of them.
  const events = Array.from({ length: count }, (_, i) => JSON.parse(JSON.stringify(makeEvent(1, i))) as EventInput);
  const fieldValues = events.flatMap((e) => EVENT_FIELDS.flatMap((f) => (e[f] === undefined ? [] : [e[f] as unknown])));
  const salts = Array.from({ length: 1024 }, () => newSalt());
  const org = '0190c0de-0000-4000-8000-00000000be9c';
  const ids = events.map((_, i) => `0190c0de-0000-7000-8000-${String(i).padStart(12, '0')}`);
  const recordedAt = new Date(Date.UTC(2026, 0, 1));
  const recordedAtText = formatRecordedAt(recordedAt);
  let sink = 0;

  console.log(`bench:commit — node ${process.version}; ${num(count)} workload events, ${num(fieldValues.length)} field values per pass, ${passes} passes; CPU from /proc/self/stat`);

  section('per field: SHA-256(salt || UTF-8(JCS(value)))');
  const fields = [
    measure('floor: createHash, salt + JSON.stringify', fieldValues.length, passes, () => {
      fieldValues.forEach((v, i) => {
        sink += createHash('sha256').update(salts[i & 1023]!).update(JSON.stringify(v)).digest('hex').length;
      });
    }),
    measure('floor: one-shot crypto.hash of the same bytes', fieldValues.length, passes, () => {
      fieldValues.forEach((v, i) => {
        sink += oneShotHash('sha256', Buffer.concat([salts[i & 1023]!, Buffer.from(JSON.stringify(v))]), 'hex').length;
      });
    }),
    measure('reference: commitField', fieldValues.length, passes, () => {
      fieldValues.forEach((v, i) => {
        sink += commitField(salts[i & 1023]!, v).length;
      });
    }),
    measure('ingest: commitFieldFast', fieldValues.length, passes, () => {
      fieldValues.forEach((v, i) => {
        sink += commitFieldFast(salts[i & 1023]!, v).length;
      });
    }),
  ];
  print(fields, 'field', fields[0]!);

  section('per event: every field committed, then the leaf hash');
  const salt = createSaltSource();
  const perEvent = [
    measure('reference: commitField per field + leafHash(leafBytes(…))', count, passes, () => {
      events.forEach((e, i) => {
        const commitments: Record<string, string> = {};
        for (const f of EVENT_FIELDS) if (e[f] !== undefined) commitments[f] = commitField(salt(), e[f]);
        sink += leafHash(leafBytes({ org, id: ids[i]!, recordedAt: recordedAtText, fields: commitments }))[0]!;
      });
    }),
    measure('ingest: prepareEvent + sealEvent', count, passes, () => {
      events.forEach((e, i) => {
        sink += sealEvent(org, ids[i]!, recordedAt, prepareEvent(e, salt), salt, recordedAtText).leafHash[0]!;
      });
    }),
  ];
  print(perEvent, 'event', perEvent[0]!);
  if (sink === -1) console.log(sink); // keeps the work observable
}

function print(rows: Measure[], unit: string, baseline: Measure): void {
  const us = (m: Measure) => (m.cpuS * 1e6) / m.units;
  console.log(
    formatTable(
      ['measure', `CPU µs/${unit}`, `${unit}s per CPU-s`, `wall ${unit}s/s`, `CPU ÷ ${baseline === rows[0] ? 'first row' : 'baseline'}`],
      rows.map((m) => [
        m.name,
        us(m).toFixed(2),
        num(m.units / Math.max(m.cpuS, 0.01)),
        num(m.units / m.wallS),
        (m.cpuS / Math.max(baseline.cpuS, 0.01)).toFixed(2),
      ]),
    ),
  );
}

main();
