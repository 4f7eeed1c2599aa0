/**
 * The ledger tables' repository on a real database (PGlite, and PostgreSQL when configured),
 * without a server: heads and their frontier, nodes, checkpoints and signing keys read back
 * exactly as the log writer wrote them, and every per-organization read answers the asked
 * organization only — two logs with the same leaves must never be mixed.
 */
import { createOrganization } from '../../src/auth/organizations';
import { appendLeaves, EMPTY_ROOT, frontierNodes, generateSignerKey, leafHash, parseSignerKey } from '../../src/ledger';
import { LogWriter } from '../../src/tlog/log-writer';
import * as repo from '../../src/tlog/repository';
import { LedgerService } from '../../src/tlog/service';
import { uuidv4 } from '../../src/util/uuid';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

const ORIGIN = 'test.audit';
const leaves = (n: number, from: number, tag: string) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`${tag} leaf ${from + i}`)));
const hex = (bufs: Array<Buffer | undefined>) => bufs.map((b) => b?.toString('hex'));

describeEachBackend('ledger repository on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let writer: LogWriter;
  let ledger: LedgerService;
  let a: string;
  let b: string;
  let empty: string;
  const { signerKey } = generateSignerKey(ORIGIN);
  const all = { a: [] as Buffer[], b: [] as Buffer[] };

  /** Appends `hashes` to `org` in one transaction, as the ingest does. */
  const append = (org: string, hashes: Buffer[]) =>
    idb.database.db.transaction(async (tx) => writer.append(tx, org, await writer.lock(tx, org), hashes, []));

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend, { fromMigratedCache: true });
    ledger = new LedgerService(idb.database, parseSignerKey(signerKey), ORIGIN);
    writer = new LogWriter(ledger);
    a = (await createOrganization(idb.database, 'a')).id;
    b = (await createOrganization(idb.database, 'b')).id;
    empty = (await createOrganization(idb.database, 'empty')).id;
    // a: checkpoints at 3, 5 and 11; b: one at 6, over other leaves.
    for (const n of [3, 2, 6]) {
      const next = leaves(n, all.a.length, 'a');
      all.a.push(...next);
      await append(a, next);
    }
    all.b.push(...leaves(6, 0, 'b'));
    await append(b, all.b);
  }, 180_000);
  afterAll(async () => {
    await idb?.close();
  });

  it('reads an empty head for a new organization, and keeps it when created again', async () => {
    expect(await repo.readHead(idb.database.db, empty)).toEqual({ size: 0, rootHash: EMPTY_ROOT, frontier: [] });
    await repo.createHead(idb.database.db, a);
    expect((await repo.readHead(idb.database.db, a))?.size).toBe(11);
    expect(await repo.readHead(idb.database.db, uuidv4())).toBeNull();
  });

  it('reads the head with its frontier split into the complete subtrees left of the size', async () => {
    const expected = appendLeaves(0, [], all.a);
    const head = (await repo.readHead(idb.database.db, a))!;
    expect(head.size).toBe(11);
    expect(head.rootHash.toString('hex')).toBe(expected.root.toString('hex'));
    // 11 = 8 + 2 + 1: three subtrees.
    expect(head.frontier).toHaveLength(3);
    expect(hex(head.frontier)).toEqual(hex(expected.frontier));
    const locked = await idb.database.db.transaction((tx) => repo.lockHead(tx, a));
    expect(locked).toEqual(head);
  });

  it('refuses to lock the head of an organization that has none, naming it', async () => {
    const ghost = uuidv4();
    await expect(idb.database.db.transaction((tx) => repo.lockHead(tx, ghost))).rejects.toThrow(`organization ${ghost} has no ledger head`);
  });

  it('reads nodes of one organization in the order asked, and names a missing one', async () => {
    const tree = appendLeaves(0, [], all.a);
    const ids = [...frontierNodes(11), { level: 0, index: 10 }, { level: 0, index: 0 }, { level: 1, index: 2 }];
    const want = ids.map((id) => tree.nodes.find((n) => n.level === id.level && n.index === id.index)!.hash);
    expect(hex(await repo.readNodes(idb.database.db, a, ids))).toEqual(hex(want));
    expect(hex(await repo.readNodes(idb.database.db, b, [{ level: 0, index: 5 }]))).toEqual(hex([all.b[5]]));
    expect(await repo.readNodes(idb.database.db, a, [])).toEqual([]);
    // No node asked, no query: the receipts of a batch of new events ask for none, once per batch.
    const statements: string[] = [];
    idb.hooks.beforeStatement = (s) => void statements.push(s.text);
    try {
      const none = await idb.database.db.transaction(async (tx) => {
        const nodes = await repo.readNodes(tx, a, []);
        await repo.readNodes(tx, a, [{ level: 0, index: 0 }]);
        return nodes;
      });
      expect(none).toEqual([]);
      // Only the second call's query.
      expect(statements).toHaveLength(1);
    } finally {
      delete idb.hooks.beforeStatement;
    }
    // b has six leaves: its leaf 10 is missing, although a has one there.
    await expect(repo.readNodes(idb.database.db, b, [{ level: 0, index: 1 }, { level: 0, index: 10 }])).rejects.toThrow(`ledger node 0/10 of ${b} is missing`);
  });

  it('reads the size and nodes in one query, undefined where a node is missing, null without a head', async () => {
    const ids = [{ level: 0, index: 7 }, { level: 3, index: 0 }, { level: 0, index: 11 }];
    const tree = appendLeaves(0, [], all.a);
    const got = await repo.readNodesAndSize(idb.database.db, a, ids);
    expect(got.size).toBe(11);
    expect(hex(got.hashes)).toEqual([all.a[7]!.toString('hex'), tree.nodes.find((n) => n.level === 3 && n.index === 0)!.hash.toString('hex'), undefined]);
    const fromB = await repo.readNodesAndSize(idb.database.db, b, ids);
    expect(fromB.size).toBe(6);
    expect(hex(fromB.hashes)).toEqual([undefined, undefined, undefined]);
    expect(await repo.readNodesAndSize(idb.database.db, empty, [{ level: 0, index: 0 }])).toEqual({ size: 0, hashes: [undefined] });
    expect(await repo.readNodesAndSize(idb.database.db, uuidv4(), ids)).toEqual({ size: null, hashes: [undefined, undefined, undefined] });
  });

  it('stores each checkpoint with its root, note and key, and finds the newest, an exact size and a range', async () => {
    const keyId = parseSignerKey(signerKey).keyId.toString('hex');
    const latest = (await repo.latestCheckpoint(idb.database.db, a))!;
    expect(latest).toMatchObject({ treeSize: 11, keyId, note: ledger.signCheckpoint(a, 11, appendLeaves(0, [], all.a).root) });
    expect(latest.rootHash.toString('hex')).toBe(appendLeaves(0, [], all.a).root.toString('hex'));
    expect(latest.createdAt).toBeInstanceOf(Date);
    expect((await repo.latestCheckpoint(idb.database.db, b))?.treeSize).toBe(6);
    expect(await repo.latestCheckpoint(idb.database.db, empty)).toBeNull();
    const at5 = (await repo.checkpointAt(idb.database.db, a, 5))!;
    expect(at5.treeSize).toBe(5);
    expect(at5.rootHash.toString('hex')).toBe(appendLeaves(0, [], all.a.slice(0, 5)).root.toString('hex'));
    expect(await repo.checkpointAt(idb.database.db, a, 6)).toBeNull();
    expect(await repo.checkpointAt(idb.database.db, b, 5)).toBeNull();
    const sizes = async (org: string, from: number, to: number, limit: number) => (await repo.listCheckpoints(idb.database.db, org, from, to, limit)).map((c) => c.treeSize);
    expect(await sizes(a, 0, 100, 10)).toEqual([3, 5, 11]);
    expect(await sizes(a, 3, 11, 10)).toEqual([3, 5, 11]);
    expect(await sizes(a, 4, 10, 10)).toEqual([5]);
    expect(await sizes(a, 0, 100, 2)).toEqual([3, 5]);
    expect(await sizes(b, 0, 100, 10)).toEqual([6]);
  });

  it('registers signing keys once, retires all but the active one, and lists them all', async () => {
    const db = idb.database.db;
    await repo.registerSigningKey(db, { keyId: 'k1', name: 'first', verifierKey: 'vk1' });
    await repo.registerSigningKey(db, { keyId: 'k1', name: 'again', verifierKey: 'other' });
    await repo.registerSigningKey(db, { keyId: 'k2', name: 'second', verifierKey: 'vk2' });
    await repo.registerSigningKey(db, { keyId: 'k3', name: 'third', verifierKey: 'vk3' });
    // Registered within one millisecond they tie on notBefore: compared by key id.
    const byId = (rows: repo.SigningKeyRow[]) => [...rows].sort((x, y) => x.keyId.localeCompare(y.keyId));
    const listed = byId(await repo.listSigningKeys(db));
    expect(listed.map((k) => [k.keyId, k.name, k.verifierKey, k.notAfter])).toEqual([
      ['k1', 'first', 'vk1', null],
      ['k2', 'second', 'vk2', null],
      ['k3', 'third', 'vk3', null],
    ]);
    expect(listed.every((k) => k.notBefore instanceof Date)).toBe(true);
    expect(await repo.retireOtherKeys(db, 'k3')).toBe(2);
    // Already retired keys are not counted again.
    expect(await repo.retireOtherKeys(db, 'k3')).toBe(0);
    const after = byId(await repo.listSigningKeys(db));
    expect(after.map((k) => [k.keyId, k.notAfter === null])).toEqual([
      ['k1', false],
      ['k2', false],
      ['k3', true],
    ]);
  });
});
