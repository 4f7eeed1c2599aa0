/**
 * kill -9 while a worker uploads a retention archive to an S3-compatible bucket (docs/privacy.md
 * §6), on each backend: a real server process archives to s3rver (in the test process), whose
 * store leaves the bundle's upload unanswered until the process is SIGKILLed. Read straight from
 * the database while no server runs: no archive is recorded, no event is gone, and no manifest
 * stands in the bucket. After a restart the run completes: the three objects are in the bucket
 * once, the archive is recorded once, and the bundle downloaded from the bucket verifies with
 * `audit-verify bundle`. The access key's secret appears in no line the server wrote.
 */
import { gunzipSync } from 'node:zlib';
import { openDatabase } from '../../src/db/client';
import { generateSignerKey } from '../../src/ledger';
import { describeEachBackend } from '../helpers/backends';
import { getJson, killServer, postJson, spawnServer, type ServerProcess } from '../helpers/process';
import { startTestS3, type TestS3 } from '../helpers/s3';
import { backendEnv, TEST_ADMIN_KEY } from '../helpers/server';
import { auditVerifyBundle } from '../privacy/helpers';

jest.setTimeout(600_000);

const SECRET = 'test-secret-never-logged-9f3b';

/** Polls `probe` until it returns a value (a hang guard, not a timing assertion). */
async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, limitMs = 300_000): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Archives recorded and events stored, read from the database itself (no server running). */
async function counts(env: Record<string, string>): Promise<{ archives: number; events: number }> {
  const database = await openDatabase({ url: env.DATABASE_URL, dataDir: env.DATABASE_URL ? undefined : env.AUDIT_DATA_DIR });
  const conn = await database.connect();
  try {
    const { rows } = await conn.query<{ archives: string; events: string }>(
      'SELECT (SELECT count(*) FROM retention_archives) AS archives, (SELECT count(*) FROM events) AS events',
    );
    return { archives: Number(rows[0]!.archives), events: Number(rows[0]!.events) };
  } finally {
    conn.release();
    await database.close();
  }
}

describeEachBackend('kill -9 during an archive upload to S3 on %s', (backend) => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  let server: ServerProcess | null = null;
  let s3: TestS3;
  let verifierKey: string;
  const bucket = `crash-${backend}`;
  let output = '';

  const start = async (extra: Record<string, string> = {}) => {
    server = await spawnServer({ ...env, ...extra });
    return server.url;
  };
  const stop = async (signal: NodeJS.Signals) => {
    await killServer(server!, signal);
    output += server!.output();
    server = null;
  };

  beforeAll(async () => {
    s3 = await startTestS3([bucket]);
    const b = await backendEnv(backend);
    cleanup = b.cleanup;
    const { REDIS_URL: _r, CACHE_KEY_PREFIX: _c, ...benv } = b.env;
    const key = generateSignerKey('test.audit');
    verifierKey = key.verifierKey;
    env = {
      ...benv,
      ...s3.env(bucket, 'audit'),
      RETENTION_ARCHIVE_S3_SECRET_ACCESS_KEY: SECRET, // s3rver checks the key id only
      AUDIT_SIGNING_KEY: key.signerKey,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      AUDIT_LOG_ORIGIN: 'test.audit',
      AUDIT_BOOTSTRAP_API_KEY: TEST_ADMIN_KEY,
      RATE_LIMIT_PER_MINUTE: '0',
      AUDIT_SELF_AUDIT_INTERVAL_MS: '0',
      RETENTION_INTERVAL_MS: '0',
    };
    const url = await start();
    const events = Array.from({ length: 40 }, (_, i) => ({ action: 'data.read', status: 'success', principalId: `dr-${i}`, patientId: 'patient-s3-crash', details: { i } }));
    expect((await postJson(`${url}/api/v1/events/bulk`, TEST_ADMIN_KEY, { events })).body.accepted).toBe(40);
    const put = await fetch(`${url}/api/v1/retention/policies`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ policies: [{ dataClassification: '*', archiveAfterDays: 0, eraseAfterDays: null }, { dataClassification: 'PHI', archiveAfterDays: 0, eraseAfterDays: null }] }),
    });
    expect(put.status).toBe(200);
    await stop('SIGTERM');
  }, 600_000);

  afterAll(async () => {
    if (server) await killServer(server);
    await cleanup?.();
    await s3?.close();
  });

  it('completes an archive whose upload was killed: nothing recorded or in the bucket before, three objects and one record after', async () => {
    const before = await counts(env);
    expect(before.archives).toBe(0);

    // A worker that runs retention at once; the store leaves the bundle's upload unanswered, then the kill.
    const held = s3.hold((r) => r.method === 'PUT' && /\.ndjson\.gz\?/.test(r.url));
    await start({ RETENTION_INTERVAL_MS: '1000' });
    const request = await held;
    expect(request.url).toMatch(new RegExp(`^/${bucket}/audit/[^/]+/000000000000-\\d{12}\\.ndjson\\.gz\\?`));
    await stop('SIGKILL');
    s3.release();

    const killed = await counts(env);
    expect(killed.archives).toBe(0); // recorded only once every destination holds it
    expect(killed.events).toBeGreaterThanOrEqual(before.events); // nothing dropped
    expect(await s3.keys(bucket)).toEqual([]); // no manifest (nor anything else) before the bundle is whole

    const url = await start({ RETENTION_INTERVAL_MS: '1000' });
    const listed = await until('the archive to be recorded after the restart', async () => {
      const a = (await getJson(`${url}/api/v1/retention/archives`, TEST_ADMIN_KEY)).body.archives as Array<{ object: string; start: number; end: number; sha256: string; destination: string }>;
      return a.length > 0 ? a : null;
    });
    await stop('SIGTERM');
    const first = listed.filter((a) => a.start === 0);
    expect(first).toHaveLength(1);
    expect(first[0]!.destination).toBe(`s3://${bucket}/audit/`);
    const base = `audit/${first[0]!.object.replace(/\.ndjson\.gz$/, '')}`;
    const keys = await s3.keys(bucket);
    expect(keys.filter((k) => k.startsWith(`${base}.`))).toEqual([`${base}.manifest.json`, `${base}.ndjson.gz`, `${base}.ndjson.gz.sha256`]);
    const gz = await s3.get(bucket, `${base}.ndjson.gz`);
    expect(JSON.parse((await s3.get(bucket, `${base}.manifest.json`)).toString()).sha256).toBe(first[0]!.sha256);
    const cli = auditVerifyBundle(gunzipSync(gz).toString('utf8'), verifierKey);
    expect(cli.stderr).toBe('');
    expect(cli.status).toBe(0);

    expect(output).toContain('audit server listening');
    expect(output).not.toContain(SECRET);
  });
});
