/**
 * Full re-verification of one organization's ledger as stored: every leaf rebuilt from its
 * committed form, every present value re-hashed against its commitment, the tree rebuilt and its
 * root matched against the head row and the latest checkpoint, whose signature is checked with
 * the published keys. Reads events in leaf order, in pages, so memory stays flat.
 */
import { and, asc, eq, gte, lt } from 'drizzle-orm';
import type { Database } from '../db/client';
import { events, organizations } from '../db/schema';
import {
  appendLeaves,
  formatRecordedAt,
  leafBytes,
  leafHash,
  openCheckpoint,
  parseVerifierKey,
  verifyCommittedField,
} from '../ledger';
import { valuesOf } from '../events/repository';
import * as repo from './repository';

/** Result for one organization. */
export interface LedgerVerification {
  organizationId: string;
  ok: boolean;
  size: number;
  /** Present when `ok` is false: where the first inconsistency is and what it is. */
  failure?: { leafIndex?: number; checkpointSize?: number; reason: string };
  erasedFields: number;
}

const PAGE = 5000;

/** Verifies one organization. */
export async function verifyStoredLedger(database: Database, org: string): Promise<LedgerVerification> {
  const db = database.db;
  const head = await repo.readHead(db, org);
  const fail = (failure: LedgerVerification['failure'], size: number, erased: number): LedgerVerification => ({
    organizationId: org,
    ok: false,
    size,
    failure,
    erasedFields: erased,
  });
  if (!head) return fail({ reason: 'organization has no ledger head' }, 0, 0);

  let size = 0;
  let frontier: Buffer[] = [];
  let erased = 0;
  for (let start = 0; start < head.size; start += PAGE) {
    const rows = await db
      .select()
      .from(events)
      .where(and(eq(events.organizationId, org), gte(events.leafIndex, start), lt(events.leafIndex, start + PAGE)))
      .orderBy(asc(events.leafIndex));
    const hashes: Buffer[] = [];
    for (const row of rows) {
      const expected = start + hashes.length;
      if (row.leafIndex !== expected) return fail({ leafIndex: expected, reason: `leaf ${expected} is missing` }, size, erased);
      const values = valuesOf(row) as Record<string, unknown>;
      for (const [name, commitment] of Object.entries(row.commitments)) {
        const salt = row.salts[name];
        if (salt === undefined) {
          erased += 1;
          continue;
        }
        if (verifyCommittedField({ commitment, salt, value: values[name] }) !== 'ok') {
          return fail({ leafIndex: row.leafIndex, reason: `field ${name} does not match its commitment` }, size, erased);
        }
      }
      const rebuilt = leafHash(
        leafBytes({ org: row.organizationId, id: row.id, recordedAt: formatRecordedAt(row.recordedAt), fields: row.commitments }),
      );
      if (row.organizationId !== org || !rebuilt.equals(row.leafHash)) {
        return fail({ leafIndex: row.leafIndex, reason: 'leaf hash does not match the committed form' }, size, erased);
      }
      hashes.push(rebuilt);
    }
    const expectedCount = Math.min(PAGE, head.size - start);
    if (hashes.length !== expectedCount) {
      return fail({ leafIndex: start + hashes.length, reason: `leaf ${start + hashes.length} is missing` }, size, erased);
    }
    const appended = appendLeaves(size, frontier, hashes);
    size = appended.size;
    frontier = appended.frontier;
  }
  const extra = await db
    .select({ leafIndex: events.leafIndex })
    .from(events)
    .where(and(eq(events.organizationId, org), gte(events.leafIndex, head.size)))
    .orderBy(asc(events.leafIndex))
    .limit(1);
  if (extra[0]) return fail({ leafIndex: extra[0].leafIndex, reason: 'event beyond the tree head' }, size, erased);

  const root = appendLeaves(size, frontier, []).root;
  if (!root.equals(head.rootHash)) return fail({ checkpointSize: head.size, reason: 'head root does not match the rebuilt tree' }, size, erased);
  const latest = await repo.latestCheckpoint(db, org);
  if (latest) {
    const keys = (await repo.listSigningKeys(db)).map((k) => parseVerifierKey(k.verifierKey));
    try {
      const { checkpoint } = openCheckpoint(latest.note, keys);
      if (checkpoint.size !== head.size || !checkpoint.rootHash.equals(root)) {
        return fail({ checkpointSize: latest.treeSize, reason: 'latest checkpoint does not match the rebuilt tree' }, size, erased);
      }
    } catch (err) {
      return fail({ checkpointSize: latest.treeSize, reason: `latest checkpoint: ${(err as Error).message}` }, size, erased);
    }
  } else if (head.size > 0) {
    return fail({ reason: 'no checkpoint for a non-empty log' }, size, erased);
  }
  return { organizationId: org, ok: true, size, erasedFields: erased };
}

/** Verifies every organization. */
export async function verifyAllStoredLedgers(database: Database): Promise<LedgerVerification[]> {
  const orgs = await database.db.select({ id: organizations.id }).from(organizations).orderBy(organizations.createdAt);
  const out: LedgerVerification[] = [];
  for (const o of orgs) out.push(await verifyStoredLedger(database, o.id));
  return out;
}
