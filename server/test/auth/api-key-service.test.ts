/**
 * API keys over the database itself (PGlite, and PostgreSQL when TEST_DATABASE_URL is set), no
 * HTTP server: the key format, what is stored (SHA-256 only, looked up by its first 64 bits),
 * listing and revocation per organization, the length bounds, the constant-time hash comparison
 * against a row whose look-up id matches but whose hash does not, and the look-up cache's expiry
 * on a clock the test moves.
 */
import { createHash } from 'node:crypto';
import { and, eq, inArray } from 'drizzle-orm';
import { ApiKeyService, generateApiKey } from '../../src/auth/api-keys';
import { createOrganization } from '../../src/auth/organizations';
import { apiKeys } from '../../src/db/schema';
import { describeEachBackend } from '../helpers/backends';
import { openInstrumentedDatabase, type InstrumentedDatabase } from '../helpers/instrumented-database';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

describe('API key format', () => {
  it('is sak_ and 43 base64url characters (256 random bits), different every time', () => {
    const keys = new Set(Array.from({ length: 50 }, () => generateApiKey()));
    expect(keys.size).toBe(50);
    for (const k of keys) {
      expect(k).toMatch(/^sak_[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(k.slice(4), 'base64url')).toHaveLength(32);
    }
  });
});

describeEachBackend('API key service on %s', (backend) => {
  let idb: InstrumentedDatabase;
  let org: string;
  let other: string;
  let t: number;
  const now = () => t;
  let service: ApiKeyService;
  beforeAll(async () => {
    idb = await openInstrumentedDatabase(backend);
    org = (await createOrganization(idb.database, 'org a')).id;
    other = (await createOrganization(idb.database, 'org b')).id;
  }, 120_000);
  afterAll(async () => {
    await idb?.close();
  });
  beforeEach(() => {
    t = 1_000_000;
    service = new ApiKeyService(idb.database, 1_000, now);
  });

  it('creates a key: returns it once and stores only its SHA-256, found by the hash’s first 8 bytes in hex', async () => {
    const created = await service.create(org, 'ingest', 'producer');
    expect(created.key).toMatch(/^sak_[A-Za-z0-9_-]{43}$/);
    expect(created.id).toMatch(UUID);
    expect(created).toMatchObject({ name: 'ingest', role: 'producer', revokedAt: null });
    expect(new Date(created.createdAt).toISOString()).toBe(created.createdAt);
    const rows = await idb.database.db.select().from(apiKeys).where(and(eq(apiKeys.organizationId, org), eq(apiKeys.id, created.id)));
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    const hash = sha256(created.key);
    expect(Buffer.from(row.keyHash).equals(hash)).toBe(true);
    expect(row.lookupId).toBe(hash.subarray(0, 8).toString('hex'));
    expect(row.lookupId).toHaveLength(16);
    expect(row).toMatchObject({ organizationId: org, name: 'ingest', role: 'producer', revokedAt: null });
    expect(row.createdAt.toISOString()).toBe(created.createdAt);
  });

  it('registers a given key and authenticates it as the organization’s principal', async () => {
    const key = 'sak_given-key-of-the-operator-0001';
    const created = await service.create(org, 'given', 'auditor', key);
    expect(created.key).toBe(key);
    expect(await service.authenticate(key)).toEqual({ organizationId: org, keyId: created.id, role: 'auditor', kind: 'apiKey', subject: created.id });
    expect(await service.authenticate(key + 'x')).toBeNull();
  });

  it('refuses keys shorter than 16 or longer than 512 characters without looking them up', async () => {
    const k15 = 'k'.repeat(15);
    const k16 = 'k'.repeat(16);
    const k512 = 'm'.repeat(512);
    const k513 = 'm'.repeat(513);
    // Rows for the out-of-bounds keys exist, so only the bounds can refuse them.
    for (const k of [k15, k16, k512, k513]) await service.create(org, `len ${k.length}`, 'developer', k);
    expect(await service.authenticate(k15)).toBeNull();
    expect((await service.authenticate(k16))?.role).toBe('developer');
    expect((await service.authenticate(k512))?.role).toBe('developer');
    expect(await service.authenticate(k513)).toBeNull();
  });

  it('refuses a key whose look-up id matches a row with another hash (compared in full, even of another length)', async () => {
    const key = 'sak_collision-test-key-000000000001';
    const hash = sha256(key);
    const lookupId = hash.subarray(0, 8).toString('hex');
    const wrong = Buffer.from(hash);
    wrong[31] = wrong[31]! ^ 1;
    await idb.database.db.insert(apiKeys).values({ organizationId: org, id: '00000000-0000-4000-8000-000000000001', name: 'same prefix', role: 'admin', lookupId, keyHash: wrong });
    await idb.database.db.insert(apiKeys).values({ organizationId: org, id: '00000000-0000-4000-8000-000000000002', name: 'short hash', role: 'admin', lookupId, keyHash: hash.subarray(0, 16) });
    expect(await service.authenticate(key)).toBeNull();
  });

  it('lists an organization’s keys oldest first, without secrets, and only its own', async () => {
    const o = (await createOrganization(idb.database, 'listing')).id;
    const first = await service.create(o, 'first', 'admin');
    const second = await service.create(o, 'second', 'compliance_officer');
    await service.create(other, 'elsewhere', 'admin');
    await service.revoke(o, first.id);
    const listed = await service.list(o);
    expect(listed.map((k) => k.name)).toEqual(['first', 'second']);
    expect(listed[1]).toEqual({ id: second.id, name: 'second', role: 'compliance_officer', createdAt: second.createdAt, revokedAt: null });
    expect(Object.keys(listed[0]!).sort()).toEqual(['createdAt', 'id', 'name', 'revokedAt', 'role']);
    expect(listed[0]!.revokedAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it('revokes a key of its organization at once, even while its look-up is cached', async () => {
    const created = await service.create(org, 'to revoke', 'producer');
    expect((await service.authenticate(created.key))?.keyId).toBe(created.id);
    const keep = await service.create(org, 'kept', 'producer');
    expect((await service.authenticate(keep.key))?.keyId).toBe(keep.id);
    await service.revoke(org, created.id);
    expect(await service.authenticate(created.key)).toBeNull();
    // Only the revoked key left the cache: the other one is still answered from it.
    await idb.database.db.update(apiKeys).set({ role: 'auditor' }).where(eq(apiKeys.id, keep.id));
    expect((await service.authenticate(keep.key))?.role).toBe('producer');
    const row = (await idb.database.db.select().from(apiKeys).where(eq(apiKeys.id, created.id)))[0]!;
    expect(row.revokedAt).toBeInstanceOf(Date);
  });

  it('answers 404 to revoking a key that is revoked, unknown, or of another organization', async () => {
    const created = await service.create(org, 'once', 'producer');
    await expect(service.revoke(other, created.id)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no active API key ${created.id}` });
    expect((await service.authenticate(created.key))?.keyId).toBe(created.id);
    await service.revoke(org, created.id);
    await expect(service.revoke(org, created.id)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no active API key ${created.id}` });
    const unknown = '00000000-0000-4000-8000-0000000000ff';
    await expect(service.revoke(org, unknown)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no active API key ${unknown}` });
  });

  it('answers from its cache for cacheTtlMs, then from the database (a revocation by another process)', async () => {
    const created = await service.create(org, 'cached', 'developer');
    expect((await service.authenticate(created.key))?.role).toBe('developer');
    // Another process (the admin CLI, another replica) revokes the key in the database.
    await idb.database.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, created.id));
    t += 999;
    expect((await service.authenticate(created.key))?.role).toBe('developer');
    t += 1;
    expect(await service.authenticate(created.key)).toBeNull();
  });

  it('holds at most cacheMaxEntries look-ups: a full cache is emptied before the next one is cached', async () => {
    const small = new ApiKeyService(idb.database, 1_000, now, 2);
    const a = await small.create(org, 'capped a', 'developer');
    const b = await small.create(org, 'capped b', 'developer');
    const c = await small.create(org, 'capped c', 'developer');
    await small.authenticate(a.key);
    await small.authenticate(b.key);
    // Another process changes the three roles; the clock stands still, so no entry expires.
    await idb.database.db.update(apiKeys).set({ role: 'auditor' }).where(inArray(apiKeys.id, [a.id, b.id, c.id]));
    // Two look-ups fit: both are cached.
    expect((await small.authenticate(a.key))?.role).toBe('developer');
    expect((await small.authenticate(b.key))?.role).toBe('developer');
    // A third empties the full cache: a and b come from the database again.
    expect((await small.authenticate(c.key))?.role).toBe('auditor');
    expect((await small.authenticate(b.key))?.role).toBe('auditor');
    expect((await small.authenticate(a.key))?.role).toBe('auditor');
  });

  it('caches nothing with a TTL of 0 (the setting with a shared Redis)', async () => {
    const uncached = new ApiKeyService(idb.database, 0, now);
    const created = await uncached.create(org, 'uncached', 'developer');
    expect((await uncached.authenticate(created.key))?.role).toBe('developer');
    await idb.database.db.update(apiKeys).set({ role: 'auditor' }).where(eq(apiKeys.id, created.id));
    expect((await uncached.authenticate(created.key))?.role).toBe('auditor');
  });
});
