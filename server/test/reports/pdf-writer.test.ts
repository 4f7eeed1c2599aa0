/** The streaming PDF writer (server/src/reports/pdf-writer.ts) and the report layout on it. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clampLines } from '../../src/reports/cell-layout';
import { renderPdf } from '../../src/reports/pdf-report';
import { charWidthOf, PdfFile, pdfString, pdfTextString, toWinAnsi, WRITE_BYTES } from '../../src/reports/pdf-writer';
import type { OpenReport } from '../../src/reports/service';
import { REPORT_COLUMNS } from '../../src/reports/service';
import type { ReportRow, ReportSummary } from '../../src/reports/schema';

describe('toWinAnsi', () => {
  it('keeps ASCII and Latin-1, maps the WinAnsi characters of 0x80–0x9F to their codes', () => {
    expect(toWinAnsi('data.read (ok)')).toBe('data.read (ok)');
    expect(toWinAnsi('Zoë Zürich ÿ')).toBe('Zoë Zürich ÿ');
    expect(toWinAnsi('€–—“”…‘’•™ŒœŠšŽžŸƒ')).toBe(String.fromCharCode(0x80, 0x96, 0x97, 0x93, 0x94, 0x85, 0x91, 0x92, 0x95, 0x99, 0x8c, 0x9c, 0x8a, 0x9a, 0x8e, 0x9e, 0x9f, 0x83));
  });

  it('turns every other character into one ? per code point, and control characters into spaces', () => {
    expect(toWinAnsi('Ωmega 東京 😀')).toBe('?mega ?? ?');
    expect(toWinAnsi('a\tb\u0000c\u0085d')).toBe('a b c d');
    expect(toWinAnsi('lone \ud800 surrogate')).toBe('lone ? surrogate');
    for (const ch of toWinAnsi('Ωmega 東京 😀 € — \t')) expect(ch.charCodeAt(0)).toBeLessThan(256);
  });
});

describe('pdfString', () => {
  it('escapes backslash and both parentheses (PDF 1.7 §7.3.4.2)', () => {
    expect(pdfString('a(b)c\\d')).toBe('(a\\(b\\)c\\\\d)');
    expect(pdfString(')(')).toBe('(\\)\\()');
  });

  it('metadata strings are UTF-16BE with a byte order mark', () => {
    expect(pdfTextString('Aé東')).toBe('<FEFF004100E96771>');
  });
});

describe('charWidthOf', () => {
  it('measures WinAnsi bytes as the glyphs they stand for (AFM advances of Helvetica)', () => {
    const w = charWidthOf('regular');
    expect(w(' ')).toBeCloseTo(0.278, 3);
    expect(w(toWinAnsi('€'))).toBeCloseTo(0.556, 3);
    expect(w(toWinAnsi('—'))).toBeCloseTo(1, 3);
    expect(charWidthOf('bold')('A')).toBeCloseTo(0.722, 3);
  });
});

describe('clampLines', () => {
  const mono = () => 1;
  it('keeps lines that fit the limit', () => {
    expect(clampLines(['a', 'b'], 2, 5, mono)).toEqual(['a', 'b']);
  });
  it('cuts the rest and ends the last kept line with the ellipsis, within the width', () => {
    expect(clampLines(['abcde', 'fghij', 'k'], 2, 5, mono)).toEqual(['abcde', 'fghi…']);
    expect(clampLines(['ab', 'cd', 'ef'], 1, 5, mono)).toEqual(['ab…']);
  });
});

/** Reads the cross-reference table of `pdf` and checks every offset points at its object. */
function checkXref(pdf: Buffer): number {
  const text = pdf.toString('latin1');
  const startxref = Number(/startxref\n(\d+)\n%%EOF\n$/.exec(text)![1]);
  expect(text.slice(startxref, startxref + 5)).toBe('xref\n');
  const [, first, count] = /^xref\n(\d+) (\d+)\n/.exec(text.slice(startxref))!.map(Number) as [number, number, number];
  expect(first).toBe(0);
  const entries = text.slice(startxref).split('\n').slice(2, 2 + count);
  entries.slice(1).forEach((e, i) => {
    const offset = Number(e.slice(0, 10));
    expect(text.slice(offset, offset + `${i + 1} 0 obj`.length)).toBe(`${i + 1} 0 obj`);
  });
  expect(text).toContain(`/Size ${count}`);
  return count;
}

function report(rows: number, name = 'Org'): OpenReport {
  async function* body(): AsyncGenerator<ReportRow | ReportSummary, void, undefined> {
    for (let i = 0; i < rows; i++) {
      yield { type: 'row', leafIndex: i, recordedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), principalId: `u-${i}`, principalType: 'x', action: 'data.read', target: 'Observation/o', status: 'success', outcomeDescription: '', eventId: `id-${i}` };
    }
    yield { type: 'summary', rows, counts: { events: rows } };
  }
  return {
    header: {
      type: 'header',
      kind: 'patient-access',
      title: 'Patient access report',
      organization: { id: 'org', name },
      generatedAt: '2026-12-06T10:00:00.000Z',
      range: { from: null, to: null },
      subject: { patientId: 'p' },
      checkpoint: null,
      columns: REPORT_COLUMNS['patient-access'],
      notes: [],
    },
    body: body(),
  };
}

describe('renderPdf', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pdf-writer-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function render(r: OpenReport, compress: boolean): Promise<{ pdf: Buffer; writes: number[] }> {
    const chunks: Buffer[] = [];
    await renderPdf(r, { write: (b) => Promise.resolve(void chunks.push(b)) }, { compress });
    return { pdf: Buffer.concat(chunks), writes: chunks.map((c) => c.length) };
  }

  it.each([true, false])('writes a file whose cross-reference table is exact (compressed: %s)', async (compress) => {
    const { pdf, writes } = await render(report(600), compress);
    expect(pdf.subarray(0, 9).toString('latin1')).toBe('%PDF-1.4\n');
    const objects = checkXref(pdf);
    expect(objects).toBeGreaterThan(20);
    expect(pdf.toString('latin1').includes('/FlateDecode')).toBe(compress);
    // Gathered into writes of at least WRITE_BYTES (but the last), not one per object.
    writes.slice(0, -1).forEach((n) => expect(n).toBeGreaterThanOrEqual(WRITE_BYTES));
    const file = path.join(dir, `r-${compress}.pdf`);
    fs.writeFileSync(file, pdf);
    const pages = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' })
      .split('\f')
      .filter((p) => p.trim() !== '');
    expect(pages.length).toBeGreaterThan(10);
    pages.forEach((p, i) => expect(p).toContain(`Page ${i + 1} of ${pages.length}`));
    expect(execFileSync('pdfinfo', [file], { encoding: 'utf8' })).toMatch(new RegExp(`Pages:\\s+${pages.length}\\n`));
  });

  it('keeps the organization name whole in the metadata and shows ? for it on the page', async () => {
    const { pdf } = await render(report(1, 'Klinik 東京'), true);
    const file = path.join(dir, 'name.pdf');
    fs.writeFileSync(file, pdf);
    expect(execFileSync('pdfinfo', [file], { encoding: 'utf8' })).toContain('Title:           Patient access report — Klinik 東京');
    expect(execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' })).toContain('Klinik ?? (org)');
  });

  it('a sink that fails ends the render with its error', async () => {
    const r = report(3000);
    await expect(renderPdf(r, { write: () => Promise.reject(new Error('client went away')) })).rejects.toThrow('client went away');
  });

  it('an unwritten object is refused at the end', async () => {
    const file = new PdfFile({ write: () => Promise.resolve() }, false);
    file.allocate();
    await expect(file.end(1)).rejects.toThrow('PDF object 1 was never written');
  });
});
