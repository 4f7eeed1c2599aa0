/* eslint-disable @typescript-eslint/no-unsafe-return -- JSON answers are read as `any` in these tests */
/**
 * PDF reports, checked the way a reader sees them: turned into text by `pdftotext` (title,
 * organization, range, checkpoint, the table with every leaf index, "Page n of m" on every page,
 * characters outside WinAnsi) and rendered to an image by `pdftoppm` (a real page with ink on it).
 * Debian poppler-utils; `.ci/run` installs it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

/** The PDF at `file` as text, one string per page (pdftotext separates pages with form feeds). */
function pdfPages(file: string): string[] {
  const text = execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
  return text.split('\f').filter((p) => p.trim() !== '');
}

/** Share of dark pixels of page `page`, rendered in grey at 40 dpi (a PGM parsed here). */
function inkOf(file: string, page: number, dir: string): { width: number; height: number; ink: number } {
  const prefix = path.join(dir, `page${page}`);
  execFileSync('pdftoppm', ['-gray', '-r', '40', '-f', String(page), '-l', String(page), '-singlefile', file, prefix]);
  const pgm = fs.readFileSync(`${prefix}.pgm`);
  // Binary PGM: "P5\n<w> <h>\n<max>\n" then one byte per pixel.
  const header = /^P5\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(pgm.subarray(0, 64).toString('latin1'))!;
  const [, w, h] = header.map(Number) as [number, number, number];
  const pixels = pgm.subarray(header[0].length);
  let dark = 0;
  for (const p of pixels) if (p < 128) dark++;
  return { width: w, height: h, ink: dark / pixels.length };
}

describeEachBackend('PDF reports on %s', (backend) => {
  let srv: TestServer;
  let dir: string;
  let leafIndexes: number[];
  let producer: string;
  beforeAll(async () => {
    srv = await startTestServer(backend);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'report-pdf-'));
    producer = (await srv.runtime.services.apiKeys.create(srv.organizationId, 'ehr', 'producer')).key;
    // 120 accesses to one patient: several pages of table.
    const events = Array.from({ length: 120 }, (_, i) => ({
      action: i % 2 ? 'data.read' : 'data.write',
      status: 'success',
      principalId: `clinician-${i % 7}`,
      patientId: 'p-pdf',
      targetResourceType: 'Observation',
      targetResourceId: `obs-${i}`,
      outcomeDescription: i === 5 ? 'a long description that has to wrap inside its table cell because it is much wider than the column' : undefined,
    }));
    const res = await srv.request('POST', '/api/v1/events/bulk', { events: events.slice(0, 60) }, producer);
    const res2 = await srv.request('POST', '/api/v1/events/bulk', { events: events.slice(60) }, producer);
    leafIndexes = [...res.body.results, ...res2.body.results].map((r: any) => r.receipt.leafIndex);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function pdf(body: Record<string, unknown>): Promise<{ file: string; res: Response }> {
    const res = await fetch(`${srv.url}/api/v1/reports`, {
      method: 'POST',
      headers: { authorization: `Bearer ${srv.adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...body, format: 'pdf' }),
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const file = path.join(dir, `${Math.random().toString(36).slice(2)}.pdf`);
    fs.writeFileSync(file, bytes);
    return { file, res };
  }

  it('has the title, organization, range, checkpoint, every leaf index and a page number on every page', async () => {
    const { file, res } = await pdf({ kind: 'patient-access', patientId: 'p-pdf' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(fs.readFileSync(file).subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const pages = pdfPages(file);
    expect(pages.length).toBeGreaterThanOrEqual(3);
    const first = pages[0]!;
    expect(first).toContain('Patient access report');
    expect(first).toContain(`default (${srv.organizationId})`);
    expect(first).toMatch(/Range \(recordedAt, UTC\): start of the log to the checkpoint below/);
    expect(first).toContain('Patient: p-pdf');
    const size = res.headers.get('x-report-checkpoint-tree-size')!;
    expect(first).toContain(`test.audit/${srv.organizationId}, tree size ${size}`);
    expect(first).toContain(`Root hash: ${res.headers.get('x-report-checkpoint-root-hash')}`);
    // Every page carries its number, and every page with table rows starts its table with the header.
    pages.forEach((p, i) => {
      expect(p).toContain(`Page ${i + 1} of ${pages.length}`);
      if (/^\s*\d+\s+\d{4}-\d{2}-\d{2}T/m.test(p)) expect(p).toMatch(/Leaf\s+Recorded \(UTC\)\s+Who/);
    });
    // Every leaf index once, at the start of a table line (rows are in (recordedAt, id) order).
    const listed = pages.join('\n').split('\n').flatMap((l) => /^\s*(\d+)\s+\d{4}-\d{2}-\d{2}T/.exec(l)?.[1] ?? []).map(Number);
    expect(listed.sort((a, b) => a - b)).toEqual([...leafIndexes].sort((a, b) => a - b));
    expect(pages.at(-1)).toMatch(/Summary — patient-access[\s\S]*Rows: 120/);
  });

  it('renders to an image: an A4 landscape page with ink on it', async () => {
    const { file } = await pdf({ kind: 'patient-access', patientId: 'p-pdf' });
    const page = inkOf(file, 1, dir);
    expect(page.width).toBeGreaterThan(page.height); // landscape
    expect(Math.round((page.width / page.height) * 100)).toBe(141); // A4: √2
    expect(page.ink).toBeGreaterThan(0.01);
    expect(page.ink).toBeLessThan(0.5);
  });

  it('an integrity report in PDF names its checkpoints and its verdict', async () => {
    const { file, res } = await pdf({ kind: 'integrity' });
    expect(res.status).toBe(200);
    const text = pdfPages(file).join('\n');
    expect(text).toContain('Log integrity report');
    expect(text).toContain('Verification: everything verified');
    expect(text).toMatch(/checkpoint\s+120\s+/);
  });

  it('shows WinAnsi characters as they are and every other character as ?, without failing', async () => {
    const res = await srv.request(
      'POST',
      '/api/v1/events',
      { action: 'data.read', status: 'success', principalId: 'Zoë Ωmega 東京 😀 (a\\b)', patientId: 'p-unicode', outcomeDescription: '€ 5 – “ok” …' },
      producer,
    );
    expect(res.status).toBe(201);
    const { file, res: pdfRes } = await pdf({ kind: 'patient-access', patientId: 'p-unicode' });
    expect(pdfRes.status).toBe(200);
    const text = pdfPages(file).join('\n');
    expect(text).toContain('Zoë ?mega ?? ? (a\\b)');
    expect(text).toContain('€ 5 – “ok” …');
    expect(text).toContain('Rows: 1');
  });

  it('cuts a row taller than a page with … and keeps every page numbered', async () => {
    const res = await srv.request(
      'POST',
      '/api/v1/events',
      { action: 'data.read', status: 'success', principalId: 'clinician-long', patientId: 'p-long', outcomeDescription: 'word '.repeat(399) + 'END' },
      producer,
    );
    expect(res.status).toBe(201);
    const { file } = await pdf({ kind: 'patient-access', patientId: 'p-long' });
    const pages = pdfPages(file);
    const text = pages.join('\n');
    expect(text).toMatch(/word w?o?r?d?…/);
    expect(text).not.toContain('END');
    pages.forEach((p, i) => expect(p).toContain(`Page ${i + 1} of ${pages.length}`));
  });

  it('an empty report is still a valid one-page PDF', async () => {
    const { file } = await pdf({ kind: 'user-activity', principalId: 'nobody' });
    const pages = pdfPages(file);
    expect(pages).toHaveLength(1);
    expect(pages[0]).toContain('User activity report');
    expect(pages[0]).toContain('Rows: 0');
    expect(pages[0]).toContain('Page 1 of 1');
  });
});
