/**
 * Line breaking of PDF table cells, done once per cell with cached glyph advances.
 *
 * A report of thousands of rows must not measure text the slow way (pdfkit's wrapper measured
 * every word with a kerning lookup per glyph pair, twice per cell). Here a cell is broken into
 * lines from the advance of each character, cached per font, and the PDF writer (pdf-report.ts)
 * draws each line as it is. Kerning is not applied when drawing either, so a line is exactly as
 * wide as measured and never overflows its cell.
 */

/** The advance of one character in the current font and size, in points. */
export type CharWidth = (ch: string) => number;

/**
 * Breaks `text` into lines no wider than `maxWidth`: at spaces, and after a hyphen or a slash inside
 * a word (UUIDs, `Patient/123`, as UAX #14 line breaking does), greedy as a reader expects; a
 * piece wider than the cell on its own is cut by characters. Newlines in the text end a line.
 * Never returns an empty list: an empty cell is one empty line.
 */
export function breakLines(text: string, maxWidth: number, width: CharWidth): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split(/\r\n|\r|\n/)) breakParagraph(paragraph, maxWidth, width, lines);
  return lines;
}

/** A word's break opportunities: after each hyphen or slash. */
const PIECES = /[^-/]*[-/]+|[^-/]+$/g;

function breakParagraph(text: string, maxWidth: number, width: CharWidth, out: string[]): void {
  const space = width(' ');
  let line = '';
  let lineWidth = 0;
  for (const word of text.split(' ')) {
    const pieces = word === '' ? [''] : (word.match(PIECES) ?? [word]);
    pieces.forEach((piece, i) => {
      // The first piece of a word follows a space; the others continue the word.
      const gap = i === 0 && line !== '' ? space : 0;
      const w = measure(piece, width);
      if (lineWidth + gap + w <= maxWidth || (line === '' && i === 0 && w <= maxWidth)) {
        line += (gap ? ' ' : '') + piece;
        lineWidth += gap + w;
        return;
      }
      if (line !== '') out.push(line);
      line = '';
      lineWidth = 0;
      if (w <= maxWidth) {
        line = piece;
        lineWidth = w;
        return;
      }
      // A piece wider than the cell: cut it by characters; its last part starts the next line.
      for (const ch of piece) {
        const cw = width(ch);
        if (line !== '' && lineWidth + cw > maxWidth) {
          out.push(line);
          line = '';
          lineWidth = 0;
        }
        line += ch;
        lineWidth += cw;
      }
    });
  }
  out.push(line);
}

function measure(word: string, width: CharWidth): number {
  let w = 0;
  for (const ch of word) w += width(ch);
  return w;
}

/**
 * A CharWidth that asks `measureOne` once per distinct character (per font and size: make one per
 * font). Bounded by the characters a report uses, not by its length.
 */
export function cachedCharWidth(measureOne: (ch: string) => number): CharWidth {
  const cache = new Map<string, number>();
  return (ch) => {
    let w = cache.get(ch);
    if (w === undefined) {
      w = measureOne(ch);
      cache.set(ch, w);
    }
    return w;
  };
}

/**
 * At most `maxLines` of `lines`: when some are left out, the last one kept ends with `…`, cut by
 * characters until it fits `maxWidth` with it. A PDF row never grows past one page's table; the
 * whole value is in the JSON and CSV formats of the same report.
 */
export function clampLines(lines: string[], maxLines: number, maxWidth: number, width: CharWidth, ellipsis = '…'): string[] {
  if (lines.length <= maxLines) return lines;
  const kept = lines.slice(0, Math.max(1, maxLines));
  const room = maxWidth - measure(ellipsis, width);
  let last = kept[kept.length - 1]!;
  while (last !== '' && measure(last, width) > room) last = last.slice(0, -1);
  kept[kept.length - 1] = last + ellipsis;
  return kept;
}
