/**
 * What a failed database call means for the request that caused it. Both drivers report the
 * PostgreSQL SQLSTATE (Appendix A of the PostgreSQL manual) on the error or, through Drizzle's
 * `DrizzleQueryError`, on its `cause`. Messages are never used: they carry the query's
 * parameters (Drizzle) and often the offending value (PostgreSQL), i.e. personal data.
 */
import { AppError } from '../errors';

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
const CONNECTION_LOST = /Connection terminated|connection error|Client was closed|timeout exceeded when trying to connect|not queryable/i;

/**
 * Classifies a failed database call; see {@link DatabaseFault}. Transient: class 08 (connection
 * exception), 40 (rollback: serialization, deadlock), 53 (insufficient resources), 57 (operator
 * intervention: 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now — what a
 * restart, switchover or failover answers), 58 (system error), 55P03 (lock not available), a
 * Node.js system error (ECONNREFUSED, ECONNRESET …) and node-postgres' own connection-loss errors.
 */
export function classifyDatabaseError(err: unknown): DatabaseFault {
  const state = sqlstateOf(err);
  if (state) {
    const cls = state.slice(0, 2);
    if (cls === '22' || cls === '23' || cls === '54') return 'input';
    if (cls === '08' || cls === '40' || cls === '53' || cls === '57' || cls === '58' || state === '55P03') return 'transient';
    return 'internal';
  }
  if (systemCodeOf(err)) return 'transient';
  // Duck-typed, not `instanceof Error`: errors of Node's own modules may come from another realm.
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && CONNECTION_LOST.test(message.split('\n', 1)[0]!)) return 'transient';
  }
  return 'internal';
}

/** Seconds a client is asked to wait (`Retry-After`) before retrying a request the database could not serve. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

/**
 * The client-safe error for a request the database could not serve because it was unavailable
 * (a 503 with `Retry-After`): the message names the database, never the driver's error.
 */
export function databaseUnavailable(detail = 'retry'): AppError {
  return new AppError('UNAVAILABLE', `the database is unavailable (restarting or failing over); ${detail}`);
}

/** Whether `err` is a transient database error, not yet mapped to an {@link AppError}. */
export function isDatabaseUnavailable(err: unknown): boolean {
  return !(err instanceof AppError) && classifyDatabaseError(err) === 'transient';
}

/** How long {@link retryWhileUnavailable} keeps trying, and how it spaces the attempts. */
export interface DatabaseRetryOptions {
  /** Total time to keep retrying, from the first failure (0: never retry). */
  budgetMs: number;
  /** First pause; each next one doubles, up to `maxDelayMs`. */
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Runs `attempt` again, after growing pauses, while it fails with a transient database error and
 * the budget lasts; then rethrows the last error. Only for work that is safe to repeat: the
 * caller decides that (a connection that was never established, a transaction known not to have
 * committed).
 */
export async function retryWhileUnavailable<T>(attempt: () => Promise<T>, options: DatabaseRetryOptions): Promise<T> {
  const first = options.firstDelayMs ?? 50;
  const max = options.maxDelayMs ?? 1_000;
  let deadline: number | null = null;
  for (let delay = first; ; delay = Math.min(delay * 2, max)) {
    try {
      return await attempt();
    } catch (err) {
      if (classifyDatabaseError(err) !== 'transient') throw err;
      const now = Date.now();
      deadline ??= now + options.budgetMs;
      if (now + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
