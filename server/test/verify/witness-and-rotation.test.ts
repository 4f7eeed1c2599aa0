/**
 * Checkpoint witnessing (directory and HTTP POST) and signing-key rotation, against a real server:
 * every new checkpoint reaches both destinations exactly once, a witness directory refuses a
 * different checkpoint at the same size, a failing HTTP witness is retried, a fresh self-audit
 * catches a rollback from the witness directory alone, and after a rotation old checkpoints keep
 * verifying with the key history that every bundle carries.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SelfAuditor } from '../../src/audit/self-audit';
import { DirectoryWitness, latestWitnessed, WitnessConflictError } from '../../src/audit/witness';
import { loadConfig } from '../../src/config';
import { BundleVerifier, generateSignerKey, parseVerifierKey, type BundleRecord } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime } from '../../src/runtime';
import { startTestServer, TEST_ADMIN_KEY, type TestServer } from '../helpers/server';
import { bulkItems } from '../helpers/events';

async function collect(iterable: AsyncIterable<BundleRecord>): Promise<BundleRecord[]> {
  const out: BundleRecord[] = [];
  for await (const r of iterable) out.push(r);
  return out;
}

describe('checkpoint witnessing', () => {
  let srv: TestServer;
  let dir: string;
  let receiver: http.Server;
  const posts: Array<{ org: string; size: number; body: string }> = [];
  let failNext = 1;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-witness-'));
    receiver = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--; // the first POST fails: the publisher must retry it
          res.statusCode = 503;
          res.end();
          return;
        }
        posts.push({ org: String(req.headers['x-audit-organization']), size: Number(req.headers['x-audit-tree-size']), body });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/checkpoints`;
    srv = await startTestServer('pglite', { AUDIT_WITNESS_DIR: dir, AUDIT_WITNESS_URL: url, AUDIT_SELF_AUDIT_INTERVAL_MS: '0', INGEST_MAX_WAIT_MS: '0' });
  }, 180_000);
  afterAll(async () => {
    await srv?.close();
    await new Promise((r) => receiver?.close(r));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('publishes every new checkpoint to the directory and by HTTP POST, retrying failures', async () => {
    const client = srv.client(undefined, { batch: false });
    for (let i = 0; i < 3; i++) await client.events.bulkCreate.mutate({ events: [{ action: 'data.read', status: 'success' }, { action: 'data.read', status: 'success' }] });
    await srv.runtime.witness!.flush();
    const org = srv.organizationId;
    const files = fs.readdirSync(path.join(dir, org)).sort();
    expect(files).toEqual(['0000000000000002.checkpoint', '0000000000000004.checkpoint', '0000000000000006.checkpoint']);
    const cp4 = await client.ledger.checkpoint.query({ treeSize: 4 });
    expect(fs.readFileSync(path.join(dir, org, files[1]!), 'utf8')).toBe(cp4.note);
    expect(posts.map((p) => p.size)).toEqual([2, 4, 6]);
    expect(posts.every((p) => p.org === org)).toBe(true);
    expect(posts[2]!.body).toBe((await client.ledger.checkpoint.query()).note);
    const metrics = await srv.request('GET', '/metrics', undefined, null);
    expect(metrics.body).toMatch(/audit_witness_publications_total\{destination="http",result="retry"\} 1/);
    expect(metrics.body).toMatch(/audit_witness_publications_total\{destination="dir",result="ok"\} 3/);
    const latest = await latestWitnessed(dir, org, [parseVerifierKey(srv.verifierKey)]);
    expect(latest?.checkpoint.size).toBe(6);
  });

  it('never overwrites a witnessed checkpoint: the same note is idempotent, a different one is a conflict', async () => {
    const w = new DirectoryWitness(dir);
    const org = srv.organizationId;
    const note = fs.readFileSync(path.join(dir, org, '0000000000000004.checkpoint'), 'utf8');
    await expect(w.publish(org, 4, note)).resolves.toBeUndefined();
    await expect(w.publish(org, 4, note.replace(/\n4\n/, '\n4 \n'))).rejects.toBeInstanceOf(WitnessConflictError);
    expect(fs.readFileSync(path.join(dir, org, '0000000000000004.checkpoint'), 'utf8')).toBe(note);
  });

  it('a self-audit with no memory of the log still catches a rollback from the witness directory', async () => {
    const org = srv.organizationId;
    const conn = await srv.runtime.database.connect();
    try {
      await conn.query(`SET session_replication_role = replica`);
      await conn.query(`DELETE FROM events WHERE organization_id = $1 AND leaf_index >= 4`, [org]);
      await conn.query(`DELETE FROM ledger_nodes WHERE organization_id = $1 AND (idx + 1) * (1::bigint << level) > 4`, [org]);
      await conn.query(`DELETE FROM checkpoints WHERE organization_id = $1 AND tree_size > 4`, [org]);
      await conn.query(
        `UPDATE ledger_heads h SET size = 4, root_hash = c.root_hash, frontier = c.root_hash FROM checkpoints c WHERE h.organization_id = $1 AND c.organization_id = $1 AND c.tree_size = 4`,
        [org],
      );
      await conn.query(`SET session_replication_role = DEFAULT`);
    } finally {
      conn.release();
    }
    const fresh = new SelfAuditor(
      srv.runtime.database,
      { origin: 'test.audit', verifiers: [parseVerifierKey(srv.verifierKey)], windowLeaves: 0, witnessDir: dir },
      srv.runtime.metrics,
      createLogger('silent'),
    );
    const result = await fresh.auditOrganization(org);
    expect(result.ok).toBe(false);
    expect(result.findings[0]).toMatchObject({ kind: 'witness', treeSize: 6 });
    expect(result.findings[0]!.reason).toMatch(/witness directory is beyond the log head 4: the log was rolled back/);
    // A scheduled run records the finding; auditors read it through the API.
    await fresh.runOnce();
    const alerts = await srv.request('GET', '/api/v1/ledger/alerts');
    expect(alerts.status).toBe(200);
    expect(alerts.body.alerts[0]).toMatchObject({ kind: 'witness', treeSize: 6, leafIndex: null });
    expect((await srv.client().ledger.alerts.query({ limit: 1 })).alerts).toEqual(alerts.body.alerts.slice(0, 1));
    const ready = await srv.request('GET', '/ready', undefined, null);
    expect(ready.status).toBe(200);
  });
});

describe('signing-key rotation', () => {
  it('keeps old checkpoints verifiable: the key history rides in the bundle, windows are closed once', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-rotation-'));
    const a = generateSignerKey('test.audit');
    const b = generateSignerKey('test.audit');
    const env = (key: string, extra: Record<string, string> = {}) =>
      loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        NODE_ENV: 'test',
        AUDIT_LOG_ORIGIN: 'test.audit',
        AUDIT_DATA_DIR: dataDir,
        AUDIT_SIGNING_KEY: key,
        AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
        AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
        RATE_LIMIT_PER_MINUTE: '0',
        ...extra,
      });
    const logger = createLogger('silent');
    try {
      let rt = await startRuntime(env(a.signerKey), logger);
      const org = rt.bootstrap!.organizationId;
      await rt.services.events.bulkCreate(org, bulkItems([{ action: 'data.read', status: 'success' }]));
      await rt.services.events.bulkCreate(org, bulkItems([{ action: 'data.read', status: 'success' }]));
      await rt.close();

      rt = await startRuntime(env(b.signerKey), logger);
      await rt.services.events.bulkCreate(org, bulkItems([{ action: 'data.write', status: 'success' }]));
      const keys = await rt.services.ledger.keys();
      expect(keys.map((k) => [k.verifierKey, k.active, k.notAfter === null])).toEqual([
        [a.verifierKey, false, false],
        [b.verifierKey, true, true],
      ]);
      const records = await collect(rt.services.exports.exportBundle(org));
      expect(records.filter((r) => r.type === 'key').map((r) => (r as { verifierKey: string }).verifierKey)).toEqual([a.verifierKey, b.verifierKey]);

      const check = (trusted: string[]) => {
        const v = new BundleVerifier({ verifiers: trusted.map((k) => parseVerifierKey(k)) });
        records.forEach((r) => v.push(r));
        return v.finish();
      };
      const both = check([a.verifierKey, b.verifierKey]);
      expect(both.failures).toEqual([]);
      expect(both.checkpointsVerified).toBe(3);
      expect(both.warnings).toEqual([]);
      // Trusting only the new key, the checkpoints the old key signed do not verify.
      const onlyNew = check([b.verifierKey]);
      expect(onlyNew.failures[0]).toMatchObject({ kind: 'checkpoint', treeSize: 1 });

      // The self-audit trusts retired keys only when configured to.
      expect((await rt.selfAudit!.auditOrganization(org)).ok).toBe(false);
      await rt.close();
      rt = await startRuntime(env(b.signerKey, { AUDIT_TRUSTED_VERIFIER_KEYS: a.verifierKey }), logger);
      expect((await rt.selfAudit!.auditOrganization(org)).ok).toBe(true);
      await rt.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
