/**
 * bench/pdf-render.ts — renders one patient-access report of `--rows` synthetic rows to PDF in this
 * process, into a sink that discards the bytes, and prints wall and CPU time (process.cpuUsage) of
 * the render. For profiling the PDF writer without a database:
 *
 *   node --import tsx bench/pdf-render.ts --rows 8600 --repeat 5 [--no-compress] [--format json|csv|pdf]
 *   node --cpu-prof --cpu-prof-dir /tmp/prof --import tsx bench/pdf-render.ts --rows 8600
 *   node --expose-gc --import tsx bench/pdf-render.ts --rows 100000 --repeat 1
 *
 * With --expose-gc, every write to the sink is preceded by a full GC and the largest heapUsed seen
 * after one is printed: what the render really holds, independent of when V8 chooses to collect.
 */
import { parseArgs } from 'node:util';
import { renderPdf } from '../server/src/reports/pdf-report';
import { renderReport, type ReportSink } from '../server/src/reports/render';
import { REPORT_COLUMNS, type OpenReport } from '../server/src/reports/service';
import type { ReportFormat, ReportRow, ReportSummary } from '../server/src/reports/schema';

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '8600' },
    repeat: { type: 'string', default: '5' },
    format: { type: 'string', default: 'pdf' },
    'no-compress': { type: 'boolean', default: false },
  },
});
const ROWS = Number(args.rows);
const REPEAT = Number(args.repeat);

function report(rows: number): OpenReport {
  const start = Date.UTC(2020, 11, 1);
  async function* body(): AsyncGenerator<ReportRow | ReportSummary, void, undefined> {
    for (let i = 0; i < rows; i++) {
      yield {
        type: 'row',
        leafIndex: i * 100,
        recordedAt: new Date(start + i * 22_000_000).toISOString(),
        timestamp: '',
        principalId: `user-${(i * 7919) % 2000}`,
        principalType: 'session:clinician',
        action: ['data.read', 'data.write', 'fhir.Patient.read', 'disclosure.insurer'][i % 4]!,
        target: `Observation/obs-${i % 50000}`,
        status: i % 10 === 0 ? 'failure' : 'success',
        outcomeDescription: i % 50 === 0 ? 'a long description that has to wrap inside its table cell because it is wide' : '',
        eventId: `0192a3b4-c5d6-7e8f-9a0b-${String(i).padStart(12, '0')}`,
      };
    }
    yield { type: 'summary', rows, counts: { events: rows } };
  }
  return {
    header: {
      type: 'header',
      kind: 'patient-access',
      title: 'Patient access report',
      organization: { id: '00000000-0000-0000-0000-000000000001', name: 'Bench' },
      generatedAt: new Date().toISOString(),
      range: { from: '2020-11-30T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z' },
      subject: { patientId: 'patient-heavy' },
      checkpoint: { origin: 'bench.audit/x', treeSize: 1_000_000, rootHash: 'AAAA', note: '', signedAt: new Date().toISOString() },
      columns: REPORT_COLUMNS['patient-access'],
      notes: ['Every event recorded for this patient.', 'Each event is identified by its leaf index.'],
    },
    body: body(),
  };
}

async function main(): Promise<void> {
  for (let r = 0; r <= REPEAT; r++) {
    let bytes = 0;
    let writes = 0;
    let heapAfterGc = 0;
    const gc = (globalThis as { gc?: () => void }).gc;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const sink: ReportSink = {
      write: (chunk) => {
        if (gc) {
          gc();
          heapAfterGc = Math.max(heapAfterGc, process.memoryUsage().heapUsed);
        }
        bytes += chunk.length;
        writes++;
        return Promise.resolve();
      },
    };
    if (args.format === 'pdf') await renderPdf(report(ROWS), sink, { compress: !args['no-compress'] });
    else await renderReport(report(ROWS), args.format as ReportFormat, sink);
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    const rss = process.memoryUsage().rss;
    console.log(`${r === 0 ? 'warm-up' : `run ${r}`}: ${ROWS} rows, ${(bytes / 1024).toFixed(0)} KiB in ${writes} writes, wall ${wall.toFixed(0)} ms, CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms, rss ${(rss / 2 ** 20).toFixed(0)} MiB${gc ? `, largest heap after a GC ${(heapAfterGc / 2 ** 20).toFixed(1)} MiB` : ''}`);
  }
}

void main();
