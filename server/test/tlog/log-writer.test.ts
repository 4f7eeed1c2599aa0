/**
 * The log writer: one statement writes the caller's rows, the new nodes, the checkpoint and the
 * head; a failing row statement leaves the log exactly as it was (the transaction rolls back).
 */
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { createOrganization } from '../../src/auth/organizations';
import {
  appendLeaves,
  formatCheckpoint,
  generateSignerKey,
  leafHash,
  openCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from '../../src/ledger';
import { LogWriter } from '../../src/tlog/log-writer';
import { readHead, readNodes, latestCheckpoint } from '../../src/tlog/repository';
import { migratedServerDataDir } from '../helpers/migrated-pglite';

describe('LogWriter', () => {
  let database: Database;
  let org: string;
  const keys = generateSignerKey('test.audit');
  const signer = parseSignerKey(keys.signerKey);
  const writer = new LogWriter({
    signCheckpoint: (o, size, rootHash) => signNote(formatCheckpoint({ origin: `test/${o}`, size, rootHash }), [signer]),
    keyId: signer.keyId.toString('hex'),
  });
  const leaves = (n: number, from: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${from + i}`)));

  beforeAll(async () => {
    // From the cached migrated data directory: no initdb, and migrate finds nothing to apply.
    database = await openDatabase({ loadDataDir: await migratedServerDataDir() });
    await migrate(database);
    org = (await createOrganization(database, 'log-writer')).id;
  }, 180_000);
  afterAll(() => database?.close());

  it('writes nodes, checkpoint and head of an append in the caller transaction', async () => {
    const first = leaves(5, 0);
    const out = await database.db.transaction(async (tx) => {
      const head = await writer.lock(tx, org);
      expect(head.size).toBe(0);
      return writer.append(tx, org, head, first, []);
    });
    const expected = appendLeaves(0, [], first);
    expect(out.size).toBe(5);
    expect(out.root.equals(expected.root)).toBe(true);
    const head = await readHead(database.db, org);
    expect(head?.size).toBe(5);
    expect(head?.rootHash.equals(expected.root)).toBe(true);
    expect(await readNodes(database.db, org, expected.nodes)).toEqual(expected.nodes.map((n) => n.hash));
    const cp = await latestCheckpoint(database.db, org);
    expect(cp?.treeSize).toBe(5);
    const opened = openCheckpoint(cp!.note, [parseVerifierKey(keys.verifierKey)]);
    expect(opened.checkpoint.rootHash.equals(expected.root)).toBe(true);
  });

  it('rolls everything back when one of the caller rows fails', async () => {
    const before = await readHead(database.db, org);
    await expect(
      database.db.transaction(async (tx) => {
        const head = await writer.lock(tx, org);
        // A row that violates a CHECK constraint: the whole statement, nodes and head included, fails.
        const bad = sql`INSERT INTO ledger_alerts (organization_id, id, kind, reason) VALUES (${org}::uuid, gen_random_uuid(), 'not-a-kind', 'x')`;
        return writer.append(tx, org, head, leaves(3, 5), [bad]);
      }),
    ).rejects.toThrow();
    const after = await readHead(database.db, org);
    expect(after?.size).toBe(before?.size);
    expect(after?.rootHash.equals(before!.rootHash)).toBe(true);
    expect((await latestCheckpoint(database.db, org))?.treeSize).toBe(5);
  });

  it('refuses an append of no leaves', async () => {
    await expect(
      database.db.transaction(async (tx) => writer.append(tx, org, await writer.lock(tx, org), [], [])),
    ).rejects.toThrow(new RangeError('append needs at least one leaf'));
  });

  it('answers the newest checkpoint note, and an empty note for a log without one', async () => {
    const fresh = (await createOrganization(database, 'no checkpoint yet')).id;
    expect(await database.db.transaction((tx) => writer.latestNote(tx, fresh))).toBe('');
    const note = await database.db.transaction((tx) => writer.latestNote(tx, org));
    expect(note).toBe((await latestCheckpoint(database.db, org))!.note);
    expect(openCheckpoint(note, [parseVerifierKey(keys.verifierKey)]).checkpoint.size).toBe(5);
  });
});
