/**
 * The opaque keyset cursor of `events.query`: base64url of the JSON `[recordedAt, id]` of the
 * last row of a page. Decoding is part of the query schema, so a forged cursor is a 400 naming
 * `cursor` before anything reaches the database.
 */
import { z } from 'zod';
import { isStorableInstant } from '../util/safe-input';

/** Keyset position: (recordedAt, id) of the last row of a page. */
export interface Cursor {
  recordedAt: Date;
  id: string;
}

const payloadSchema = z.tuple([z.iso.datetime(), z.uuid()]);

/** The cursor that continues after a row. */
export function encodeCursor(recordedAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([recordedAt.toISOString(), id])).toString('base64url');
}

function decodeCursor(cursor: string): Cursor | null {
  try {
    const parsed = payloadSchema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (!parsed.success) return null;
    const [at, id] = parsed.data;
    const ms = Date.parse(at);
    return isStorableInstant(ms) ? { recordedAt: new Date(ms), id } : null;
  } catch {
    return null;
  }
}

/** A cursor as sent by a client, decoded; anything this server did not issue is rejected. */
export const cursorSchema = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_-]+$/, 'invalid cursor')
  .transform((s, ctx): Cursor => {
    const cursor = decodeCursor(s);
    if (cursor) return cursor;
    ctx.addIssue({ code: 'custom', message: 'cursor is not one this server issued' });
    return z.NEVER;
  })
  .describe('opaque; from the previous page');
