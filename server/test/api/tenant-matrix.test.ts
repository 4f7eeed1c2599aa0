/**
 * Tenant isolation of every read, generated from the OpenAPI document: for each GET operation a
 * request is built from the document's examples with every identifier and filter value replaced by
 * one of organization A's (an event id, a leaf index only A's log has, A's patient, action …), and
 * sent with organization B's key. B's answer must contain nothing of A's; A's own answer to the
 * same request must contain something of A's, so no case passes because the request found nothing
 * at all. A new GET operation is covered the day it is documented.
 */
import { addDeadLetter } from '../../src/delivery/repository';
import { generateKeyPairSync } from 'node:crypto';
import { createOrganization } from '../../src/auth/organizations';
import { uuidv4 } from '../../src/util/uuid';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';

interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  example?: string;
}
interface OperationDoc {
  operationId: string;
  'x-exactly-one-of'?: string[];
  parameters: Parameter[];
}

/** GET operations that read no organization's data (the server's own signing keys). */
const SERVER_WIDE = new Set(['ledgerKeys']);
/**
 * Reads whose answer to A carries no string of A's on this small log: a principal's baseline
 * (numbers), the anomaly threshold, anomalies (none before a principal has 20 baseline events).
 * B must still see nothing of A's; server/test/analytics/analytics.test.ts checks their isolation
 * on a seeded log. Without pgvector (the shared PostgreSQL) every analytics read answers 501.
 */
const NOTHING_TO_FIND = new Set(['analyticsPrincipalBaseline', 'analyticsSettings', 'analyticsAnomalies']);

describeEachBackend('tenant isolation of every documented read on %s', (backend) => {
  let srv: TestServer;
  let keyB: string;
  let doc: { paths: Record<string, Record<string, OperationDoc>> };
  /** Strings that identify organization A's data; none may appear in an answer to B. */
  const markers: string[] = [];
  /** Parameter values that point at A's data. */
  const values: Record<string, string> = {};
  /** Values for one operation only (an `id` that is not an event's). */
  const valuesFor: Record<string, Record<string, string>> = {};
  const A_EVENTS = 6;

  beforeAll(async () => {
    srv = await startTestServer(backend);
    const b = await createOrganization(srv.runtime.database, 'tenant-b');
    keyB = (await srv.runtime.services.apiKeys.create(b.id, 'tenant-b admin', 'admin')).key;
    // B has a log of its own (two events, none of A's values), so its reads return data too.
    for (let i = 0; i < 2; i++)
      expect(
        (await srv.request('POST', '/api/v1/events', { action: 'tenant-b.act', status: 'success' }, keyB))
          .status,
      ).toBe(201);

    markers.push(srv.organizationId);
    for (let i = 0; i < A_EVENTS; i++) {
      const res = await srv.request('POST', '/api/v1/events', {
        action: 'tenant-a.secret-action',
        status: 'success',
        principalId: 'tenant-a-principal',
        patientId: 'tenant-a-patient',
        targetResourceType: 'tenant-a-type',
        targetResourceId: 'tenant-a-target',
        correlationId: 'tenant-a-correlation',
        dataClassification: 'PHI',
      });
      expect(res.status).toBe(201);
      markers.push(res.body.id, res.body.leafHash, res.body.rootHash);
      values.id = values.eventId = res.body.id;
    }
    markers.push(
      'tenant-a.secret-action',
      'tenant-a-principal',
      'tenant-a-patient',
      'tenant-a-target',
      'tenant-a-correlation',
    );
    const publicKey = generateKeyPairSync('ed25519')
      .publicKey.export({ format: 'der', type: 'spki' })
      .subarray(-32)
      .toString('base64');
    const registered = await srv.request('POST', '/api/v1/producer-keys', {
      name: 'tenant-a-producer',
      publicKey,
    });
    expect(registered.status).toBe(201);
    markers.push('tenant-a-producer', registered.body.keyId);
    const apiKey = await srv.request('POST', '/api/v1/api-keys', {
      name: 'tenant-a-api-key',
      role: 'auditor',
    });
    expect(apiKey.status).toBe(201);
    markers.push('tenant-a-api-key', apiKey.body.id);
    // A member of A (people who sign in), for members.list.
    const identity = srv.runtime.services.identity!;
    await identity.createUser({ email: 'tenant-a-member@example.org', name: 'tenant-a-member', password: 'tenant-a member password' });
    await identity.addMember(srv.organizationId, 'tenant-a-member@example.org', 'auditor');
    markers.push('tenant-a-member@example.org');
    const conn = await srv.runtime.database.connect();
    try {
      await conn.query(
        `INSERT INTO ledger_alerts (organization_id, id, kind, reason) VALUES ($1, $2, 'head', 'tenant-a-alert')`,
        [srv.organizationId, uuidv4()],
      );
    } finally {
      conn.release();
    }
    markers.push('tenant-a-alert');
    // A security alert and detector settings of A's (not appended: A's log stays as counted above).
    const alert = await srv.runtime.alerts.raise(
      srv.organizationId,
      { detector: 'tenant-a-detector', subject: 'principal:tenant-a-principal', eventIds: [values.id!], context: { note: 'tenant-a-alert-context' } },
      { appendToLog: false },
    );
    valuesFor.alertsGet = { id: alert.id };
    await srv.runtime.alerts.updateSettings(srv.organizationId, { timeZone: 'Pacific/Chatham' }, { principalId: 'tenant-a-admin', principalType: 'test' });
    markers.push(alert.id, 'tenant-a-detector', 'tenant-a-alert-context', 'Pacific/Chatham');
    // A disclosure rule of A's (set through the service: not appended, A's log stays as counted).
    await srv.runtime.services.reports.setDisclosureRule(srv.organizationId, { actionPrefixes: [], actions: ['tenant-a.disclosure-action'], eventsWithRecipient: true, excludedPurposes: [] }, 'tenant-a-admin');
    markers.push('tenant-a.disclosure-action');
    // A paused destination of A's, with a dead letter.
    const dest = await srv.runtime.services.deliveries.create(srv.organizationId, { name: 'tenant-a-destination', kind: 'syslog', url: 'syslog+tls://127.0.0.1:9', startAt: 'now' });
    await srv.runtime.services.deliveries.update(srv.organizationId, dest.id, { enabled: false });
    await addDeadLetter(srv.runtime.database.db, { organizationId: srv.organizationId, destinationId: dest.id, id: 'tenant-a-dead-letter', kind: 'alert', payload: {}, error: 'x', attempts: 1 });
    valuesFor.destinationsGet = { id: dest.id };
    valuesFor.deliveriesDeadLetters = { id: dest.id };
    markers.push(dest.id, 'tenant-a-destination', 'tenant-a-dead-letter');
    // Privacy and retention records of A's (inserted directly: A's log stays as counted; the
    // pseudonym resolution is the one read that appends, to A's log only).
    const pseudonym = 'pseu_' + 'TenantA'.padEnd(22, 'x');
    const sql = await srv.runtime.database.connect();
    try {
      await sql.query(
        `INSERT INTO privacy_erasures (organization_id, id, subject_field, subject_hash, key_version, fields, reason, state, requested_by, completed_at)
         VALUES ($1, $2, 'patientId', 'tenant-a-erasure-hash', 1, '{patientId}', 'tenant-a-erasure-reason', 'completed', 'tenant-a-admin', now())`,
        [srv.organizationId, uuidv4()],
      );
      await sql.query(`INSERT INTO legal_holds (organization_id, id, scope, reason, placed_by) VALUES ($1, $2, 'organization', 'tenant-a-hold-reason', 'tenant-a-admin')`, [srv.organizationId, uuidv4()]);
      await sql.query(`INSERT INTO retention_policies (organization_id, data_classification, archive_after_days, erase_after_days, updated_by) VALUES ($1, 'CONFIDENTIAL', 36411, NULL, 'tenant-a-admin')`, [srv.organizationId]);
      await sql.query(
        `INSERT INTO retention_archives (organization_id, id, start_leaf, end_leaf, events, destination, object_name, sha256, bytes) VALUES ($1, $2, 0, 1, 1, 'dir:x', 'tenant-a-archive-object', 'x', 1)`,
        [srv.organizationId, uuidv4()],
      );
      await sql.query(`INSERT INTO privacy_pseudonyms (organization_id, pseudonym, key_version, value) VALUES ($1, $2, 1, 'tenant-a-pseudonym-value')`, [srv.organizationId, pseudonym]);
    } finally {
      sql.release();
    }
    valuesFor.privacyPseudonymResolve = { pseudonym };
    markers.push('tenant-a-erasure-hash', 'tenant-a-hold-reason', '36411', 'tenant-a-archive-object', 'tenant-a-pseudonym-value');
    // Indexes and sizes only A's log reaches (B has 2 leaves).
    Object.assign(values, {
      leafIndex: String(A_EVENTS - 1),
      treeSize: String(A_EVENTS),
      fromSize: '3',
      toSize: String(A_EVENTS),
      start: '2',
      end: String(A_EVENTS),
      withProof: 'true',
      principalIds: 'tenant-a-principal',
      patientIds: 'tenant-a-patient',
      actions: 'tenant-a.secret-action',
      targetResourceTypes: 'tenant-a-type',
      targetResourceIds: 'tenant-a-target',
      correlationIds: 'tenant-a-correlation',
    });
    // A's events embedded for analytics.similar (a no-op without pgvector).
    await srv.runtime.analyticsWorker?.runOnce();
    doc = (await srv.request('GET', '/api/v1/openapi.json', undefined, null)).body;
  }, 120_000);
  afterAll(async () => {
    await srv?.close();
  });

  /** The GET requests of the document, each parameter an example or A's value. */
  function requests(): Array<{ operation: string; path: string }> {
    const out: Array<{ operation: string; path: string }> = [];
    for (const [template, methods] of Object.entries(doc.paths)) {
      const op = methods.get;
      if (!op) continue;
      const oneOf = op['x-exactly-one-of'] ?? [];
      // One request per member of an exactly-one-of group (each is a different read).
      for (const chosen of oneOf.length > 0 ? oneOf : [null]) {
        let path = template;
        const query = new URLSearchParams();
        for (const p of op.parameters) {
          if (oneOf.includes(p.name) && p.name !== chosen) continue;
          const value = valuesFor[op.operationId]?.[p.name] ?? values[p.name] ?? p.example;
          if (value === undefined) continue;
          if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(value));
          else query.set(p.name, value);
        }
        const qs = query.toString();
        out.push({
          operation: chosen ? `${op.operationId} (${chosen})` : op.operationId,
          path: `/api/v1${path}${qs ? `?${qs}` : ''}`,
        });
      }
    }
    return out;
  }

  it('documents the reads the matrix must cover, stats among them', () => {
    const ops = requests().map((r) => r.operation.split(' ')[0]);
    expect(ops).toEqual(
      expect.arrayContaining([
        'eventsQuery',
        'eventsStats',
        'eventsGetById',
        'ledgerCheckpoint',
        'ledgerInclusionProof',
        'ledgerLeaves',
        'apiKeysList',
      ]),
    );
    expect(new Set(ops).size).toBeGreaterThanOrEqual(10);
  });

  it("answers organization B with nothing of organization A's, on every GET operation", async () => {
    const leaks: Array<{ operation: string; status: number; leaked: string[] }> = [];
    const seenByA: Array<{ operation: string; found: boolean }> = [];
    for (const { operation, path } of requests()) {
      const asB = await srv.request('GET', path, undefined, keyB);
      const text = JSON.stringify(asB.body);
      // A value B sent itself (the id in a 404's message) is not a leak.
      leaks.push({
        operation,
        status: asB.status,
        leaked: markers.filter((m) => text.includes(m) && !decodeURIComponent(path).includes(m)),
      });
      const asA = await srv.request('GET', path, undefined, srv.adminKey);
      const own = JSON.stringify(asA.body);
      seenByA.push({
        operation,
        found:
          SERVER_WIDE.has(operation) ||
          NOTHING_TO_FIND.has(operation) ||
          (operation.startsWith('analytics') && asA.status === 501) ||
          markers.some((m) => own.includes(m) && !decodeURIComponent(path).includes(m)),
      });
    }
    expect(leaks.filter((l) => l.leaked.length > 0)).toEqual([]);
    expect(seenByA.filter((s) => !s.found)).toEqual([]);
    expect(leaks.length).toBeGreaterThanOrEqual(10);
  });

  it.each(['action', 'status', 'dataClassification', 'day', 'hour'])(
    'counts only B’s events in stats grouped by %s',
    async (groupBy) => {
      const asB = await srv.request('GET', `/api/v1/events/stats?groupBy=${groupBy}`, undefined, keyB);
      expect(asB.status).toBe(200);
      const total = (asB.body.groups as Array<{ count: number }>).reduce((n, g) => n + g.count, 0);
      expect({ total, reported: asB.body.total }).toEqual({ total: 2, reported: 2 });
      const asA = await srv.request(
        'GET',
        `/api/v1/events/stats?groupBy=${groupBy}`,
        undefined,
        srv.adminKey,
      );
      // A's log also holds the auth.apikey.create event of the key created in beforeAll, the
      // alert.settings.update of its alert settings, and the privacy.pseudonym.resolve of A's read.
      expect((asA.body.groups as Array<{ count: number }>).reduce((n, g) => n + g.count, 0)).toBe(A_EVENTS + 3);
    },
  );
});
