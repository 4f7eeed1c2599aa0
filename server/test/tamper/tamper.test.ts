/**
 * Tampering as an attacker with database superuser rights would: triggers disabled
 * (`session_replication_role = replica`), then real SQL against the ledger tables — change a
 * field, delete a row, swap two rows, insert a forged row, rewrite a tree node, roll the head back,
 * roll everything back. Each time BOTH the offline verifier (`audit-verify bundle`, spawned as a
 * child process on an exported bundle) and the server's own self-audit must fail and name the
 * first bad position.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createOrganization } from '../../src/auth/organizations';
import {
  commitField,
  formatBundleRecord,
  leafBytes,
  leafHash,
  newSalt,
  planRoot,
  rootAt,
  frontierNodes,
} from '../../src/ledger';
import { readNodes } from '../../src/tlog/repository';
import { describeEachBackend } from '../helpers/backends';
import { startTestServer, type TestServer } from '../helpers/server';
import { bulkItems } from '../helpers/events';

const ROOT = path.resolve(__dirname, '../../..');

// Each case spawns the CLI (tsx start-up) a few times.
jest.setTimeout(60_000);

/** Runs the CLI like an auditor does and returns its exit status and output. */
function auditVerify(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'server/src/cli/audit-verify.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describeEachBackend('tampering on %s', (backend) => {
  let srv: TestServer;
  let dir: string;
  let su: { query(text: string, params?: unknown[]): Promise<{ rows: any[] }>; close(): Promise<void> };

  beforeAll(async () => {
    // The schedule is off: the test runs the self-audit itself, at the moments that matter.
    srv = await startTestServer(backend, { AUDIT_SELF_AUDIT_INTERVAL_MS: '0', INGEST_MAX_WAIT_MS: '0' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-tamper-'));
    if (backend === 'postgres') {
      const client = new pg.Client({ connectionString: srv.env.DATABASE_URL });
      await client.connect();
      su = { query: (t, p) => client.query(t, p), close: () => client.end() };
    } else {
      const conn = await srv.runtime.database.connect(); // PGlite runs as its superuser
      su = { query: (t, p) => conn.query(t, p), close: async () => conn.release() };
    }
  }, 180_000);
  afterAll(async () => {
    await su?.close();
    await srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh organization with checkpoints at 4, 8, 12, 16, 20, verified clean by both sides. */
  async function freshLog(name: string): Promise<string> {
    const { id: org } = await createOrganization(srv.runtime.database, name);
    for (let batch = 0; batch < 5; batch++) {
      const results = await srv.runtime.services.events.bulkCreate(
        org,
        bulkItems(
          Array.from({ length: 4 }, (_, i) => ({
            action: 'record.read',
            status: 'success',
            principalId: `u-${batch}-${i}`,
            details: { batch, i },
          })),
        ),
      );
      expect(results.every((r) => r.ok)).toBe(true);
    }
    expect((await srv.runtime.selfAudit!.auditOrganization(org)).ok).toBe(true); // pins size 20 in memory
    const clean = await verifyExport(org);
    expect(clean.status).toBe(0);
    return org;
  }

  async function exportTo(org: string): Promise<string> {
    const file = path.join(dir, `${org}.ndjson`);
    const lines: string[] = [];
    for await (const r of srv.runtime.services.exports.exportBundle(org)) lines.push(formatBundleRecord(r));
    fs.writeFileSync(file, lines.join('\n') + '\n');
    return file;
  }

  async function verifyExport(org: string, extra: string[] = []) {
    return auditVerify(['bundle', await exportTo(org), '--key', srv.verifierKey, ...extra]);
  }

  /** Runs SQL with every trigger off, as a superuser can. */
  async function asAttacker(sql: string, params: unknown[] = []): Promise<void> {
    await su.query(`SET session_replication_role = replica`);
    try {
      await su.query(sql, params);
    } finally {
      await su.query(`SET session_replication_role = DEFAULT`);
    }
  }

  async function expectDetected(
    org: string,
    cli: RegExp,
    selfAudit: { kind: string; leafIndex?: number; treeSize?: number; reason: RegExp },
  ) {
    const r = await verifyExport(org);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(cli);
    const result = await srv.runtime.selfAudit!.auditOrganization(org);
    expect(result.ok).toBe(false);
    const first = result.findings[0]!;
    expect(first.kind).toBe(selfAudit.kind);
    if (selfAudit.leafIndex !== undefined) expect(first.leafIndex).toBe(selfAudit.leafIndex);
    if (selfAudit.treeSize !== undefined) expect(first.treeSize).toBe(selfAudit.treeSize);
    expect(first.reason).toMatch(selfAudit.reason);
  }

  it('the triggers refuse the same changes without superuser tricks', async () => {
    const org = await freshLog('guarded');
    await expect(
      su.query(`UPDATE events SET principal_id = 'x' WHERE organization_id = $1 AND leaf_index = 1`, [org]),
    ).rejects.toThrow(/only erasure/);
    await expect(
      su.query(`DELETE FROM events WHERE organization_id = $1 AND leaf_index = 1`, [org]),
    ).rejects.toThrow(/append-only/);
    await expect(
      su.query(`UPDATE ledger_nodes SET hash = hash WHERE organization_id = $1`, [org]),
    ).rejects.toThrow(/append-only/);
    await expect(
      su.query(`UPDATE ledger_heads SET size = 3 WHERE organization_id = $1`, [org]),
    ).rejects.toThrow(/may only grow/);
    await expect(su.query(`DELETE FROM checkpoints WHERE organization_id = $1`, [org])).rejects.toThrow(
      /append-only/,
    );
  });

  it('detects a changed field value', async () => {
    const org = await freshLog('changed-field');
    await asAttacker(
      `UPDATE events SET principal_id = 'mallory' WHERE organization_id = $1 AND leaf_index = 6`,
      [org],
    );
    await expectDetected(org, /leaf 6: .*field principalId does not match its commitment/, {
      kind: 'leaf',
      leafIndex: 6,
      reason: /principalId does not match its commitment/,
    });
  });

  it('detects a deleted row', async () => {
    const org = await freshLog('deleted-row');
    await asAttacker(`DELETE FROM events WHERE organization_id = $1 AND leaf_index = 9`, [org]);
    await expectDetected(org, /leaf 9: .*leaf 9 is missing/, {
      kind: 'leaf',
      leafIndex: 9,
      reason: /leaf 9 is missing/,
    });
  });

  it('detects two swapped rows', async () => {
    const org = await freshLog('swapped-rows');
    await asAttacker(
      `UPDATE events SET leaf_index = CASE leaf_index WHEN 10 THEN 13 ELSE 10 END WHERE organization_id = $1 AND leaf_index IN (10, 13)`,
      [org],
    );
    await expectDetected(org, /leaf 10: .*differs from the log's leaf/, {
      kind: 'leaf',
      leafIndex: 10,
      reason: /differs from the log's leaf/,
    });
  });

  it('detects a forged row inserted with a well-formed commitment and leaf hash', async () => {
    const org = await freshLog('forged-row');
    // The attacker knows the format: fresh salts, correct commitments, a correct leaf hash.
    const { rows } = await su.query(
      `SELECT id, recorded_at FROM events WHERE organization_id = $1 AND leaf_index = 5`,
      [org],
    );
    const recordedAt = new Date(rows[0].recorded_at as string);
    const id = (rows[0].id as string).replace(/.$/, (c) => (c === '0' ? '1' : '0'));
    const values = {
      action: 'record.delete',
      status: 'success',
      dataClassification: 'INTERNAL',
      timestamp: recordedAt.toISOString(),
    };
    const salts: Record<string, string> = {};
    const commitments: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) {
      const s = newSalt();
      salts[k] = s.toString('base64');
      commitments[k] = commitField(s, v);
    }
    const hash = leafHash(leafBytes({ org, id, recordedAt: recordedAt.toISOString(), fields: commitments }));
    await asAttacker(
      `INSERT INTO events (organization_id, id, recorded_at, leaf_index, leaf_hash, "timestamp", action, status, data_classification, commitments, salts)
       VALUES ($1, $2, $3, 5, $4, $3, 'record.delete', 'success', 'INTERNAL', $5, $6)`,
      [org, id, recordedAt.toISOString(), hash, JSON.stringify(commitments), JSON.stringify(salts)],
    );
    await expectDetected(org, /leaf 5: /, { kind: 'leaf', leafIndex: 5, reason: /leaf 5/ });
  });

  it('detects a rewritten tree node', async () => {
    const org = await freshLog('rewritten-node');
    // Node (level 2, index 1) = MTH(leaves 4..7): the consistency proof from 4 to 8 is made of it.
    await asAttacker(
      `UPDATE ledger_nodes SET hash = $2 WHERE organization_id = $1 AND level = 2 AND idx = 1`,
      [org, Buffer.alloc(32, 0xab)],
    );
    await expectDetected(org, /checkpoint 8: .*not consistent with checkpoint 4/, {
      kind: 'checkpoint',
      treeSize: 8,
      reason: /not consistent with checkpoint 4/,
    });
    const result = await srv.runtime.selfAudit!.auditOrganization(org);
    expect(
      result.findings.some(
        (f) => f.kind === 'node' && f.leafIndex === 4 && /level 2, index 1/.test(f.reason),
      ),
    ).toBe(true);
  });

  it('detects the head rolled back', async () => {
    const org = await freshLog('rolled-head');
    const db = srv.runtime.database.db;
    const root = rootAt(12, await readNodes(db, org, planRoot(12)));
    const frontier = Buffer.concat(await readNodes(db, org, frontierNodes(12)));
    await asAttacker(
      `UPDATE ledger_heads SET size = 12, root_hash = $2, frontier = $3 WHERE organization_id = $1`,
      [org, root, frontier],
    );
    await expectDetected(org, /checkpoint 20: .*rolled back/, {
      kind: 'checkpoint',
      treeSize: 20,
      reason: /rolled back/,
    });
  });

  it('detects a complete rollback (rows, nodes, checkpoints, head) against the pinned checkpoint', async () => {
    const org = await freshLog('rolled-everything');
    const pinFile = path.join(dir, `${org}.pin`);
    // The auditor pins the latest checkpoint after a clean verification.
    const first = await verifyExport(org, ['--pin', pinFile]);
    expect(first.status).toBe(0);
    expect(fs.readFileSync(pinFile, 'utf8')).toMatch(/\n20\n/);
    const db = srv.runtime.database.db;
    const root = rootAt(12, await readNodes(db, org, planRoot(12)));
    const frontier = Buffer.concat(await readNodes(db, org, frontierNodes(12)));
    await asAttacker(`DELETE FROM events WHERE organization_id = $1 AND leaf_index >= 12`, [org]);
    await asAttacker(
      `DELETE FROM ledger_nodes WHERE organization_id = $1 AND (idx + 1) * (1::bigint << level) > 12`,
      [org],
    );
    await asAttacker(`DELETE FROM checkpoints WHERE organization_id = $1 AND tree_size > 12`, [org]);
    await asAttacker(
      `UPDATE ledger_heads SET size = 12, root_hash = $2, frontier = $3 WHERE organization_id = $1`,
      [org, root, frontier],
    );
    // Internally consistent now: only the pin (client) and the pinned memory (server) know better.
    expect((await verifyExport(org)).status).toBe(0);
    const r = await verifyExport(org, ['--pin', pinFile]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/checkpoint 20: .*rolled back/);
    const result = await srv.runtime.selfAudit!.auditOrganization(org);
    expect(result.ok).toBe(false);
    expect(result.findings[0]).toMatchObject({ kind: 'witness', treeSize: 20 });
    expect(result.findings[0]!.reason).toMatch(/rolled back/);
  });

  it('records an alert, counts the failure in metrics and stays ready', async () => {
    const before = await srv.request('GET', '/metrics', undefined, null);
    const count = (text: string) =>
      Number(/^audit_ledger_verification_failures_total (\d+)/m.exec(text)?.[1] ?? 0);
    const results = await srv.runtime.selfAudit!.runOnce();
    expect(results.filter((r) => !r.ok).length).toBeGreaterThanOrEqual(6);
    const after = await srv.request('GET', '/metrics', undefined, null);
    expect(count(after.body as string)).toBeGreaterThan(count(before.body as string));
    const { rows } = await su.query(`SELECT kind, leaf_index, tree_size, reason FROM ledger_alerts`);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.some((a) => a.kind === 'leaf' && Number(a.leaf_index) === 6)).toBe(true);
    // A standing problem is recorded once, not on every run.
    await srv.runtime.selfAudit!.runOnce();
    const again = await su.query(`SELECT count(*)::int AS n FROM ledger_alerts`);
    expect(again.rows[0].n).toBe(rows.length);
    const ready = await srv.request('GET', '/ready', undefined, null);
    expect(ready.status).toBe(200);
  });
});
