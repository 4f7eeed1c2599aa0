/**
 * A small streaming PDF 1.4 writer for the reports: objects are written as soon as they are
 * complete, in writes of `WRITE_BYTES` to a sink that applies backpressure; only the byte offset of
 * each object is kept (for the cross-reference table at the end), so memory does not grow with the
 * document's bytes.
 *
 * Text uses the standard Type 1 fonts Helvetica and Helvetica-Bold with WinAnsiEncoding (PDF 1.7
 * §9.6.2.2, Annex D.2): every string is mapped to WinAnsi first (`toWinAnsi`), characters the
 * encoding cannot show become `?`. Glyph advances come from the AFM metrics pdfkit ships
 * (`charWidthOf`), so the layout measures exactly what is drawn. Document-level strings (the Info
 * dictionary) are UTF-16BE text strings and keep every character.
 */
import zlib from 'node:zlib';
import PDFDocument from 'pdfkit';
import { cachedCharWidth, type CharWidth } from './cell-layout';

/** Where the bytes go: `write` resolves when the sink can take more. */
export interface PdfSink {
  write(chunk: Buffer): Promise<void>;
}

/** The two fonts of a report, by resource name. */
export const FONTS = { regular: 'F1', bold: 'F2' } as const;
export type PdfFont = keyof typeof FONTS;
const BASE_FONTS: Record<PdfFont, string> = { regular: 'Helvetica', bold: 'Helvetica-Bold' };

/** Helvetica's vertical metrics (AFM Ascender, and pdfkit's line height with its line gap), per unit of font size. */
export const ASCENT = 0.718;
export const LINE_HEIGHT = 1.156;

/** Bytes gathered before one write to the sink. */
export const WRITE_BYTES = 64 * 1024;

// Unicode → WinAnsiEncoding for the characters of 0x80–0x9F (PDF 1.7 Annex D.2); 0x20–0x7E and
// 0xA0–0xFF are the same as Latin-1.
const WIN_ANSI_HIGH: Record<number, number> = {
  0x20ac: 0x80, 0x201a: 0x82, 0x0192: 0x83, 0x201e: 0x84, 0x2026: 0x85, 0x2020: 0x86, 0x2021: 0x87, 0x02c6: 0x88,
  0x2030: 0x89, 0x0160: 0x8a, 0x2039: 0x8b, 0x0152: 0x8c, 0x017d: 0x8e, 0x2018: 0x91, 0x2019: 0x92, 0x201c: 0x93,
  0x201d: 0x94, 0x2022: 0x95, 0x2013: 0x96, 0x2014: 0x97, 0x02dc: 0x98, 0x2122: 0x99, 0x0161: 0x9a, 0x203a: 0x9b,
  0x0153: 0x9c, 0x017e: 0x9e, 0x0178: 0x9f,
};

/** The Unicode character each WinAnsi code of 0x80–0x9F stands for. */
const WIN_ANSI_HIGH_UNICODE = new Map(Object.entries(WIN_ANSI_HIGH).map(([u, b]) => [b, Number(u)]));

const PLAIN = /^[\x20-\x7e]*$/;

/**
 * `text` with every character turned into the one-byte character (code < 256) that stands for its
 * WinAnsi code: printable ASCII and Latin-1 as they are, the 27 WinAnsi characters of 0x80–0x9F
 * (€, –, —, “, ”, …) by their code, control characters as a space, anything else (Greek, CJK,
 * emoji, a lone surrogate) as `?`, one per code point. The result is a PDF string's bytes when
 * written as latin1.
 */
export function toWinAnsi(text: string): string {
  if (PLAIN.test(text)) return text;
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x20 && c <= 0x7e) || (c >= 0xa0 && c <= 0xff)) out += ch;
    else if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += ' ';
    else {
      const w = WIN_ANSI_HIGH[c];
      out += w === undefined ? '?' : String.fromCharCode(w);
    }
  }
  return out;
}

const NEEDS_ESCAPE = /[\\()]/g;

/** A PDF literal string (PDF 1.7 §7.3.4.2) of WinAnsi text from `toWinAnsi`: `\`, `(` and `)` escaped. */
export function pdfString(winAnsi: string): string {
  return `(${winAnsi.replace(NEEDS_ESCAPE, '\\$&')})`;
}

/** A PDF text string for the document's metadata: UTF-16BE with its byte order mark, as hex. */
export function pdfTextString(text: string): string {
  let hex = 'FEFF';
  for (let i = 0; i < text.length; i++) hex += text.charCodeAt(i).toString(16).padStart(4, '0').toUpperCase();
  return `<${hex}>`;
}

/** A PDF date (§7.9.4) in UTC. */
export function pdfDate(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `(D:${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z)`;
}

/** A number as a content stream wants it: at most two decimals, no exponent. */
export function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

let metrics: PDFKit.PDFDocument | null = null;
const widths = new Map<PdfFont, CharWidth>();

/**
 * The advance of one WinAnsi character (from `toWinAnsi`) at font size 1, from pdfkit's AFM metrics
 * of the standard fonts. Cached per character: bounded by the 218 characters of the encoding.
 */
export function charWidthOf(font: PdfFont): CharWidth {
  let w = widths.get(font);
  if (!w) {
    metrics ??= new PDFDocument({ autoFirstPage: false });
    const doc = metrics;
    w = cachedCharWidth((ch) => {
      // pdfkit maps Unicode to WinAnsi itself: measure the Unicode character a WinAnsi byte stands for.
      const unicode = WIN_ANSI_HIGH_UNICODE.get(ch.charCodeAt(0));
      return doc.font(BASE_FONTS[font]).fontSize(1).widthOfString(unicode === undefined ? ch : String.fromCharCode(unicode));
    });
    widths.set(font, w);
  }
  return w;
}

/** The width of WinAnsi `text` in `font` at `size`. */
export function widthOf(text: string, font: PdfFont, size: number): number {
  const w = charWidthOf(font);
  let total = 0;
  for (let i = 0; i < text.length; i++) total += w(text[i]!);
  return total * size;
}

/**
 * The file: object numbers, offsets, and the bytes on their way to the sink. Objects 1–3 are the
 * catalog, the page tree and the shared page resources; `allocate` hands out the others.
 */
export class PdfFile {
  static readonly CATALOG = 1;
  static readonly PAGES = 2;
  static readonly RESOURCES = 3;
  /** Offsets by object number (index 0 is the free-list head). */
  private readonly offsets: number[] = [0, -1, -1, -1];
  private position = 0;
  private gathered: Buffer[] = [];
  private gatheredBytes = 0;

  constructor(
    private readonly sink: PdfSink,
    /** FlateDecode content streams. */
    private readonly compress: boolean,
  ) {
    // The header, and a comment of four bytes above 127 so transports treat the file as binary (§7.5.2).
    this.emit(Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n', 'latin1'));
  }

  /** A new object number. */
  allocate(): number {
    this.offsets.push(-1);
    return this.offsets.length - 1;
  }

  /** Writes object `id` with `body` (a PDF value in ASCII). */
  object(id: number, body: string): void {
    this.offsets[id] = this.position;
    this.emit(Buffer.from(`${id} 0 obj\n${body}\nendobj\n`, 'latin1'));
  }

  /** Writes stream object `id`: `dict` entries (without `/Length` and `/Filter`) and its data. */
  stream(id: number, dict: string, data: Buffer): void {
    const body = this.compress ? zlib.deflateSync(data) : data;
    this.offsets[id] = this.position;
    this.emit(Buffer.from(`${id} 0 obj\n<< ${dict}${this.compress ? ' /Filter /FlateDecode' : ''} /Length ${body.length} >>\nstream\n`, 'latin1'));
    this.emit(body);
    this.emit(Buffer.from('\nendstream\nendobj\n', 'latin1'));
  }

  /** Hands what was gathered to the sink once there is `WRITE_BYTES` of it (or anything, with `all`). */
  async flush(all = false): Promise<void> {
    if (this.gatheredBytes === 0 || (!all && this.gatheredBytes < WRITE_BYTES)) return;
    const out = this.gathered.length === 1 ? this.gathered[0]! : Buffer.concat(this.gathered, this.gatheredBytes);
    this.gathered = [];
    this.gatheredBytes = 0;
    await this.sink.write(out);
  }

  /** Writes the cross-reference table and trailer (every allocated object must be written) and flushes. */
  async end(info: number): Promise<void> {
    const xref = this.position;
    let table = `xref\n0 ${this.offsets.length}\n0000000000 65535 f \n`;
    for (let id = 1; id < this.offsets.length; id++) {
      const at = this.offsets[id]!;
      if (at < 0) throw new Error(`PDF object ${id} was never written`);
      table += `${String(at).padStart(10, '0')} 00000 n \n`;
    }
    table += `trailer\n<< /Size ${this.offsets.length} /Root ${PdfFile.CATALOG} 0 R /Info ${info} 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
    this.emit(Buffer.from(table, 'latin1'));
    await this.flush(true);
  }

  /** The dictionary of the two standard fonts, for a resources dictionary. */
  static fontDictionary(ids: Record<PdfFont, number>): string {
    return `/Font << /${FONTS.regular} ${ids.regular} 0 R /${FONTS.bold} ${ids.bold} 0 R >>`;
  }

  /** A standard Type 1 font object's body. */
  static fontObject(font: PdfFont): string {
    return `<< /Type /Font /Subtype /Type1 /BaseFont /${BASE_FONTS[font]} /Encoding /WinAnsiEncoding >>`;
  }

  private emit(b: Buffer): void {
    this.gathered.push(b);
    this.gatheredBytes += b.length;
    this.position += b.length;
  }
}
