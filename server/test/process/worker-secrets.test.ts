/**
 * A worker verifies with the public verifier key alone: it starts in production without
 * AUDIT_SIGNING_KEY (or the bootstrap key), never loads a private key, and its self-audit accepts
 * the checkpoints the api signed. A verifier key that does not match a configured signing key is
 * refused at start-up. What the worker would append (an alert's event) waits in the ledger outbox
 * and is appended by the api once it runs again.
 */
import fs from 'node:fs';
import { sql } from 'drizzle-orm';
import { loadConfig } from '../../src/config';
import { generateSignerKey } from '../../src/ledger';
import { createLogger } from '../../src/observability/logger';
import { startRuntime } from '../../src/runtime';
import { backendEnv, TEST_ADMIN_KEY } from '../helpers/server';
import { bulkItems } from '../helpers/events';

jest.setTimeout(400_000);

const rowsOf = (result: unknown): unknown[] => (result as { rows: unknown[] }).rows;

it('runs the self-audit with only AUDIT_VERIFIER_KEY', async () => {
  const { env, cleanup } = await backendEnv('pglite');
  const verifierKey = generateSignerKey('x').verifierKey; // replaced below by the real one
  expect(verifierKey).toMatch(/^x\+/);
  const base = { ...env, PORT: '0', HOST: '127.0.0.1', AUDIT_LOG_ORIGIN: 'test.audit', AUDIT_SELF_AUDIT_INTERVAL_MS: '0', RATE_LIMIT_PER_MINUTE: '0' };
  try {
    const api = await startRuntime(loadConfig({ ...base, NODE_ENV: 'test', AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY }), createLogger('silent'));
    const org = api.bootstrap!.organizationId;
    await api.services.events.bulkCreate(org, bulkItems([{ action: 'record.read', status: 'success' }, { action: 'record.update', status: 'success' }]));
    const realVerifier = api.signer!.verifierKey;
    await api.close();

    const { AUDIT_SIGNING_KEY: _unused, ...withoutKey } = base as Record<string, string>;
    // As the Kubernetes manifests give it (docs/deploying.md "Secrets per role"): the verifier key
    // as a file, no signing key, no bootstrap key.
    const keyFile = `${env.AUDIT_DATA_DIR}/verifier-key`;
    fs.writeFileSync(keyFile, `${realVerifier}\n`, { mode: 0o440 });
    const workerEnv = { ...withoutKey, NODE_ENV: 'production', AUDIT_ROLE: 'worker', AUDIT_VERIFIER_KEY_FILE: keyFile };
    const worker = await startRuntime(loadConfig(workerEnv), createLogger('silent'));
    try {
      expect(worker.signer).toBeNull();
      expect(fs.existsSync(`${env.AUDIT_DATA_DIR}/signing-key`)).toBe(false); // nothing generated either
      const results = await worker.selfAudit!.runOnce();
      expect(results).toEqual([expect.objectContaining({ organizationId: org, ok: true, events: 2 })]);
      // What it would append goes to the ledger outbox (docs/jobs.md): the alert is stored, its
      // event waits for a process holding the signing key.
      await worker.alerts.raise(org, { detector: 'behaviour_anomaly', subject: 'principal:dr-x', eventIds: [] });
      expect(rowsOf(await worker.database.db.execute(sql`SELECT source FROM ledger_outbox`))).toEqual([{ source: 'worker:alert' }]);
    } finally {
      await worker.close();
    }

    // The worker is gone (as if it died after recording); the api, started again, appends the event.
    const again = await startRuntime(loadConfig({ ...base, NODE_ENV: 'test', AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY }), createLogger('silent'));
    try {
      expect(await again.outbox!.drainOnce()).toMatchObject({ drained: 1 });
      expect((await again.services.events.query(org, { limit: 10, actions: ['alert.raised'] } as never)).items).toHaveLength(1);
      expect(rowsOf(await again.database.db.execute(sql`SELECT count(*)::int AS n FROM ledger_outbox`))).toEqual([{ n: 0 }]);
    } finally {
      await again.close();
    }

    // A verifier key that is not the signing key's is a configuration error.
    await expect(
      startRuntime(loadConfig({ ...base, NODE_ENV: 'test', AUDIT_ROLE: 'worker', AUDIT_VERIFIER_KEY: verifierKey }), createLogger('silent')),
    ).rejects.toThrow(/AUDIT_VERIFIER_KEY is not the verifier key of AUDIT_SIGNING_KEY/);
  } finally {
    await cleanup();
  }
});
