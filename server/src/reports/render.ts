/**
 * Renders an open report as JSON, CSV (RFC 4180) or PDF, record by record into a sink
 * that applies backpressure, so a report of any length leaves in flat memory.
 *
 * - JSON: `{"header":{…},"rows":[{…},…],"summary":{…}}`, one row per line.
 * - CSV: RFC 4180 — a header record, CRLF line breaks, fields with `"`, `,`, CR or LF quoted and
 *   `"` doubled; every record ends with the checkpoint's tree size and root hash, so each row names
 *   the signed checkpoint it was computed against. A text field that starts with `=`, `+`, `-`,
 *   `@`, TAB or CR is prefixed with `'` so spreadsheets do not run it as a formula (OWASP CSV
 *   injection); leaf indexes and numbers are written as they are.
 * - PDF (pdf-report.ts): title, organization, range, subject, checkpoint, the notes, a table with
 *   its header on every page, the summary, and "Page n of m" on every page. Pages leave as they fill.
 */
import { renderPdf as renderPdfDocument } from './pdf-report';
import type { OpenReport } from './service';
import type { ReportFormat } from './schema';

/** Where a rendered report goes: `write` resolves when the sink can take more. */
export interface ReportSink {
  write(chunk: string | Buffer): Promise<void>;
}

/** The media type of each format. */
export const REPORT_CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8; header=present',
  pdf: 'application/pdf',
};

/** Renders `report` in `format` into `sink`. */
export function renderReport(report: OpenReport, format: ReportFormat, sink: ReportSink): Promise<void> {
  switch (format) {
    case 'json':
      return renderJson(report, sink);
    case 'csv':
      return renderCsv(report, sink);
    case 'pdf':
      return renderPdf(report, sink);
  }
}

/** Streams `{"header":…,"rows":[…],"summary":…}`. */
export async function renderJson(report: OpenReport, sink: ReportSink): Promise<void> {
  const { type: _h, ...header } = report.header;
  // Rows are gathered into writes of about WRITE_CHARS, not one write per row.
  let buffer = `{"header":${JSON.stringify(header)},\n"rows":[`;
  let first = true;
  for await (const record of report.body) {
    const { type, ...rest } = record;
    if (type === 'summary') {
      await sink.write(`${buffer}\n],\n"summary":${JSON.stringify(rest)}}\n`);
      return;
    }
    buffer += (first ? '\n' : ',\n') + JSON.stringify(rest);
    first = false;
    if (buffer.length >= WRITE_CHARS) {
      await sink.write(buffer);
      buffer = '';
    }
  }
  throw new Error('report ended without a summary');
}

/** JSON and CSV leave in writes of about this many characters. */
const WRITE_CHARS = 16_384;

const FORMULA_START = /^[=+\-@\t\r]/;

/** One CSV field (RFC 4180 §2.5–2.7), with the CSV-injection guard on text. */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'number' ? String(value) : value;
  if (typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** One CSV record with its CRLF. */
export function csvRecord(fields: Array<string | number | null | undefined>): string {
  return fields.map(csvField).join(',') + '\r\n';
}

/** Streams the table as RFC 4180 CSV. */
export async function renderCsv(report: OpenReport, sink: ReportSink): Promise<void> {
  const { columns, checkpoint } = report.header;
  await sink.write(csvRecord([...columns.map((c) => c.key), 'checkpointTreeSize', 'checkpointRootHash']));
  const size = checkpoint?.treeSize ?? 0;
  const root = checkpoint?.rootHash ?? '';
  let buffer = '';
  for await (const record of report.body) {
    if (record.type === 'summary') break;
    buffer += csvRecord([...columns.map((c) => record[c.key]), size, root]);
    if (buffer.length >= WRITE_CHARS) {
      await sink.write(buffer);
      buffer = '';
    }
  }
  if (buffer) await sink.write(buffer);
}

/** Streams the PDF (pdf-report.ts). */
export function renderPdf(report: OpenReport, sink: ReportSink): Promise<void> {
  return renderPdfDocument(report, { write: (chunk) => sink.write(chunk) });
}
