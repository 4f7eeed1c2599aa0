/**
 * Retention policy changes:
 * - replaced from two transactions at once, the later replacement waits for the earlier and wins,
 *   and neither fails (found by the API fuzz test: a tRPC batch of two `retention.setPolicies`
 *   calls answered one with a 500, SQLSTATE 23505, on PostgreSQL). Only replacements of the same
 *   organization wait for each other;
 * - through the API, a change and its `retention.policies.update` event commit in one transaction:
 *   a change the database refuses leaves no event, and the log's last event describes the policies
 *   in force.
 */
import { isDeepStrictEqual } from 'node:util';
import { createOrganization } from '../../src/auth/organizations';
import { listPolicies, replacePolicies } from '../../src/retention/repository';
import { describeEachBackend, describePostgres, type BackendName } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';
import { startTestServer, type TestServer } from '../helpers/server';
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

/** Replaces the policies in a transaction of its own, as the append transaction that carries them does. */
const replace = (
  idb: InstrumentedDatabase,
  ...args: Parameters<typeof replacePolicies> extends [unknown, ...infer R] ? R : never
) => idb.database.db.transaction((tx) => replacePolicies(tx, ...args));

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
    const earlier = replace(idb, org, EARLIER, 'earlier');
    await waitFor(hold.reached, 'the earlier replacement to reach its COMMIT');
    const later = replace(idb, org, LATER, 'later');
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
    const held = replace(idb, org, EARLIER, 'held');
    await waitFor(hold.reached, 'the first replacement to reach its COMMIT');
    let done = false;
    const replaced = replace(idb, other, LATER, 'other').then(() => (done = true));
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

describeEachBackend('retention policies through the API on %s', (backend) => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer(backend);
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
  });

  it('stores a change with its event or not at all: a replacement the database refuses leaves no event', async () => {
    const logged = async () =>
      (await srv.request('GET', '/api/v1/events?actions=retention.policies.update&limit=100')).body.items
        .length as number;
    const eventsBefore = await logged();
    const before = (await srv.request('GET', '/api/v1/retention/policies')).body.policies;
    // Past the API's validation, as a bug would be: the CHECK of migration 0012 refuses it.
    const refused = srv.runtime.services.retention!.setPolicies(
      srv.organizationId,
      { principalId: 'p-test', principalType: 'user' },
      [{ dataClassification: 'PHI', archiveAfterDays: -1, eraseAfterDays: null }],
    );
    await expect(refused).rejects.toThrow();
    expect((await srv.request('GET', '/api/v1/retention/policies')).body.policies).toEqual(before);
    expect(await logged()).toBe(eventsBefore);
  });

  it('stores replacements sent at once in the order of their events in the log: the last event describes the policies in force', async () => {
    const versions = [1, 2, 3, 4].map((d) => [
      { dataClassification: 'PHI', archiveAfterDays: d, eraseAfterDays: 10 * d },
    ]);
    const answers = await Promise.all(
      versions.map((policies) => srv.request('PUT', '/api/v1/retention/policies', { policies })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    const logged = (await srv.request('GET', '/api/v1/events?actions=retention.policies.update&limit=10'))
      .body.items as Array<{
      leafIndex: number;
      details: { policies: unknown[] };
    }>;
    const sent = logged.filter((e) => versions.some((v) => isDeepStrictEqual(v, e.details.policies)));
    expect(sent).toHaveLength(4);
    const last = logged.reduce((a, b) => (b.leafIndex > a.leafIndex ? b : a));
    expect(sent).toContain(last);
    const inForce = (await srv.request('GET', '/api/v1/retention/policies')).body.policies;
    expect(inForce).toEqual(last.details.policies.map((p) => ({ ...(p as object), isDefault: false })));
  });
});
