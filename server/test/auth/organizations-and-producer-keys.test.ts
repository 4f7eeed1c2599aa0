/**
 * Tenants and their producers' keys over the database itself (PGlite, and PostgreSQL when
 * TEST_DATABASE_URL is set), no HTTP server: an organization is created with its empty ledger,
 * bootstrap creates the first organization and admin key exactly once (on PostgreSQL also when
 * two start together) and releases its lock, and producer keys are validated, idempotent, listed and looked
 * up per organization.
 */
import { and, eq } from 'drizzle-orm';
import { ApiKeyService } from '../../src/auth/api-keys';
import { bootstrap, createOrganization } from '../../src/auth/organizations';
import { activeProducerKeys, listProducerKeys, registerProducerKey } from '../../src/auth/producer-keys';
import { ledgerHeads, organizations, producerKeys } from '../../src/db/schema';
import { EMPTY_ROOT, producerKeyId } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ADVISORY_LOCKS =
  "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
/** A 32-byte public key filled with `n` (the service stores keys; it does not check the curve). */
const pk = (n: number) => Buffer.alloc(32, n);

describeEachBackend('organizations and bootstrap on %s', (backend) => {
  let idb: InstrumentedDatabase;
  beforeEach(async () => {
    idb = await openInstrumentedDatabase(backend);
  }, 120_000);
  afterEach(async () => {
    await idb?.close();
  });

  it('creates an organization with an empty ledger head', async () => {
    const org = await createOrganization(idb.database, 'Clinic A');
    expect(org.id).toMatch(UUID);
    expect(org.name).toBe('Clinic A');
    expect(await idb.database.db.select({ id: organizations.id, name: organizations.name }).from(organizations)).toEqual([org]);
    const heads = await idb.database.db.select().from(ledgerHeads).where(eq(ledgerHeads.organizationId, org.id));
    expect(heads).toHaveLength(1);
    expect(heads[0]!.size).toBe(0);
    expect(Buffer.from(heads[0]!.rootHash).equals(Buffer.from(EMPTY_ROOT))).toBe(true);
    expect(heads[0]!.frontier).toHaveLength(0);
  });

  it('bootstraps an empty database once: an organization and a generated admin key, then nothing', async () => {
    const keys = new ApiKeyService(idb.database);
    const first = await bootstrap(idb.database, keys, 'First', undefined);
    expect(first.created).toBe(true);
    expect(first.organizationId).toMatch(UUID);
    expect(first.generatedKey).toMatch(/^sak_[A-Za-z0-9_-]{43}$/);
    expect(Object.keys(first).sort()).toEqual(['created', 'generatedKey', 'organizationId']);
    const principal = await keys.authenticate(first.generatedKey!);
    expect(principal).toMatchObject({ organizationId: first.organizationId, role: 'admin', kind: 'apiKey' });
    expect((await keys.list(first.organizationId)).map((k) => k.name)).toEqual(['bootstrap admin']);
    expect((await idb.database.db.select().from(organizations))[0]!.name).toBe('First');

    const again = await bootstrap(idb.database, keys, 'Second', undefined);
    expect(again).toEqual({ organizationId: first.organizationId, created: false });
    expect(await idb.database.db.select().from(organizations)).toHaveLength(1);
  });

  it('registers the operator’s key when one is given, and does not print it back', async () => {
    const keys = new ApiKeyService(idb.database);
    const given = 'sak_operator-chosen-bootstrap-key-01';
    const result = await bootstrap(idb.database, keys, 'Given', given);
    expect(Object.keys(result).sort()).toEqual(['created', 'organizationId']);
    expect(result.created).toBe(true);
    expect(await keys.authenticate(given)).toMatchObject({ organizationId: result.organizationId, role: 'admin' });
  });

  it('holds its advisory lock while it creates the organization, and releases it and its connection whether it created one or not', async () => {
    const keys = new ApiKeyService(idb.database);
    const during: number[] = [];
    idb.hooks.beforeStatement = async (s) => {
      during.push((await s.query<{ n: number }>(ADVISORY_LOCKS))[0]!.n);
    };
    await bootstrap(idb.database, keys, 'A', undefined);
    idb.hooks.beforeStatement = undefined;
    // The organization and its ledger head are written in one transaction, under the lock.
    expect(during.length).toBeGreaterThan(0);
    expect(new Set(during)).toEqual(new Set([1]));
    expect(await advisoryLocks()).toBe(0);
    expect(checkedOut()).toBe(0);
    await bootstrap(idb.database, keys, 'A', undefined);
    expect(await advisoryLocks()).toBe(0);
    expect(checkedOut()).toBe(0);
  });

  // Replicas starting together share a PostgreSQL server; the embedded store has one process.
  if (backend === 'postgres') {
    it('creates one organization when two bootstraps run together', async () => {
      const keys = new ApiKeyService(idb.database);
      const [a, b] = await Promise.all([bootstrap(idb.database, keys, 'A', undefined), bootstrap(idb.database, keys, 'A', undefined)]);
      expect([a.created, b.created].sort()).toEqual([false, true]);
      expect(a.organizationId).toBe(b.organizationId);
      expect(await idb.database.db.select().from(organizations)).toHaveLength(1);
    });
  }

  /** Connections borrowed from the PostgreSQL pool and not given back (PGlite has no pool: 0). */
  function checkedOut(): number {
    const stats = idb.database.poolStats?.();
    return stats ? stats.total - stats.idle : 0;
  }

  async function advisoryLocks(): Promise<number> {
    return (await idb.query<{ n: number }>(ADVISORY_LOCKS))[0]!.n;
  }
});

describeEachBackend('producer keys on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let org: string;
  let other: string;
  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend);
    org = (await createOrganization(idb.database, 'producers')).id;
    other = (await createOrganization(idb.database, 'others')).id;
  }, 120_000);
  afterAll(async () => {
    await idb?.close();
  });

  it('registers a raw 32-byte key: id from the key, base64 back, not revoked', async () => {
    const info = await registerProducerKey(idb.database.db, org, 'ward 1', pk(1).toString('base64'));
    expect(info).toEqual({ keyId: producerKeyId(pk(1)), name: 'ward 1', publicKey: pk(1).toString('base64'), createdAt: info.createdAt, revokedAt: null });
    expect(info.createdAt).toMatch(ISO);
  });

  it('is idempotent per key: the first registration (and name) stays', async () => {
    const first = await registerProducerKey(idb.database.db, org, 'first name', pk(2).toString('base64'));
    const second = await registerProducerKey(idb.database.db, org, 'second name', pk(2).toString('base64'));
    expect(second).toEqual(first);
  });

  it.each([
    ['not base64', '!!!!'],
    ['31 bytes', Buffer.alloc(31, 3).toString('base64')],
    ['33 bytes', Buffer.alloc(33, 3).toString('base64')],
    ['base64url', Buffer.alloc(32, 0xfb).toString('base64url')],
  ])('refuses a public key that is %s', async (_what, value) => {
    await expect(registerProducerKey(idb.database.db, org, 'bad', value)).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: 'publicKey must be the standard base64 of a raw 32-byte Ed25519 public key',
      issues: [{ path: 'publicKey', message: 'expected base64 of 32 bytes' }],
    });
  });

  it('lists an organization’s keys oldest first (then by key id), with revocations, and only its own', async () => {
    const o = (await createOrganization(idb.database, 'listing')).id;
    // Rows written as a registration writes them, with creation times chosen (the table refuses
    // changes to them): two at the same instant, ordered by key id, and an older one first.
    const row = (n: number, createdAt: string) => ({ organizationId: o, keyId: producerKeyId(pk(n)), name: `key ${n}`, publicKey: pk(n), createdAt: new Date(createdAt) });
    const rows = [row(10, '2026-01-02T03:04:05.678Z'), row(11, '2026-01-02T03:04:05.678Z'), row(12, '2025-12-31T23:59:59.999Z')];
    await idb.database.db.insert(producerKeys).values(rows);
    await registerProducerKey(idb.database.db, other, 'elsewhere', pk(10).toString('base64'));
    await idb.database.db.update(producerKeys).set({ revokedAt: new Date('2026-02-03T04:05:06.789Z') }).where(and(eq(producerKeys.organizationId, o), eq(producerKeys.keyId, rows[0]!.keyId)));
    const info = (r: (typeof rows)[number], revokedAt: string | null) => ({ keyId: r.keyId, name: r.name, publicKey: r.publicKey.toString('base64'), createdAt: r.createdAt.toISOString(), revokedAt });
    const sameInstant = [info(rows[0]!, '2026-02-03T04:05:06.789Z'), info(rows[1]!, null)].sort((x, y) => (x.keyId < y.keyId ? -1 : 1));
    expect(await listProducerKeys(idb.database.db, o)).toEqual([info(rows[2]!, null), ...sameInstant]);
  });

  it('looks up only unrevoked keys of the organization, by id', async () => {
    const o = (await createOrganization(idb.database, 'active')).id;
    const live = await registerProducerKey(idb.database.db, o, 'live', pk(20).toString('base64'));
    const gone = await registerProducerKey(idb.database.db, o, 'gone', pk(21).toString('base64'));
    const foreign = await registerProducerKey(idb.database.db, other, 'foreign', pk(22).toString('base64'));
    await idb.database.db.update(producerKeys).set({ revokedAt: new Date() }).where(eq(producerKeys.keyId, gone.keyId));
    const found = await activeProducerKeys(idb.database.db, o, [live.keyId, gone.keyId, foreign.keyId, 'ffffffffffffffff']);
    expect([...found.keys()]).toEqual([live.keyId]);
    expect(Buffer.from(found.get(live.keyId)!).equals(pk(20))).toBe(true);
    expect(await activeProducerKeys(idb.database.db, o, [])).toEqual(new Map());
  });
});
