/**
 * Producer keys (migration 0005): the Ed25519 public keys an organization's producers sign their
 * events with. Registered by an admin; revoked, never deleted.
 */
import { and, asc, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { producerKeys } from '../db/schema';
import { AppError } from '../errors';
import { decodeBase64Strict, producerKeyId } from '../ledger';

/** A producer key as the API returns it. */
export interface ProducerKeyInfo {
  keyId: string;
  name: string;
  publicKey: string;
  createdAt: string;
  revokedAt: string | null;
}

type Row = typeof producerKeys.$inferSelect;

function info(r: Row): ProducerKeyInfo {
  return {
    keyId: r.keyId,
    name: r.name,
    publicKey: r.publicKey.toString('base64'),
    createdAt: r.createdAt.toISOString(),
    revokedAt: r.revokedAt ? r.revokedAt.toISOString() : null,
  };
}

/** Registers a raw Ed25519 public key (standard base64 of 32 bytes); idempotent per key. */
export async function registerProducerKey(db: Db, org: string, name: string, publicKeyB64: string): Promise<ProducerKeyInfo> {
  const pk = decodeBase64Strict(publicKeyB64);
  if (pk === null || pk.length !== 32) {
    throw new AppError('BAD_REQUEST', 'publicKey must be the standard base64 of a raw 32-byte Ed25519 public key', [
      { path: 'publicKey', message: 'expected base64 of 32 bytes' },
    ]);
  }
  const keyId = producerKeyId(pk);
  await db.insert(producerKeys).values({ organizationId: org, keyId, name, publicKey: pk }).onConflictDoNothing();
  const rows = await db.select().from(producerKeys).where(and(eq(producerKeys.organizationId, org), eq(producerKeys.keyId, keyId)));
  return info(rows[0]!);
}

/** Every producer key of an organization, oldest first. */
export async function listProducerKeys(db: Db, org: string): Promise<ProducerKeyInfo[]> {
  const rows = await db.select().from(producerKeys).where(eq(producerKeys.organizationId, org)).orderBy(asc(producerKeys.createdAt), asc(producerKeys.keyId));
  return rows.map(info);
}

/** Public keys of the given, unrevoked key ids. */
export async function activeProducerKeys(db: Db, org: string, keyIds: string[]): Promise<Map<string, Buffer>> {
  if (keyIds.length === 0) return new Map();
  const rows = await db
    .select({ keyId: producerKeys.keyId, publicKey: producerKeys.publicKey })
    .from(producerKeys)
    .where(and(eq(producerKeys.organizationId, org), inArray(producerKeys.keyId, keyIds), isNull(producerKeys.revokedAt)));
  return new Map(rows.map((r) => [r.keyId, r.publicKey]));
}
