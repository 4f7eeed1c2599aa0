/**
 * Errors are logged with their type, code and stack frames; a database error's message, detail,
 * query and parameters never reach a log line (they hold other requests' values and salts).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { openDatabase } from '../../src/db/client';
import { classifyDatabaseError, sqlstateOf } from '../../src/db/errors';
import { createLogger, serializeError } from '../../src/observability/logger';

describe('logging errors', () => {
  it('writes no parameter, value or message of a failed query, on PGlite', async () => {
    const marker = `MRK${randomBytes(6).toString('hex')}`;
    const database = await openDatabase({});
    try {
      const err = await database.db.execute(sql`SELECT ${`0000-01-01 ${marker}`}::timestamptz, ${marker}::text`).catch((e: unknown) => e);
      expect(String((err as Error).message)).toContain(marker); // what the drivers put there
      expect(sqlstateOf(err)).toMatch(/^22/);
      expect(classifyDatabaseError(err)).toBe('input');
      const lines: string[] = [];
      const logger = createLogger('info', { write: (l: string) => lines.push(l) });
      logger.error({ err }, 'internal error');
      logger.error(err as Error);
      expect(lines).toHaveLength(2);
      for (const line of lines) {
        expect(line).not.toContain(marker);
        expect(JSON.parse(line).err).toMatchObject({ type: expect.stringContaining('DrizzleQueryError'), code: expect.stringMatching(/^22/), stack: expect.stringMatching(/^\s+at /) });
      }
    } finally {
      await database.close();
    }
  });

  it('keeps the message of errors that are not about the database', () => {
    expect(serializeError(new TypeError('x is not a function'))).toMatchObject({ type: 'TypeError', message: 'x is not a function' });
    expect(serializeError('a string')).toEqual({ type: 'string' });
  });

  it('classifies outages as transient and the rest as internal', () => {
    expect(classifyDatabaseError(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe('transient');
    expect(classifyDatabaseError(new Error('Connection terminated unexpectedly'))).toBe('transient');
    expect(classifyDatabaseError(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe('transient');
    expect(classifyDatabaseError(new Error('Failed query', { cause: Object.assign(new Error('x'), { code: '23505' }) }))).toBe('input');
    expect(classifyDatabaseError(Object.assign(new Error('boom'), { code: 'XX000' }))).toBe('internal');
    expect(classifyDatabaseError(new TypeError('bug'))).toBe('internal');
  });
});
