/**
 * Reading `timestamptz` values. Drizzle's date mode turns the driver's text
 * (`0002-01-01 00:00:00+00`) into a Date with `new Date(text)`, and V8's fallback parser reads
 * years below 100 as 19xx/20xx (`0002-…` became 2001-02-01): columns that can hold such years are
 * read as text and parsed here, exactly, whatever the session's TimeZone (offsets may have
 * minutes and seconds, e.g. local mean time `+00:53:28`).
 */

/** PostgreSQL's ISO output: `YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]` (DateStyle ISO). */
const PG_TIMESTAMPTZ = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/;

/** The instant of a `timestamptz` in PostgreSQL's ISO text output. @throws RangeError for other text. */
export function parseTimestamptz(text: string): Date {
  const m = PG_TIMESTAMPTZ.exec(text);
  if (!m) throw new RangeError('not a timestamptz in ISO output form');
  const [, y, mo, d, h, mi, s, frac = '', sign, oh, om = '0', os = '0'] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d)); // unlike Date.UTC, exact for years < 100
  date.setUTCHours(Number(h), Number(mi), Number(s), Number(frac.padEnd(3, '0').slice(0, 3)));
  const offset = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os)) * 1000;
  return new Date(date.getTime() - offset);
}
