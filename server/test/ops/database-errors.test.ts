/**
 * Which database errors mean "unavailable, retry" (a 503 with Retry-After, and what the server
 * itself retries), and how the retry is bounded.
 */
import { classifyDatabaseError, databaseUnavailable, isDatabaseUnavailable, retryWhileUnavailable } from '../../src/db/errors';
import { AppError } from '../../src/errors';

const pgError = (code: string) => Object.assign(new Error('server said no'), { code });

describe('database error classification', () => {
  it.each([
    ['57P01 admin_shutdown (fast shutdown, pg_terminate_backend)', pgError('57P01')],
    ['57P02 crash_shutdown (immediate shutdown)', pgError('57P02')],
    ['57P03 cannot_connect_now (starting up, shutting down)', pgError('57P03')],
    ['08006 connection_failure', pgError('08006')],
    ['08001 sqlclient_unable_to_establish_sqlconnection', pgError('08001')],
    ['ECONNREFUSED', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['ECONNRESET', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['Connection terminated unexpectedly', new Error('Connection terminated unexpectedly')],
    ['a client that lost its connection', new Error('Client has encountered a connection error and is not queryable')],
    ['Drizzle wrapping any of them', new Error('Failed query: select 1', { cause: pgError('57P01') })],
    // Errors of Node's own modules may come from another realm (not `instanceof Error` here).
    ['a plain object from another realm', { message: 'Connection terminated unexpectedly' }],
  ])('treats %s as transient', (_name, err) => {
    expect(classifyDatabaseError(err)).toBe('transient');
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it.each([
    ['23505 unique_violation', pgError('23505'), 'input'],
    ['28P01 invalid_password', pgError('28P01'), 'internal'],
    ['3D000 invalid_catalog_name', pgError('3D000'), 'internal'],
    ['a TypeError', new TypeError('x is undefined'), 'internal'],
  ])('does not treat %s as transient', (_name, err, fault) => {
    expect(classifyDatabaseError(err)).toBe(fault);
    expect(isDatabaseUnavailable(err)).toBe(false);
  });

  it('leaves an AppError to its own code', () => {
    expect(isDatabaseUnavailable(new AppError('UNAVAILABLE', 'x'))).toBe(false);
  });

  it('names the database in the 503 it answers', () => {
    const err = databaseUnavailable();
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toBe('the database is unavailable (restarting or failing over); retry');
  });
});

describe('retryWhileUnavailable', () => {
  it('tries again while the database is unavailable, then returns the result', async () => {
    let calls = 0;
    const result = await retryWhileUnavailable(
      () => (++calls < 3 ? Promise.reject(pgError('57P03')) : Promise.resolve('ok')),
      { budgetMs: 60_000, firstDelayMs: 1 },
    );
    expect([result, calls]).toEqual(['ok', 3]);
  });

  it('never repeats an attempt that failed for another reason', async () => {
    let calls = 0;
    const failure = pgError('23505');
    await expect(retryWhileUnavailable(() => (calls++, Promise.reject(failure)), { budgetMs: 60_000, firstDelayMs: 1 })).rejects.toBe(failure);
    expect(calls).toBe(1);
  });

  it('gives up with the last error when the budget is spent (0: no retry)', async () => {
    let calls = 0;
    const failure = pgError('57P03');
    await expect(retryWhileUnavailable(() => (calls++, Promise.reject(failure)), { budgetMs: 0 })).rejects.toBe(failure);
    expect(calls).toBe(1);
  });
});
