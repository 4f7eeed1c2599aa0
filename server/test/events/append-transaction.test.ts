/**
 * The two promises at the top of the ingest path (docs/architecture.md §3), held at the driver:
 * a receipt exists only after the database acknowledged the COMMIT of the transaction that wrote
 * its event, and an append transaction holds its organization's head row lock before it writes
 * anything, so concurrent appenders (two services on one database, as two replicas are) never
 * place two leaves at one index. Runs on the embedded default (PGlite) and on PostgreSQL.
 */
import { createOrganization } from '../../src/auth/organizations';
import { IngestService } from '../../src/events/ingest';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { eventInputSchemaFor, type EventInput, type Receipt } from '../../src/events/schema';
import { generateSignerKey, parseSignerKey } from '../../src/ledger';
import { LedgerService } from '../../src/tlog/service';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';
import { verifyReceipt } from '../helpers/receipts';

const ORIGIN = 'test.audit';
const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);
const event = (i: number): EventInput =>
  schema.parse({
    action: 'data.read',
    status: 'success',
    dataClassification: 'INTERNAL',
    principalId: `p-${i}`,
  });
const WRITE = /^\s*(with|insert|update|delete)\b/i;

/** A promise resolved from outside. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending callback that needs no I/O run (timers of 0 ms and immediates included). */
async function settleCallbacks(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

/** Polls `condition` until true; fails with `what` after `ms` (a hang, not a timing assertion). */
async function waitFor(
  what: string,
  condition: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describeEachBackend('append transaction on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let org: string;
  const { signerKey, verifierKey } = generateSignerKey(ORIGIN);
  const ledger = () => new LedgerService(idb.database, parseSignerKey(signerKey), ORIGIN);
  const service = () => new IngestService(idb.database, ledger(), { maxBatch: 10, maxWaitMs: 0 });

  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend, { fromMigratedCache: true });
  }, 180_000);
  beforeEach(async () => {
    for (const k of Object.keys(idb.hooks)) delete idb.hooks[k as keyof typeof idb.hooks];
    org = (await createOrganization(idb.database, 'tenant')).id;
  });
  afterAll(async () => {
    await idb?.close();
  });

  it('resolves no receipt while its COMMIT is held, and each receipt only after the driver acknowledged COMMIT', async () => {
    const ingest = service();
    const atCommit = deferred<number>();
    const release = deferred();
    const committed = new Set<number>();
    idb.hooks.beforeCommit = async (tx) => {
      atCommit.resolve(tx);
      await release.promise;
    };
    idb.hooks.afterCommit = (tx) => committed.add(tx);

    const outcomes: string[] = [];
    const promises = ingest.append(org, [event(1), event(2), event(3)]).map((p) =>
      p.then(
        (r) => {
          // Checked synchronously when the receipt is handed out.
          outcomes.push(committed.size > 0 ? 'receipt after commit' : 'receipt BEFORE commit');
          return r;
        },
        (err: unknown) => {
          outcomes.push(`rejected: ${String(err)}`);
          throw err;
        },
      ),
    );
    const tx = await atCommit.promise;
    await settleCallbacks();
    expect(outcomes).toEqual([]); // COMMIT is held: nothing may have been answered
    if (backend === 'postgres') {
      // Another session does not see the rows yet: they really are uncommitted.
      expect(
        await idb.query('SELECT count(*)::int AS n FROM events WHERE organization_id = $1', [org]),
      ).toEqual([{ n: 0 }]);
    }
    release.resolve();
    const receipts = await Promise.all(promises);
    expect(committed.has(tx)).toBe(true);
    expect(outcomes).toEqual(['receipt after commit', 'receipt after commit', 'receipt after commit']);
    for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
    await ingest.drain();
  });

  it('holds the head row lock before the first write of every append transaction', async () => {
    const ingest = service();
    const seen: Array<{ tx: number; locked: boolean }> = [];
    const checked = new Set<number>();
    idb.hooks.beforeStatement = async (s) => {
      if (!WRITE.test(s.text) || checked.has(s.tx)) return;
      checked.add(s.tx);
      // SELECT … FOR UPDATE stamps the row with the locking transaction's id (xmax) before any write.
      const [row] = await s.query<{ locked: boolean }>(
        `SELECT xmax = pg_current_xact_id()::xid AS locked FROM ledger_heads WHERE organization_id = '${org}'`,
      );
      seen.push({ tx: s.tx, locked: row!.locked });
    };
    await Promise.all(ingest.append(org, [event(1)]));
    await Promise.all(ingest.append(org, [event(2), event(3)]));
    expect(seen.length).toBe(2);
    expect(seen.map((s) => s.locked)).toEqual([true, true]);
    await ingest.drain();
  });

  it('places concurrent appenders of two services (two replicas) at distinct, contiguous leaf indexes', async () => {
    const a = service();
    const b = service();
    // The first append transaction to reach a write waits there until the other one has either
    // reached its own write (then both read the head: only the lock keeps them apart) or is
    // blocked behind the first one's lock (PostgreSQL) or connection (PGlite).
    const writers: number[] = [];
    const begun = new Set<number>();
    let first: number | null = null;
    const blocked = async (): Promise<boolean> => {
      // On the one embedded connection, a transaction asked for waits for the first to end.
      if (backend === 'pglite') return begun.size >= 2 || writers.length >= 2;
      const rows = await idb.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return rows[0]!.n >= 1 || writers.length >= 2;
    };
    idb.hooks.transactionRequested = (tx) => begun.add(tx);
    idb.hooks.beforeStatement = async (s) => {
      if (!WRITE.test(s.text) || writers.includes(s.tx)) return;
      writers.push(s.tx);
      if (first === null) {
        first = s.tx;
        await waitFor('the second appender to reach its write or wait for the lock', blocked);
      }
    };
    await appendBoth();

    async function appendBoth(): Promise<void> {
      const settled = await Promise.allSettled([...a.append(org, [event(1)]), ...b.append(org, [event(2)])]);
      expect(settled.map((s) => (s.status === 'fulfilled' ? 'receipt' : String(s.reason)))).toEqual([
        'receipt',
        'receipt',
      ]);
      const receipts = settled.map((s) => (s as PromiseFulfilledResult<Receipt>).value);
      expect(receipts.map((r) => r.leafIndex).sort()).toEqual([0, 1]);
      for (const r of receipts) verifyReceipt(r, verifierKey, `${ORIGIN}/${org}`);
      // The stored log agrees: two leaves, and the last checkpoint covers both.
      const checkpoint = await ledger().checkpoint(org);
      expect(checkpoint.treeSize).toBe(2);
      const leaves = await idb.query<{ leaf_index: string }>(
        'SELECT leaf_index::text FROM events WHERE organization_id = $1 ORDER BY 1',
        [org],
      );
      expect(leaves.map((l) => l.leaf_index)).toEqual(['0', '1']);
    }
    await a.drain();
    await b.drain();
  });
});
