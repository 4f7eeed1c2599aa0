/** Line breaking of PDF table cells (server/src/reports/cell-layout.ts). */
import PDFDocument from 'pdfkit';
import { breakLines, cachedCharWidth } from '../../src/reports/cell-layout';

// One unit per character: widths are lengths, so expectations can be read off the strings.
const mono = () => 1;

describe('breakLines', () => {
  it('keeps a cell that fits on one line', () => {
    expect(breakLines('data.read', 20, mono)).toEqual(['data.read']);
    expect(breakLines('', 20, mono)).toEqual(['']);
  });

  it('breaks at spaces, greedily', () => {
    expect(breakLines('viewed the full chart including labs', 15, mono)).toEqual(['viewed the full', 'chart including', 'labs']);
  });

  it('breaks after hyphens and slashes inside a word', () => {
    expect(breakLines('0192a3b4-c5d6-7e8f-9a0b-000000000001', 20, mono)).toEqual(['0192a3b4-c5d6-7e8f-', '9a0b-000000000001']);
    expect(breakLines('Patient/p-1234567', 10, mono)).toEqual(['Patient/p-', '1234567']);
  });

  it('cuts a piece wider than the cell by characters', () => {
    expect(breakLines('abcdefghij', 4, mono)).toEqual(['abcd', 'efgh', 'ij']);
    expect(breakLines('ab abcdefghij', 4, mono)).toEqual(['ab', 'abcd', 'efgh', 'ij']);
  });

  it('ends a line at every newline', () => {
    expect(breakLines('a\nb\r\nc', 20, mono)).toEqual(['a', 'b', 'c']);
  });

  it('never loses or reorders a character', () => {
    const text = 'principal-17 read Patient/p-9 at 2026-12-06T09:00:00.000Z: ok — 0192a3b4-c5d6-7e8f';
    for (const max of [1, 3, 7, 12, 30, 200]) {
      const lines = breakLines(text, max, mono);
      expect(lines.join('').replace(/ /g, '')).toBe(text.replace(/ /g, ''));
      for (const l of lines) expect(l.length <= max || l.length === 1).toBe(true);
    }
  });

  it('never draws a line wider than the cell in a real pdfkit font (kerning only tightens)', () => {
    const doc = new PDFDocument();
    doc.font('Helvetica').fontSize(7);
    const width = cachedCharWidth((ch) => doc.widthOfString(ch));
    const samples = ['AVAVAVAV To Ty Yo We Wa LT P. F, V.', 'patient.record.update', '0192a3b4-c5d6-7e8f-9a0b-000000000001', 'Acme Insurance (org-77) disclosed to AWAY'];
    for (const s of samples) {
      for (const max of [30, 55, 90]) {
        for (const line of breakLines(s, max, width)) expect(doc.widthOfString(line)).toBeLessThanOrEqual(max + 1e-9);
      }
    }
    doc.end();
  });
});

describe('cachedCharWidth', () => {
  it('measures each character once', () => {
    const asked: string[] = [];
    const width = cachedCharWidth((ch) => {
      asked.push(ch);
      return ch.charCodeAt(0);
    });
    expect([width('a'), width('b'), width('a')]).toEqual([97, 98, 97]);
    expect(asked).toEqual(['a', 'b']);
  });
});
