/**
 * Retention policies replaced from two transactions at once: the later replacement waits for the
 * earlier and wins, and neither fails (found by the API fuzz test: a tRPC batch of two
 * `retention.setPolicies` calls answered one with a 500, SQLSTATE 23505, on PostgreSQL). Only
 * replacements of the same organization wait for each other.
 */
import { createOrganization } from '../../src/auth/organizations';
import { listPolicies, replacePolicies } from '../../src/retention/repository';
import { describeEachBackend, describePostgres, type BackendName } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';
import { waitFor } from '../jobs/helpers';

const EARLIER = [{ dataClassification: 'PHI', archiveAfterDays: 30, eraseAfterDays: 60 }];
const LATER = [
  { dataClassification: 'PHI', archiveAfterDays: 365, eraseAfterDays: 2190 },
  { dataClassification: 'PII', archiveAfterDays: null, eraseAfterDays: null },
];

/** A migrated database, a fresh organization per test, and the first COMMIT held on request. */
function policiesDatabase(backend: BackendName) {
  const ctx = { idb: null as unknown as InstrumentedDatabase, org: '' };
  beforeAll(async () => {
    ctx.idb = await openInstrumentedDatabase(backend, { fromMigratedCache: true });
  }, 180_000);
  beforeEach(async () => {
    for (const k of Object.keys(ctx.idb.hooks)) delete ctx.idb.hooks[k as keyof typeof ctx.idb.hooks];
    ctx.org = (await createOrganization(ctx.idb.database, 'tenant')).id;
  });
  afterAll(async () => {
    await ctx.idb?.close();
  });
  return ctx;
}

/** Holds the next transaction to finish before its COMMIT until `release()`. */
function holdFirstCommit(idb: InstrumentedDatabase) {
  const requested = new Set<number>();
  let held: number | null = null;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  idb.hooks.transactionRequested = (tx) => requested.add(tx);
  idb.hooks.beforeCommit = async (tx) => {
    if (held !== null) return;
    held = tx;
    await gate;
  };
  return { requested, reached: () => held !== null, release };
}

/** Sessions of this database waiting for a lock (PostgreSQL). */
async function lockWaiters(idb: InstrumentedDatabase): Promise<number> {
  const [row] = await idb.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
  );
  return row!.n;
}

const summary = (rows: Awaited<ReturnType<typeof listPolicies>>) =>
  rows.map(({ dataClassification, archiveAfterDays, eraseAfterDays, updatedBy }) => ({
    dataClassification,
    archiveAfterDays,
    eraseAfterDays,
    updatedBy,
  }));

describeEachBackend('retention policies on %s', (backend) => {
  const ctx = policiesDatabase(backend);

  it('replaces the policies of one organization from two transactions at once: the later waits, then wins', async () => {
    const { idb, org } = ctx;
    const hold = holdFirstCommit(idb);
    const earlier = replacePolicies(idb.database.db, org, EARLIER, 'earlier');
    await waitFor(hold.reached, 'the earlier replacement to reach its COMMIT');
    const later = replacePolicies(idb.database.db, org, LATER, 'later');
    // On the one embedded connection a transaction asked for waits for the first to end.
    const laterWaits = async () =>
      backend === 'pglite' ? hold.requested.size >= 2 : (await lockWaiters(idb)) >= 1;
    await waitFor(laterWaits, 'the later replacement to wait for the earlier');
    hold.release();
    const settled = await Promise.allSettled([earlier, later]);
    expect(settled.map((s) => (s.status === 'fulfilled' ? 'replaced' : String(s.reason)))).toEqual([
      'replaced',
      'replaced',
    ]);
    expect(summary(await listPolicies(idb.database.db, org))).toEqual(
      LATER.map((p) => ({ ...p, updatedBy: 'later' })),
    );
  });
});

// The embedded database has one connection, so every transaction waits for the one before it there.
describePostgres('retention policies on postgres, two organizations', () => {
  const ctx = policiesDatabase('postgres');

  it('does not make a replacement wait for another organization’s', async () => {
    const { idb, org } = ctx;
    const other = (await createOrganization(idb.database, 'other tenant')).id;
    const hold = holdFirstCommit(idb);
    const held = replacePolicies(idb.database.db, org, EARLIER, 'held');
    await waitFor(hold.reached, 'the first replacement to reach its COMMIT');
    let done = false;
    const replaced = replacePolicies(idb.database.db, other, LATER, 'other').then(() => (done = true));
    let waited = false;
    await waitFor(
      async () => done || (waited = (await lockWaiters(idb)) >= 1),
      'the other replacement to end or wait',
    );
    hold.release();
    await Promise.all([held, replaced]);
    expect({ done, waited }).toEqual({ done: true, waited: false });
    expect(summary(await listPolicies(idb.database.db, other))).toEqual(
      LATER.map((p) => ({ ...p, updatedBy: 'other' })),
    );
    expect(summary(await listPolicies(idb.database.db, org))).toEqual(
      EARLIER.map((p) => ({ ...p, updatedBy: 'held' })),
    );
  });
});
