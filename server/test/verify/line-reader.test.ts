/**
 * The bundle line reader of `audit-verify bundle`: lines split on 0x0A whatever their length and
 * wherever the 1 MiB reads cut them, checked against splitting the whole file in memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { readLineBytesSync, readLinesSync } from '../../src/cli/audit-verify-bundle';

const READ = 1 << 20; // the reader's read size

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'line-reader-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What the reader must yield: every line, and the last one only when it is not empty. */
function expectedLines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let nl = bytes.indexOf(0x0a); nl >= 0; nl = bytes.indexOf(0x0a, start)) {
    out.push(bytes.subarray(start, nl));
    start = nl + 1;
  }
  if (start < bytes.length) out.push(bytes.subarray(start));
  return out;
}

let n = 0;
function writeTemp(bytes: Buffer): string {
  const file = path.join(dir, `bundle-${n++}.ndjson`);
  fs.writeFileSync(file, bytes);
  return file;
}

/** The lines of `bytes` as the reader yields them from a file. */
function read(bytes: Buffer): Buffer[] {
  // Each yielded view is valid until the next line is asked for: copy it.
  return Array.from(readLineBytesSync(writeTemp(bytes)), (line) => Buffer.from(line));
}

describe('readLineBytesSync', () => {
  it('yields lines that span several reads whole, with the lines around them', () => {
    const long = Buffer.alloc(3 * READ + 12_345, 0x61); // three and a bit reads of 'a'
    const bytes = Buffer.concat([Buffer.from('first\n'), long, Buffer.from('\nlast')]);
    const lines = read(bytes);
    expect(lines.map((l) => l.length)).toEqual([5, long.length, 4]);
    expect(lines[1]!.equals(long)).toBe(true);
    expect(lines[2]!.toString()).toBe('last');
  });

  it('cuts at a newline that is the first or the last byte of a read', () => {
    const a = Buffer.alloc(READ - 1, 0x62); // the newline after it is the read's last byte
    const b = Buffer.alloc(READ, 0x63); // its newline is the next read's first byte
    const lines = read(Buffer.concat([a, Buffer.from('\n'), b, Buffer.from('\n')]));
    expect(lines.map((l) => l.length)).toEqual([READ - 1, READ]);
    expect(lines[0]!.equals(a) && lines[1]!.equals(b)).toBe(true);
  });

  it('keeps empty lines and drops only an empty last line', () => {
    expect(read(Buffer.from('\n\nx\n\n')).map(String)).toEqual(['', '', 'x', '']);
    expect(read(Buffer.from(''))).toEqual([]);
    expect(read(Buffer.from('no newline')).map(String)).toEqual(['no newline']);
  });

  it('never cuts a multi-byte UTF-8 character that straddles a read', () => {
    // 'é' is 0xC3 0xA9: place it across the boundary of the first read.
    const bytes = Buffer.concat([Buffer.alloc(READ - 1, 0x78), Buffer.from('é\nß')]);
    expect(Array.from(readLinesSync(writeTemp(bytes))).map((l) => l.slice(-1))).toEqual(['é', 'ß']);
  });

  it('equals splitting the whole file, for lines of any length around the read size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat(40), fc.integer({ min: READ - 3, max: READ + 3 }), fc.integer({ min: 2 * READ - 2, max: 2 * READ + 2 })), { maxLength: 5 }),
        fc.boolean(),
        (lengths, trailingNewline) => {
          const parts = lengths.map((len, i) => Buffer.alloc(len, 0x30 + (i % 10)));
          const bytes = Buffer.concat(parts.flatMap((p, i) => (i < parts.length - 1 || trailingNewline ? [p, Buffer.from('\n')] : [p])));
          const got = read(bytes);
          const want = expectedLines(bytes);
          expect(got.length).toBe(want.length);
          got.forEach((line, i) => expect(line.equals(want[i]!)).toBe(true));
        },
      ),
      { numRuns: 40 },
    );
  });
});
