/**
 * `audit-admin verify-ledger` trusts only the keys it is given, never the database's: an attacker
 * with superuser rights rewrites a leaf, rebuilds the whole tree, replaces the `signing_keys` row
 * with a key they control and re-signs every checkpoint. The log is then consistent with the
 * database's own key (verify-ledger given the attacker's key passes: the attack is complete, and
 * what a verifier trusting the table would conclude), yet verify-ledger given the configured key
 * fails, exit 1, naming the first checkpoint it cannot trust. An intact log passes, whole, for every organization.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { createOrganization } from '../../src/auth/organizations';
import { loadConfig } from '../../src/config';
import { openDatabase, type Database } from '../../src/db/client';
import {
  appendLeaves,
  commitField,
  formatCheckpoint,
  generateSignerKey,
  leafBytes,
  leafHash,
  newSalt,
  parseSignerKey,
  signNote,
} from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime } from '../../src/runtime';
import { backendEnv, TEST_ADMIN_KEY } from '../helpers/server';
import { describeEachBackend } from '../helpers/backends';
import { bulkItems } from '../helpers/events';

const ROOT = path.resolve(__dirname, '../../..');
jest.setTimeout(120_000);

interface Report {
  ok: boolean;
  organizations: Array<{
    organizationId: string;
    ok: boolean;
    size: number;
    failure?: { kind: string; leafIndex: number | null; treeSize: number | null; reason: string };
  }>;
}

describeEachBackend('audit-admin verify-ledger on %s', (backend) => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  let org: string;
  let other: string;
  let genuineVerifier: string;

  function verifyLedger(args: string[], extraEnv: Record<string, string> = {}) {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'server/src/cli/admin.ts', 'verify-ledger', ...args],
      {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 90_000,
        // Only the database: no signing key, so every trusted key is the one passed here.
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          NODE_ENV: 'test',
          AUDIT_LOG_ORIGIN: 'test.audit',
          ...(env.DATABASE_URL
            ? { DATABASE_URL: env.DATABASE_URL }
            : { AUDIT_DATA_DIR: env.AUDIT_DATA_DIR! }),
          ...extraEnv,
        },
      },
    );
    return {
      status: r.status,
      stderr: r.stderr,
      report: (r.stdout ? JSON.parse(r.stdout) : null) as Report | null,
    };
  }

  async function withDatabase<T>(fn: (database: Database) => Promise<T>): Promise<T> {
    const database = await openDatabase(
      env.DATABASE_URL ? { url: env.DATABASE_URL, poolMax: 2 } : { dataDir: env.AUDIT_DATA_DIR },
    );
    try {
      return await fn(database);
    } finally {
      await database.close();
    }
  }

  beforeAll(async () => {
    ({ env, cleanup } = await backendEnv(backend));
    genuineVerifier = parseSignerKey(env.AUDIT_SIGNING_KEY!).verifierKey;
    const config = loadConfig({
      ...env,
      NODE_ENV: 'test',
      PORT: '0',
      HOST: '127.0.0.1',
      AUDIT_LOG_ORIGIN: 'test.audit',
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
      INGEST_MAX_WAIT_MS: '0',
      RATE_LIMIT_PER_MINUTE: '0',
    });
    const rt = await startRuntime(config, createLogger('silent'));
    org = rt.bootstrap!.organizationId;
    other = (await createOrganization(rt.database, 'second')).id;
    // Checkpoints at 4, 8, 12, 16, 20 (one batch each) in the first organization, 3 events in the second.
    for (let b = 0; b < 5; b++) {
      await rt.services.events.bulkCreate(
        org,
        bulkItems(
          Array.from({ length: 4 }, (_, i) => ({
            action: 'record.read',
            status: 'success',
            principalId: `user-${b * 4 + i}`,
          })),
        ),
      );
    }
    const third = await rt.services.events.bulkCreate(
      other,
      bulkItems(
        ['record.create', 'record.update', 'record.read'].map((action) => ({ action, status: 'success' })),
      ),
    );
    expect(third.every((r) => r.ok)).toBe(true);
    await rt.close();
  }, 120_000);
  afterAll(() => cleanup?.());

  it('passes on an intact log, every organization verified whole', () => {
    const r = verifyLedger(['--key', genuineVerifier]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.report!.ok).toBe(true);
    expect(
      Object.fromEntries(r.report!.organizations.map((o) => [o.organizationId, [o.ok, o.size]])),
    ).toEqual({ [org]: [true, 20], [other]: [true, 3] });
  });

  it('refuses to run without a trusted key (the signing_keys table is never one)', () => {
    const r = verifyLedger([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no trusted key/);
  });

  it('still fails when a leaf is rewritten AND the key row is replaced and checkpoints re-signed', async () => {
    const attacker = generateSignerKey('test.audit');
    const attackerSigner = parseSignerKey(attacker.signerKey);
    const rewritten = 9;
    await withDatabase(async (database) => {
      const conn = await database.connect();
      const q = (text: string, params: unknown[] = []) => conn.query<Record<string, any>>(text, params);
      try {
        await q('BEGIN');
        await q('SET LOCAL session_replication_role = replica'); // triggers off, as a superuser can
        // 1. Rewrite leaf 9's action, with a fresh salt and commitment, and its leaf hash.
        const row = (
          await q(
            'SELECT id, recorded_at, commitments, salts FROM events WHERE organization_id = $1 AND leaf_index = $2',
            [org, rewritten],
          )
        ).rows[0]!;
        const salt = newSalt();
        const commitments = { ...row.commitments, action: commitField(salt, 'record.delete') };
        const salts = { ...row.salts, action: salt.toString('base64') };
        const recordedAt = new Date(row.recorded_at).toISOString();
        const forged = leafHash(leafBytes({ org, id: row.id, recordedAt, fields: commitments }));
        await q(
          'UPDATE events SET action = $3, commitments = $4, salts = $5, leaf_hash = $6 WHERE organization_id = $1 AND leaf_index = $2',
          [org, rewritten, 'record.delete', commitments, salts, forged],
        );
        // 2. Rebuild every tree node and the head from the (rewritten) leaves.
        const leaves = (
          await q('SELECT leaf_hash FROM events WHERE organization_id = $1 ORDER BY leaf_index', [org])
        ).rows.map((r) => r.leaf_hash as Buffer);
        await q('DELETE FROM ledger_nodes WHERE organization_id = $1', [org]);
        const sizes = (
          await q('SELECT tree_size FROM checkpoints WHERE organization_id = $1 ORDER BY tree_size', [org])
        ).rows.map((r) => Number(r.tree_size));
        let size = 0;
        let frontier: Buffer[] = [];
        for (const end of sizes) {
          const step = appendLeaves(size, frontier, leaves.slice(size, end));
          for (const n of step.nodes)
            await q('INSERT INTO ledger_nodes (organization_id, level, idx, hash) VALUES ($1, $2, $3, $4)', [
              org,
              n.level,
              n.index,
              n.hash,
            ]);
          // 3. Re-sign every checkpoint with the attacker's key (the table will publish only that key).
          {
            const note = signNote(
              formatCheckpoint({ origin: `test.audit/${org}`, size: end, rootHash: step.root }),
              [attackerSigner],
            );
            await q(
              'UPDATE checkpoints SET root_hash = $3, note = $4, key_id = $5 WHERE organization_id = $1 AND tree_size = $2',
              [org, end, step.root, note, attackerSigner.keyId.toString('hex')],
            );
          }
          ({ size, frontier } = step);
        }
        await q('UPDATE ledger_heads SET root_hash = $2, frontier = $3 WHERE organization_id = $1', [
          org,
          appendLeaves(0, [], leaves).root,
          Buffer.concat(frontier),
        ]);
        // 4. Replace the published key row by the attacker's.
        await q('DELETE FROM signing_keys');
        await q(
          "INSERT INTO signing_keys (key_id, name, verifier_key, not_before) VALUES ($1, $2, $3, now() - interval '1 day')",
          [attackerSigner.keyId.toString('hex'), attackerSigner.name, attacker.verifierKey],
        );
        await q('COMMIT');
      } catch (err) {
        await q('ROLLBACK');
        throw err;
      } finally {
        conn.release();
      }
    });

    // The attack is complete: trusting the key the database now publishes, the log verifies.
    const keyInDb = await withDatabase(async (d) => {
      const c = await d.connect();
      try {
        return (await c.query<{ verifier_key: string }>('SELECT verifier_key FROM signing_keys')).rows.map(
          (r) => r.verifier_key,
        );
      } finally {
        c.release();
      }
    });
    expect(keyInDb).toEqual([attacker.verifierKey]);
    expect(verifyLedger(['--key', attacker.verifierKey, '--organization', org]).status).toBe(0);

    // Trusting only the configured key, it fails and names the first checkpoint it cannot trust.
    for (const r of [
      verifyLedger(['--key', genuineVerifier]),
      verifyLedger([], { AUDIT_VERIFIER_KEY: genuineVerifier }),
    ]) {
      expect(r.status).toBe(1);
      expect(r.report!.ok).toBe(false);
      const bad = r.report!.organizations.find((o) => o.organizationId === org)!;
      expect(bad.ok).toBe(false);
      expect(bad.failure).toMatchObject({ kind: 'checkpoint', treeSize: 4 });
      expect(r.report!.organizations.find((o) => o.organizationId === other)!.ok).toBe(true);
      expect(r.stderr).toContain(`organization ${org}: first bad position checkpoint 4:`);
    }
  });
});
