import { randomBytes } from 'node:crypto';

/**
 * A UUIDv7 (RFC 9562 §5.7) whose 48-bit timestamp is `ms`. Events use their `recordedAt` here, so
 * the partition of an event can be derived from its id alone.
 */
export function uuidv7(ms: number): string {
  const b = randomBytes(16);
  b.writeUIntBE(ms, 0, 6); // unix_ts_ms, big-endian
  b[6] = (b[6]! & 0x0f) | 0x70; // version 7
  b[8] = (b[8]! & 0x3f) | 0x80; // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The millisecond timestamp inside a UUIDv7, or null when `id` is not a UUIDv7. */
export function uuidv7Time(id: string): number | null {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) return null;
  return parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** A random UUIDv4 for ids that carry no time. */
export { randomUUID as uuidv4 } from 'node:crypto';
