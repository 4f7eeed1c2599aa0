/** `timestamptz` text is read exactly, for every storable year and any session time zone offset. */
import fc from 'fast-check';
import { parseTimestamptz } from '../../src/db/timestamps';

/** PostgreSQL's ISO output of an instant at a given UTC offset in seconds. */
function pgText(ms: number, offsetSec: number, micros: number): string {
  const local = new Date(ms + offsetSec * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  const sign = offsetSec < 0 ? '-' : '+';
  const a = Math.abs(offsetSec);
  const hh = String(Math.floor(a / 3600)).padStart(2, '0');
  const mm = Math.floor((a % 3600) / 60);
  const ss = a % 60;
  const frac = `${local.slice(20, 23)}${String(micros).padStart(3, '0')}`.replace(/0+$/, '');
  return `${local.slice(0, 10)} ${local.slice(11, 19)}${frac ? `.${frac}` : ''}${sign}${hh}${mm || ss ? `:${String(mm).padStart(2, '0')}` : ''}${ss ? `:${String(ss).padStart(2, '0')}` : ''}`;
}

describe('parseTimestamptz', () => {
  it('reads years below 100 as themselves (Date parsing read 0002 as 2001)', () => {
    expect(parseTimestamptz('0002-01-01 00:00:00+00').toISOString()).toBe('0002-01-01T00:00:00.000Z');
    expect(parseTimestamptz('0001-01-01 00:53:28+00:53:28').toISOString()).toBe('0001-01-01T00:00:00.000Z');
    expect(parseTimestamptz('9999-12-31 23:59:59.999+00').toISOString()).toBe('9999-12-31T23:59:59.999Z');
    expect(parseTimestamptz('2026-03-01 01:30:00.5-02:30').toISOString()).toBe('2026-03-01T04:00:00.500Z');
    expect(() => parseTimestamptz('yesterday')).toThrow(RangeError);
  });

  it('round-trips every millisecond of the storable range at any offset', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -62_135_596_800_000 + 86_400_000, max: 253_402_300_799_999 - 86_400_000 }),
        fc.integer({ min: -15 * 3600, max: 15 * 3600 }),
        fc.integer({ min: 0, max: 999 }),
        (ms, offset, micros) => {
          expect(parseTimestamptz(pgText(ms, offset, micros)).getTime()).toBe(ms);
        },
      ),
      { numRuns: 3000 },
    );
  });
});
