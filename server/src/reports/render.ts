/**
 * Renders an open report as JSON, CSV (RFC 4180) or PDF (pdfkit), record by record into a sink
 * that applies backpressure, so a report of any length leaves in flat memory.
 *
 * - JSON: `{"header":{…},"rows":[{…},…],"summary":{…}}`, one row per line.
 * - CSV: RFC 4180 — a header record, CRLF line breaks, fields with `"`, `,`, CR or LF quoted and
 *   `"` doubled; every record ends with the checkpoint's tree size and root hash, so each row names
 *   the signed checkpoint it was computed against. A text field that starts with `=`, `+`, `-`,
 *   `@`, TAB or CR is prefixed with `'` so spreadsheets do not run it as a formula (OWASP CSV
 *   injection); leaf indexes and numbers are written as they are.
 * - PDF: title, organization, range, subject, checkpoint, the notes, a table repeated on every
 *   page with its header, the summary, and "Page N" on every page. Pages leave as they fill.
 */
import PDFDocument from 'pdfkit';
import { breakLines, cachedCharWidth, type CharWidth } from './cell-layout';
import type { OpenReport } from './service';
import type { ReportFormat, ReportHeader, ReportSummary } from './schema';

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
  await sink.write(`{"header":${JSON.stringify(header)},\n"rows":[`);
  let first = true;
  for await (const record of report.body) {
    const { type, ...rest } = record;
    if (type === 'summary') {
      await sink.write(`\n],\n"summary":${JSON.stringify(rest)}}\n`);
      return;
    }
    await sink.write((first ? '\n' : ',\n') + JSON.stringify(rest));
    first = false;
  }
  throw new Error('report ended without a summary');
}

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
    if (buffer.length >= 16_384) {
      await sink.write(buffer);
      buffer = '';
    }
  }
  if (buffer) await sink.write(buffer);
}

// A4 landscape, in points.
const PAGE = { width: 841.89, height: 595.28, margin: 36 } as const;
const FONT_SIZE = 7;
const PDF_WRITE_BYTES = 64 * 1024;
const CELL_PAD = 2;

/** Streams the PDF. */
export async function renderPdf(report: OpenReport, sink: ReportSink): Promise<void> {
  const h = report.header;
  const doc = new PDFDocument({
    size: 'A4',
    layout: 'landscape',
    margin: PAGE.margin,
    bufferPages: false,
    info: { Title: `${h.title} — ${h.organization.name}`, Author: 'SMEDREC Audit', Subject: h.kind, CreationDate: new Date(h.generatedAt) },
  });
  // pdfkit pushes bytes as objects complete; they are handed to the sink in order, and rows wait
  // while the sink is full (backpressure), so only the current page is ever held.
  // pdfkit emits every line of every PDF object as its own chunk (tens of thousands for a long
  // report); they are gathered into writes of PDF_WRITE_BYTES, each one socket write, not one per line.
  let pending: Promise<void> = Promise.resolve();
  let failed: unknown = null;
  let gathered: Buffer[] = [];
  let gatheredBytes = 0;
  const hand = () => {
    const out = Buffer.concat(gathered, gatheredBytes);
    gathered = [];
    gatheredBytes = 0;
    pending = pending.then(() => sink.write(out)).catch((err: unknown) => {
      failed ??= err;
    });
  };
  doc.on('data', (chunk: Buffer) => {
    gathered.push(chunk);
    gatheredBytes += chunk.length;
    if (gatheredBytes >= PDF_WRITE_BYTES) hand();
  });
  const ended = new Promise<void>((resolve) =>
    doc.on('end', () => {
      if (gatheredBytes > 0) hand();
      resolve();
    }),
  );

  const width = PAGE.width - 2 * PAGE.margin;
  const bottom = PAGE.height - PAGE.margin; // the page number sits in the bottom margin
  const total = h.columns.reduce((n, c) => n + c.width, 0);
  const widths = h.columns.map((c) => (c.width / total) * width);
  // Every page gets its number when it starts (pdfkit adds pages itself when text runs over).
  let page = 0;
  const numberPage = () => {
    page++;
    const { x, y } = doc;
    const margin = doc.page.margins.bottom;
    doc.page.margins.bottom = 0; // writing below the bottom margin must not start a new page
    doc.font('Helvetica').fontSize(FONT_SIZE);
    doc.text(`${h.title} — ${h.organization.name} — page ${page}`, PAGE.margin, PAGE.height - PAGE.margin + 4, { width, align: 'center', lineBreak: false });
    doc.page.margins.bottom = margin;
    doc.x = x;
    doc.y = y;
  };
  doc.on('pageAdded', numberPage);
  numberPage();

  // The title block.
  doc.font('Helvetica-Bold').fontSize(16).text(h.title, PAGE.margin, PAGE.margin);
  doc.moveDown(0.3).font('Helvetica').fontSize(9);
  const line = (label: string, value: string) => doc.font('Helvetica-Bold').text(`${label}: `, { continued: true }).font('Helvetica').text(value);
  line('Organization', `${h.organization.name} (${h.organization.id})`);
  line('Range (recordedAt, UTC)', `${h.range.from ?? 'start of the log'} to ${h.range.to ?? 'the checkpoint below'} (end excluded)`);
  if (h.subject) line('patientId' in h.subject ? 'Patient' : 'Principal', 'patientId' in h.subject ? h.subject.patientId : h.subject.principalId);
  if (h.checkpoint) {
    line('Checkpoint', `${h.checkpoint.origin}, tree size ${h.checkpoint.treeSize}, signed ${h.checkpoint.signedAt}`);
    line('Root hash', h.checkpoint.rootHash);
  } else {
    line('Checkpoint', 'none (the log is empty)');
  }
  line('Generated', h.generatedAt);
  doc.moveDown(0.3).fontSize(FONT_SIZE + 1);
  for (const n of h.notes) doc.text(n, { width });
  doc.moveDown(0.5);

  // Cells are broken into lines once, from cached character advances (cell-layout.ts), and each
  // line drawn as it is: pdfkit is not asked to measure or wrap a cell again.
  const charWidths = new Map<string, CharWidth>();
  const charWidthOf = (font: string) => {
    let w = charWidths.get(font);
    if (!w) {
      w = cachedCharWidth((ch) => doc.font(font).fontSize(FONT_SIZE).widthOfString(ch));
      charWidths.set(font, w);
    }
    return w;
  };
  doc.font('Helvetica').fontSize(FONT_SIZE);
  const lineHeight = doc.currentLineHeight(true);
  const drawRow = (cells: string[], font: string, shade: boolean) => {
    const width_ = charWidthOf(font);
    const lines = cells.map((c, i) => breakLines(c, widths[i]! - 2 * CELL_PAD, width_));
    const height = Math.max(...lines.map((l) => l.length)) * lineHeight + 2 * CELL_PAD;
    if (doc.y + height > bottom) {
      doc.addPage();
      if (!shade) drawHeader();
    }
    const y = doc.y;
    if (shade) doc.rect(PAGE.margin, y, width, height).fill('#e8e8e8').fillColor('black');
    let x = PAGE.margin;
    doc.font(font).fontSize(FONT_SIZE);
    lines.forEach((cellLines, i) => {
      cellLines.forEach((l, n) => {
        if (l !== '') doc.text(l, x + CELL_PAD, y + CELL_PAD + n * lineHeight, { lineBreak: false });
      });
      x += widths[i]!;
    });
    doc.moveTo(PAGE.margin, y + height).lineTo(PAGE.margin + width, y + height).lineWidth(0.3).stroke('#999999');
    doc.x = PAGE.margin;
    doc.y = y + height;
  };
  const drawHeader = () => drawRow(h.columns.map((c) => c.title), 'Helvetica-Bold', true);
  drawHeader();

  let summary: ReportSummary | null = null;
  for await (const record of report.body) {
    if (record.type === 'summary') {
      summary = record;
      break;
    }
    drawRow(h.columns.map((c) => cellText((record)[c.key])), 'Helvetica', false);
    await pending;
    if (failed) break;
  }
  if (summary) drawSummary(doc, h, summary, width, bottom);
  doc.end();
  await ended;
  await pending;
  if (failed) throw failed instanceof Error ? failed : new Error('the report sink failed');
}

function cellText(v: string | number | null | undefined): string {
  return v === null || v === undefined ? '' : String(v);
}

function drawSummary(doc: PDFKit.PDFDocument, h: ReportHeader, s: ReportSummary, width: number, bottom: number): void {
  const lines = [
    `Rows: ${s.rows}`,
    ...Object.entries(s.counts).map(([k, v]) => `${k}: ${v}`),
    ...(s.ok === undefined ? [] : [`Verification: ${s.ok ? 'everything verified' : 'FAILED'}`]),
    ...(s.failures ?? []).map((f) => `Failure (${f.kind}${f.leafIndex !== null ? `, leaf ${f.leafIndex}` : ''}${f.treeSize !== null ? `, tree size ${f.treeSize}` : ''}): ${f.reason}`),
  ];
  doc.font('Helvetica').fontSize(9);
  const needed = doc.heightOfString(lines.join('\n'), { width }) + 20;
  if (doc.y + needed > bottom && needed < bottom - PAGE.margin) doc.addPage();
  doc.x = PAGE.margin;
  doc.moveDown(0.5);
  doc.font('Helvetica-Bold').fontSize(10).text(`Summary — ${h.kind}`, { width });
  doc.font('Helvetica').fontSize(9);
  for (const l of lines) doc.text(l, { width });
}
