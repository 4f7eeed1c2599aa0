/**
 * What a failed database call means for the request that caused it. Both drivers report the
 * PostgreSQL SQLSTATE (Appendix A of the PostgreSQL manual) on the error or, through Drizzle's
 * `DrizzleQueryError`, on its `cause`. Messages are never used: they carry the query's
 * parameters (Drizzle) and often the offending value (PostgreSQL), i.e. personal data.
 */

/** Whose fault a database error is. */
export type DatabaseFault =
  /** The data of the statement was refused (class 22 data exception, 23 integrity, 54 limits). */
  | 'input'
  /** The database is unreachable, restarting, overloaded or rolled the transaction back (retry). */
  | 'transient'
  /** Anything else: a bug or a broken schema. */
  | 'internal';

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of an error or of one of its causes, or null. */
export function sqlstateOf(err: unknown): string | null {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && SQLSTATE.test(code)) return code;
  }
  return null;
}

/** A Node.js system error code (`ECONNRESET` …) of an error or one of its causes, or null. */
function systemCodeOf(err: unknown): string | null {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return null;
}

/** Connection loss as node-postgres reports it (no SQLSTATE, no system code). */
const CONNECTION_LOST = /Connection terminated|connection error|Client was closed|timeout exceeded when trying to connect/i;

/** Classifies a failed database call; see {@link DatabaseFault}. */
export function classifyDatabaseError(err: unknown): DatabaseFault {
  const state = sqlstateOf(err);
  if (state) {
    const cls = state.slice(0, 2);
    if (cls === '22' || cls === '23' || cls === '54') return 'input';
    if (cls === '08' || cls === '40' || cls === '53' || cls === '57' || cls === '58' || state === '55P03') return 'transient';
    return 'internal';
  }
  if (systemCodeOf(err)) return 'transient';
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (CONNECTION_LOST.test(e.message.split('\n', 1)[0]!)) return 'transient';
  }
  return 'internal';
}
