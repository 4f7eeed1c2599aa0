import { customType } from 'drizzle-orm/pg-core';

/**
 * `bytea` as a Node Buffer. node-postgres returns Buffers, PGlite returns Uint8Arrays;
 * both are normalized here so repositories see one type.
 */
export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array | string }>({
  dataType: () => 'bytea',
  toDriver: (value) => value,
  fromDriver: (value) =>
    typeof value === 'string'
      ? Buffer.from(value.startsWith('\\x') ? value.slice(2) : value, 'hex')
      : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
});
