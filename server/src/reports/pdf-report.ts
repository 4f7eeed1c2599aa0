/**
 * A report as PDF, written page by page with the streaming writer of pdf-writer.ts: title,
 * organization, range, subject, checkpoint, the notes, a table with its header on every page, the
 * summary, and "Page n of m" on every page. Each page's content stream is built as text operators
 * (BT/Tf/Tm/Tj/ET) and rules, compressed and written when the page is full; only that page is held.
 * The total page count m is unknown until the end: every page draws it through one form XObject
 * (§8.10) whose stream is written last, so no page has to be kept or rewritten.
 *
 * Cells are broken into lines once with cell-layout.ts, on the WinAnsi text that is drawn; a row is
 * never taller than one page's table (its tallest cells end with `…`).
 */
import { breakLines, clampLines } from './cell-layout';
import { ASCENT, charWidthOf, FONTS, LINE_HEIGHT, num, PdfFile, pdfDate, pdfString, pdfTextString, toWinAnsi, widthOf, type PdfFont, type PdfSink } from './pdf-writer';
import type { OpenReport } from './service';
import type { ReportHeader, ReportSummary } from './schema';

// A4 landscape, in points.
const PAGE = { width: 841.89, height: 595.28, margin: 36 } as const;
const TABLE_SIZE = 7;
const CELL_PAD = 2;
const ELLIPSIS = toWinAnsi('…');
/** The form XObject that draws the total page count. */
const TOTAL = 'Tot';

export interface PdfOptions {
  /** FlateDecode the content streams (default true). */
  compress?: boolean;
}

/** Streams `report` as a PDF into `sink`. */
export async function renderPdf(report: OpenReport, sink: PdfSink, options: PdfOptions = {}): Promise<void> {
  const h = report.header;
  const file = new PdfFile(sink, options.compress ?? true);
  const fonts = { regular: file.allocate(), bold: file.allocate() };
  const total = file.allocate();
  const info = file.allocate();
  file.object(fonts.regular, PdfFile.fontObject('regular'));
  file.object(fonts.bold, PdfFile.fontObject('bold'));
  file.object(PdfFile.RESOURCES, `<< /ProcSet [/PDF /Text] ${PdfFile.fontDictionary(fonts)} /XObject << /${TOTAL} ${total} 0 R >> >>`);

  const pages = new Pages(file, h);
  pages.titleBlock();

  // The table.
  const width = PAGE.width - 2 * PAGE.margin;
  const sum = h.columns.reduce((n, c) => n + c.width, 0);
  const widths = h.columns.map((c) => (c.width / sum) * width);
  const header = h.columns.map((c) => toWinAnsi(c.title));
  pages.startTable(widths, header);

  let summary: ReportSummary | null = null;
  for await (const record of report.body) {
    if (record.type === 'summary') {
      summary = record;
      break;
    }
    pages.row(h.columns.map((c) => cellText(record[c.key])));
    await file.flush();
  }
  pages.endTable();
  if (summary) pages.summary(summary);
  const count = pages.finish();

  // The late-bound total, the page tree, the catalog and the metadata.
  const digits = toWinAnsi(String(count));
  file.stream(
    total,
    `/Type /XObject /Subtype /Form /BBox [0 -2 ${num(widthOf(digits, 'regular', TABLE_SIZE) + 2)} ${TABLE_SIZE + 2}] /Resources << ${PdfFile.fontDictionary(fonts)} >>`,
    Buffer.from(`BT /${FONTS.regular} ${TABLE_SIZE} Tf 0 0 Td ${pdfString(digits)} Tj ET`, 'latin1'),
  );
  file.object(PdfFile.PAGES, `<< /Type /Pages /Kids [${pages.kids.map((k) => `${k} 0 R`).join(' ')}] /Count ${count} >>`);
  file.object(PdfFile.CATALOG, `<< /Type /Catalog /Pages ${PdfFile.PAGES} 0 R >>`);
  file.object(
    info,
    `<< /Title ${pdfTextString(`${h.title} — ${h.organization.name}`)} /Author ${pdfTextString('SMEDREC Audit')} /Subject ${pdfTextString(h.kind)} ` +
      `/Producer ${pdfTextString('SMEDREC Audit')} /CreationDate ${pdfDate(new Date(h.generatedAt))} >>`,
  );
  await file.end(info);
}

function cellText(v: string | number | null | undefined): string {
  return v === null || v === undefined ? '' : toWinAnsi(String(v));
}

/** The pages: a cursor `y` from the top, the open page's content, and the page objects written so far. */
class Pages {
  readonly kids: number[] = [];
  private content = '';
  private y: number = PAGE.margin;
  private open = false;
  private font: PdfFont | null = null;
  private readonly bottom = PAGE.height - PAGE.margin;
  private readonly width = PAGE.width - 2 * PAGE.margin;
  private table: { widths: number[]; header: string[]; maxLines: number } | null = null;

  constructor(
    private readonly file: PdfFile,
    private readonly h: ReportHeader,
  ) {}

  /** Title, organization, range, subject, checkpoint, generated, notes. */
  titleBlock(): void {
    const h = this.h;
    this.paragraph(h.title, 'bold', 16);
    this.y += 3;
    const line = (label: string, value: string) => this.labelled(`${label}: `, value, 9);
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
    this.y += 3;
    for (const n of h.notes) this.paragraph(n, 'regular', TABLE_SIZE + 1);
    this.y += 6;
  }

  /** Starts the table: its header now and on every page it continues on. */
  startTable(widths: number[], header: string[]): void {
    const lineHeight = LINE_HEIGHT * TABLE_SIZE;
    const headerLines = this.cellLines(header, widths, 'bold', Infinity);
    const headerHeight = Math.max(...headerLines.map((l) => l.length)) * lineHeight + 2 * CELL_PAD;
    const room = this.bottom - PAGE.margin - headerHeight - 2 * CELL_PAD;
    this.table = { widths, header, maxLines: Math.max(1, Math.floor(room / lineHeight)) };
    this.drawRow(header, 'bold', true);
  }

  endTable(): void {
    this.table = null;
  }

  /** One table row (WinAnsi cells). */
  row(cells: string[]): void {
    this.drawRow(cells, 'regular', false);
  }

  summary(s: ReportSummary): void {
    const lines = [
      `Rows: ${s.rows}`,
      ...Object.entries(s.counts).map(([k, v]) => `${k}: ${v}`),
      ...(s.ok === undefined ? [] : [`Verification: ${s.ok ? 'everything verified' : 'FAILED'}`]),
      ...(s.failures ?? []).map((f) => `Failure (${f.kind}${f.leafIndex !== null ? `, leaf ${f.leafIndex}` : ''}${f.treeSize !== null ? `, tree size ${f.treeSize}` : ''}): ${f.reason}`),
    ];
    // Kept on one page when it fits on one.
    const needed = 10 * LINE_HEIGHT + 6 + lines.reduce((n, l) => n + this.wrap(toWinAnsi(l), 'regular', 9, this.width).length * 9 * LINE_HEIGHT, 0);
    if (this.y + needed > this.bottom && needed < this.bottom - PAGE.margin && this.open) this.endPage();
    this.y += 6;
    this.paragraph(`Summary — ${this.h.kind}`, 'bold', 10);
    for (const l of lines) this.paragraph(l, 'regular', 9);
  }

  /** Ends the last page; returns the page count. */
  finish(): number {
    this.ensurePage();
    this.endPage();
    return this.kids.length;
  }

  // --- drawing ---------------------------------------------------------------------------------

  private drawRow(cells: string[], font: PdfFont, shade: boolean): void {
    const t = this.table!;
    const lineHeight = LINE_HEIGHT * TABLE_SIZE;
    const lines = this.cellLines(cells, t.widths, font, t.maxLines);
    const height = Math.max(...lines.map((l) => l.length)) * lineHeight + 2 * CELL_PAD;
    if (this.open && this.y + height > this.bottom) {
      this.endPage();
      if (!shade) this.drawRow(t.header, 'bold', true);
    }
    this.ensurePage();
    const y = this.y;
    const top = PAGE.height - y;
    if (shade) this.content += `0.91 g ${num(PAGE.margin)} ${num(top - height)} ${num(this.width)} ${num(height)} re f 0 g\n`;
    let text = 'BT\n';
    let x = PAGE.margin;
    this.font = null;
    for (let i = 0; i < lines.length; i++) {
      const cell = lines[i]!;
      for (let n = 0; n < cell.length; n++) {
        const l = cell[n]!;
        if (l === '') continue;
        if (this.font !== font) {
          text += `/${FONTS[font]} ${TABLE_SIZE} Tf\n`;
          this.font = font;
        }
        text += `1 0 0 1 ${num(x + CELL_PAD)} ${num(top - CELL_PAD - n * lineHeight - ASCENT * TABLE_SIZE)} Tm ${pdfString(l)} Tj\n`;
      }
      x += t.widths[i]!;
    }
    this.content += `${text}ET\n0.6 G 0.3 w ${num(PAGE.margin)} ${num(top - height)} m ${num(PAGE.margin + this.width)} ${num(top - height)} l S\n`;
    this.y = y + height;
  }

  private cellLines(cells: string[], widths: number[], font: PdfFont, maxLines: number): string[][] {
    const w = charWidthOf(font);
    return cells.map((c, i) => {
      const max = (widths[i]! - 2 * CELL_PAD) / TABLE_SIZE; // measured at size 1
      return clampLines(breakLines(c, max, w), maxLines, max, w, ELLIPSIS);
    });
  }

  /** `text` wrapped to the page width, each line on the page (a new page when it is full). */
  private paragraph(text: string, font: PdfFont, size: number): void {
    for (const l of this.wrap(toWinAnsi(text), font, size, this.width)) {
      this.lineAt(size);
      this.text(PAGE.margin, l, font, size);
      this.y += LINE_HEIGHT * size;
    }
  }

  /** A bold label, then its value wrapped with a hanging indent. */
  private labelled(label: string, value: string, size: number): void {
    const l = toWinAnsi(label);
    const indent = Math.min(widthOf(l, 'bold', size), this.width / 2);
    this.wrap(toWinAnsi(value), 'regular', size, this.width - indent).forEach((v, i) => {
      this.lineAt(size);
      if (i === 0) this.text(PAGE.margin, l, 'bold', size);
      this.text(PAGE.margin + indent, v, 'regular', size);
      this.y += LINE_HEIGHT * size;
    });
  }

  private wrap(winAnsi: string, font: PdfFont, size: number, maxWidth: number): string[] {
    return breakLines(winAnsi, maxWidth / size, charWidthOf(font));
  }

  /** Room for one line of `size`: a new page when this one is full. */
  private lineAt(size: number): void {
    if (this.open && this.y + LINE_HEIGHT * size > this.bottom) this.endPage();
    this.ensurePage();
  }

  private text(x: number, winAnsi: string, font: PdfFont, size: number, y = this.y): void {
    if (winAnsi === '') return;
    this.content += `BT /${FONTS[font]} ${num(size)} Tf 1 0 0 1 ${num(x)} ${num(PAGE.height - y - ASCENT * size)} Tm ${pdfString(winAnsi)} Tj ET\n`;
  }

  private ensurePage(): void {
    if (this.open) return;
    this.open = true;
    this.content = '';
    this.y = PAGE.margin;
    this.font = null;
  }

  /** Writes the open page: its footer, its content stream and its page object. */
  private endPage(): void {
    const n = this.kids.length + 1;
    // Footer in the bottom margin: "Page n of m" on the left (m is the form XObject), title and organization on the right.
    const y = PAGE.height - PAGE.margin + 6;
    const page = toWinAnsi(`Page ${n} of `);
    this.text(PAGE.margin, page, 'regular', TABLE_SIZE, y);
    const x = PAGE.margin + widthOf(page, 'regular', TABLE_SIZE);
    this.content += `q 1 0 0 1 ${num(x)} ${num(PAGE.height - y - ASCENT * TABLE_SIZE)} cm /${TOTAL} Do Q\n`;
    const name = clampLines(this.wrap(toWinAnsi(`${this.h.title} — ${this.h.organization.name}`), 'regular', TABLE_SIZE, this.width / 2), 1, this.width / 2 / TABLE_SIZE, charWidthOf('regular'), ELLIPSIS)[0]!;
    this.text(PAGE.margin + this.width - widthOf(name, 'regular', TABLE_SIZE), name, 'regular', TABLE_SIZE, y);

    const contents = this.file.allocate();
    const pageId = this.file.allocate();
    this.file.stream(contents, '', Buffer.from(this.content, 'latin1'));
    this.file.object(
      pageId,
      `<< /Type /Page /Parent ${PdfFile.PAGES} 0 R /MediaBox [0 0 ${PAGE.width} ${PAGE.height}] /Resources ${PdfFile.RESOURCES} 0 R /Contents ${contents} 0 R >>`,
    );
    this.kids.push(pageId);
    this.content = '';
    this.open = false;
  }
}
