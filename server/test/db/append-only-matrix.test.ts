/**
 * The append-only rules of the ledger tables (docs/architecture.md §6, docs/verification.md
 * "Database roles"), as a matrix: every column of every ledger table (read from the catalog, so a
 * column added later is covered and refused by default) × UPDATE, plus DELETE and TRUNCATE of every
 * table and every events partition. Each case runs in a transaction that is rolled back, on a
 * fixture whose every column holds a value. The few changes that are allowed (erasure, the head
 * growing, a key being retired or revoked once) are cases too, so the matrix cannot pass vacuously.
 */
import { openDatabase, type Database, type RawConnection } from '../../src/db/client';
import { sqlstateOf } from '../../src/db/errors';
import { migrate } from '../../src/db/migrate';
import { createTestDatabase, describeEachBackend } from '../helpers/backends';

const ORG = '11111111-1111-4111-8111-111111111111';
const OTHER_UUID = '22222222-2222-4222-8222-222222222222';
const EVENT_ID = '01900000-0000-7000-8000-000000000001';

/** The ledger tables: everything the proofs or their evidence depend on. */
const LEDGER_TABLES = [
  'events',
  'ledger_heads',
  'ledger_nodes',
  'checkpoints',
  'signing_keys',
  'idempotency_keys',
  'ledger_alerts',
  'producer_keys',
] as const;

/** The event columns that hold a value (erasable: set to NULL, never changed). */
const EVENT_VALUES = [
  'timestamp',
  'action',
  'status',
  'principal_id',
  'principal_type',
  'target_resource_type',
  'target_resource_id',
  'patient_id',
  'outcome_description',
  'data_classification',
  'correlation_id',
  'session_context',
  'retention_policy',
  'event_version',
  'details',
  'idempotency_key',
];

/** Column changes that are allowed from the fixture's state; every other change is refused. */
const ALLOWED_CHANGES = new Set([
  'events.erased_at', // NULL → a time: the erasure is recorded (once: see below)
  'ledger_heads.size', // the head grows…
  'ledger_heads.updated_at',
  'signing_keys.not_after', // a key is retired (once)
  'producer_keys.revoked_at', // a producer key is revoked (once)
]);

const FIXTURE = `
  INSERT INTO organizations (id, name) VALUES ('${ORG}', 't');
  INSERT INTO ledger_heads (organization_id, size, root_hash, frontier) VALUES ('${ORG}', 1, '\\x00', '\\x01');
  INSERT INTO ledger_nodes VALUES ('${ORG}', 0, 0, decode(repeat('ab', 32), 'hex'));
  INSERT INTO checkpoints (organization_id, tree_size, root_hash, note, key_id) VALUES ('${ORG}', 1, '\\x00', 'n', 'k');
  INSERT INTO signing_keys (key_id, name, verifier_key, not_before) VALUES ('k', 'test.audit', 'v', now());
  INSERT INTO idempotency_keys (organization_id, key, event_id, recorded_at, leaf_index) VALUES ('${ORG}', 'idem', '${EVENT_ID}', now(), 0);
  INSERT INTO ledger_alerts (organization_id, id, kind, leaf_index, tree_size, reason) VALUES ('${ORG}', '${OTHER_UUID}', 'leaf', 0, 1, 'r');
  INSERT INTO producer_keys (organization_id, key_id, name, public_key) VALUES ('${ORG}', 'pk', 'producer', decode(repeat('cd', 32), 'hex'));
  INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, "timestamp", action, status, principal_id, principal_type,
    target_resource_type, target_resource_id, patient_id, outcome_description, data_classification, correlation_id, session_context,
    retention_policy, event_version, details, idempotency_key, commitments, salts, producer_key_id, producer_signature)
  VALUES ('${ORG}', '${EVENT_ID}', now(), 0, '\\x00', now(), 'data.read', 'success', 'u1', 'user', 'record', 'r1', 'p1', 'ok', 'PHI',
    'c1', '{"ip":"x"}', 'std', '1', '{"k":"v"}', 'idem', '{"action":"a","status":"s","patientId":"p"}',
    '{"action":"x","status":"y","patientId":"z"}', 'pk', 'sig');
`;

/** An expression that changes `column` (of catalog type `udt`) to a different, non-NULL value. */
function changed(column: string, udt: string): string {
  const c = `"${column}"`;
  switch (udt) {
    case 'text':
      return `coalesce(${c}, '') || 'x'`;
    case 'uuid':
      return `'${OTHER_UUID}'::uuid`;
    case 'int2':
    case 'int4':
    case 'int8':
      return `coalesce(${c}, 0) + 1`;
    case 'timestamptz':
      return `coalesce(${c}, now()) + interval '1 day'`;
    case 'bytea':
      return `coalesce(${c}, '\\x'::bytea) || '\\x01'::bytea`;
    case 'jsonb':
      return `coalesce(${c}, '{}'::jsonb) || '{"added":"x"}'::jsonb`;
    default:
      throw new Error(`no change expression for type ${udt} (column ${column}): extend the matrix`);
  }
}

async function open(backend: string): Promise<{ database: Database; cleanup: () => Promise<void> }> {
  if (backend === 'pglite') {
    const database = await openDatabase({});
    return { database, cleanup: () => database.close() };
  }
  const db = await createTestDatabase();
  const database = await openDatabase({ url: db.url, poolMax: 2 });
  return {
    database,
    cleanup: async () => {
      await database.close();
      await db.drop();
    },
  };
}

describeEachBackend('append-only matrix on %s', (backend) => {
  let database: Database;
  let cleanup: () => Promise<void>;
  let conn: RawConnection;
  let columns: Array<{ table: string; column: string; udt: string; nullable: boolean }>;
  let partitions: string[];

  beforeAll(async () => {
    ({ database, cleanup } = await open(backend));
    await migrate(database);
    conn = await database.connect();
    await conn.exec(FIXTURE);
    columns = (
      await conn.query<{ table: string; column: string; udt: string; nullable: string }>(
        `SELECT table_name AS table, column_name AS column, udt_name AS udt, is_nullable AS nullable FROM information_schema.columns
         WHERE table_schema = 'public' AND table_name = ANY($1) ORDER BY table_name, ordinal_position`,
        [LEDGER_TABLES],
      )
    ).rows.map((r) => ({ ...r, nullable: r.nullable === 'YES' }));
    partitions = (
      await conn.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
  }, 180_000);
  afterAll(async () => {
    conn?.release();
    await cleanup?.();
  });

  /** Runs `statements` in a transaction that is always rolled back; the SQLSTATE of the failure, or 'ok'. */
  async function attempt(...statements: string[]): Promise<string> {
    await conn.exec('BEGIN');
    try {
      for (const s of statements) await conn.query(s);
      return 'ok';
    } catch (err) {
      return sqlstateOf(err) ?? `no SQLSTATE: ${String(err)}`;
    } finally {
      await conn.exec('ROLLBACK');
    }
  }

  it('covers every ledger table, and the fixture holds a value in every column but the once-only ones', async () => {
    expect([...new Set(columns.map((c) => c.table))].sort()).toEqual([...LEDGER_TABLES].sort());
    for (const table of LEDGER_TABLES) {
      const rows = (await conn.query<Record<string, unknown>>(`SELECT * FROM ${table}`)).rows;
      expect({ table, rows: rows.length }).toEqual({ table, rows: 1 });
      const empty = Object.entries(rows[0]!).flatMap(([k, v]) => (v === null ? [`${table}.${k}`] : []));
      expect(empty.sort()).toEqual(
        ['events.erased_at', 'producer_keys.revoked_at', 'signing_keys.not_after'].filter((c) =>
          c.startsWith(`${table}.`),
        ),
      );
    }
  });

  it('refuses a change of every column of every ledger table, except the allowed ones', async () => {
    const outcomes: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const { table, column, udt } of columns) {
      const id = `${table}.${column}`;
      outcomes[id] = await attempt(`UPDATE ${table} SET "${column}" = ${changed(column, udt)}`);
      expected[id] = ALLOWED_CHANGES.has(id) ? 'ok' : '42501';
    }
    expect(outcomes).toEqual(expected);
  });

  it('refuses an UPDATE that changes nothing on the tables that are never updated', async () => {
    const outcomes: Record<string, string> = {};
    for (const table of ['ledger_nodes', 'checkpoints', 'idempotency_keys', 'ledger_alerts']) {
      const column = columns.find((c) => c.table === table)!.column;
      outcomes[table] = await attempt(`UPDATE ${table} SET "${column}" = "${column}"`);
    }
    expect(outcomes).toEqual({
      ledger_nodes: '42501',
      checkpoints: '42501',
      idempotency_keys: '42501',
      ledger_alerts: '42501',
    });
  });

  it('allows erasure of every value column of an event, and no other column may be set to NULL', async () => {
    const outcomes: Record<string, string> = {};
    const expected: Record<string, string> = {};
    for (const { column, nullable } of columns.filter((c) => c.table === 'events' && c.nullable)) {
      if (column === 'erased_at') continue;
      outcomes[column] = await attempt(`UPDATE events SET "${column}" = NULL`);
      expected[column] = EVENT_VALUES.includes(column) && nullable ? 'ok' : '42501';
    }
    expect(outcomes).toEqual(expected);
    expect(
      await attempt(`UPDATE events SET salts = salts - 'patientId', patient_id = NULL, erased_at = now()`),
    ).toBe('ok');
    expect(await attempt(`UPDATE events SET salts = salts || '{"extra":"s"}'`)).toBe('42501');
    expect(await attempt(`UPDATE events SET salts = jsonb_set(salts, '{action}', '"other"')`)).toBe('42501');
  });

  it('allows each once-only change once: a recorded erasure, a retired or revoked key cannot be changed again', async () => {
    expect(
      await attempt(
        `UPDATE events SET erased_at = now()`,
        `UPDATE events SET erased_at = erased_at + interval '1 day'`,
      ),
    ).toBe('42501');
    expect(await attempt(`UPDATE events SET erased_at = now()`, `UPDATE events SET erased_at = NULL`)).toBe(
      '42501',
    );
    expect(
      await attempt(`UPDATE signing_keys SET not_after = now()`, `UPDATE signing_keys SET not_after = NULL`),
    ).toBe('42501');
    expect(
      await attempt(
        `UPDATE signing_keys SET not_after = now()`,
        `UPDATE signing_keys SET not_after = not_after + interval '1 day'`,
      ),
    ).toBe('42501');
    expect(
      await attempt(
        `UPDATE producer_keys SET revoked_at = now()`,
        `UPDATE producer_keys SET revoked_at = NULL`,
      ),
    ).toBe('42501');
  });

  it('lets the head only grow, and its root and frontier change only when it grows', async () => {
    expect(
      await attempt(`UPDATE ledger_heads SET size = size + 1, root_hash = '\\x02', frontier = '\\x03'`),
    ).toBe('ok');
    expect(await attempt(`UPDATE ledger_heads SET size = size - 1, root_hash = '\\x02'`)).toBe('42501');
    expect(await attempt(`UPDATE ledger_heads SET root_hash = '\\x02'`)).toBe('42501');
    expect(await attempt(`UPDATE ledger_heads SET frontier = '\\x02'`)).toBe('42501');
    expect(await attempt(`UPDATE ledger_heads SET updated_at = now()`)).toBe('ok');
  });

  it('refuses DELETE on every ledger table and on the events partition that holds the row', async () => {
    const withRow = (
      await conn.query<{ name: string }>(`SELECT tableoid::regclass::text AS name FROM events`)
    ).rows[0]!.name;
    const outcomes: Record<string, string> = {};
    for (const table of [...LEDGER_TABLES, withRow]) outcomes[table] = await attempt(`DELETE FROM ${table}`);
    expect(outcomes).toEqual(Object.fromEntries([...LEDGER_TABLES, withRow].map((t) => [t, '42501'])));
  });

  it('gives every events partition the row triggers of events (UPDATE and DELETE through a partition are refused alike)', async () => {
    const triggers = async (table: string) =>
      (
        await conn.query<{ name: string }>(
          `SELECT tgname AS name FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal AND (tgtype & 1) = 1 ORDER BY 1`,
          [table],
        )
      ).rows.map((r) => r.name);
    const own = await triggers('events');
    expect(own).toEqual(expect.arrayContaining(['events_erasure_only', 'events_no_delete']));
    for (const p of partitions)
      expect({ partition: p, triggers: await triggers(p) }).toEqual({ partition: p, triggers: own });
    expect(partitions.length).toBeGreaterThanOrEqual(2);
  });

  it('refuses TRUNCATE of every ledger table and of every events partition, including one created later', async () => {
    expect(await attempt('SELECT audit_ensure_event_partitions(6)')).toBe('ok');
    await conn.query('SELECT audit_ensure_event_partitions(6)');
    const all = (
      await conn.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`,
      )
    ).rows.map((r) => r.name);
    expect(all.length).toBeGreaterThan(partitions.length);
    const outcomes: Record<string, string> = {};
    for (const table of [...LEDGER_TABLES, ...all]) outcomes[table] = await attempt(`TRUNCATE ${table}`);
    expect(outcomes).toEqual(Object.fromEntries([...LEDGER_TABLES, ...all].map((t) => [t, '42501'])));
  });
});
