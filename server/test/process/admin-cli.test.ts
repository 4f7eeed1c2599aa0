/**
 * `audit-admin` beside a running server. On the embedded default the data directory belongs to
 * the server: the CLI refuses (exit 3, naming the server) instead of opening it concurrently, and
 * `--url` acts through the server so a revocation takes effect at once. On PostgreSQL the CLI
 * writes the shared database and the running server refuses the revoked key.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/db/client';
import { acquireDataDirLock, DataDirInUseError, LOCK_FILE } from '../../src/db/data-dir-lock';
import { generateSignerKey } from '../../src/ledger';
import { createTestDatabase, describePostgres } from '../helpers/backends';
import { getJson, killServer, postJson, runAdminCli, spawnServer, type ServerProcess } from '../helpers/process';

const ADMIN = 'sak_cli_test_admin_key_0123456789abcdefghijklmnop';
jest.setTimeout(600_000);

const cli = runAdminCli;

/** Polls until `probe` is true (a hang guard, not a timing assertion). */
async function until(what: string, probe: () => Promise<boolean>, limitMs = 120_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const eventBody = { action: 'data.read', status: 'success' };

describe('audit-admin beside a server on the embedded default', () => {
  let dir: string;
  let env: Record<string, string>;
  let server: ServerProcess;
  let keyFile: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-cli-'));
    keyFile = path.join(dir, 'admin.key');
    fs.writeFileSync(keyFile, ADMIN + '\n', { mode: 0o600 });
    env = {
      AUDIT_DATA_DIR: path.join(dir, 'data'),
      AUDIT_SIGNING_KEY: generateSignerKey('test.audit').signerKey,
      AUDIT_LOG_ORIGIN: 'test.audit',
    };
    server = await spawnServer({
      ...env,
      NODE_ENV: 'test',
      AUDIT_BOOTSTRAP_API_KEY: ADMIN,
      RATE_LIMIT_PER_MINUTE: '0',
    });
  });

  afterAll(async () => {
    if (server) await killServer(server);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to revoke (exit 3) and names the running server instead of opening its data directory', async () => {
    const producer = (await postJson(`${server.url}/api/v1/api-keys`, ADMIN, { name: 'p', role: 'producer' }))
      .body as { id: string; key: string };
    const refused = await cli(['api-keys', 'revoke', '--id', producer.id], env);
    expect(refused.status).toBe(3);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`in use by process ${server.child.pid}`);
    expect(refused.stderr).toContain(`--url ${server.url}`);
    // Nothing was changed behind the server's back, and the server works on.
    expect((await postJson(`${server.url}/api/v1/events`, producer.key, eventBody)).status).toBe(201);
    const list = await getJson(`${server.url}/api/v1/api-keys`, ADMIN);
    expect(list.body.keys.find((k: { id: string }) => k.id === producer.id).revokedAt).toBeNull();
  });

  it('refuses creation and verify-ledger too, and a second server on the same directory does not start', async () => {
    expect((await cli(['api-keys', 'create', '--name', 'x', '--role', 'producer'], env)).status).toBe(3);
    expect((await cli(['verify-ledger', '--key', 'test.audit+00000000+AQ=='], env)).status).toBe(3);
    await expect(spawnServer({ ...env, NODE_ENV: 'test' })).rejects.toThrow(/in use by process/);
  });

  it('revokes through the running server with --url, effective at once', async () => {
    const producer = (await postJson(`${server.url}/api/v1/api-keys`, ADMIN, { name: 'q', role: 'producer' }))
      .body as { id: string; key: string };
    expect((await postJson(`${server.url}/api/v1/events`, producer.key, eventBody)).status).toBe(201);
    const revoked = await cli(
      ['api-keys', 'revoke', '--id', producer.id, '--url', server.url, '--api-key-file', keyFile],
      env,
    );
    expect(revoked.stderr).toBe('');
    expect(revoked.status).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ id: producer.id, revoked: true });
    expect((await postJson(`${server.url}/api/v1/events`, producer.key, eventBody)).status).toBe(401);
    // The admin key can come from stdin as well; create prints the new secret once.
    const created = await cli(
      ['api-keys', 'create', '--name', 'r', '--role', 'auditor', '--url', server.url, '--api-key-file', '-'],
      env,
      ADMIN,
    );
    expect(created.status).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: 'r',
      role: 'auditor',
      key: expect.stringMatching(/^sak_/),
    });
  });

  it('works on the data directory once the server has stopped, even after SIGKILL', async () => {
    await killServer(server, 'SIGKILL');
    expect(fs.existsSync(path.join(env.AUDIT_DATA_DIR!, LOCK_FILE))).toBe(true);
    const list = await cli(['api-keys', 'list'], env);
    expect(list.stderr).toBe('');
    expect(list.status).toBe(0);
    expect(
      (JSON.parse(list.stdout) as Array<{ name: string; revokedAt: string | null }>).find(
        (k) => k.name === 'q',
      )?.revokedAt,
    ).not.toBeNull();
    expect(fs.existsSync(path.join(env.AUDIT_DATA_DIR!, LOCK_FILE))).toBe(false);
  });

  it('reports a bad --url or a refused key without a stack trace', async () => {
    const wrongKey = path.join(dir, 'wrong.key');
    fs.writeFileSync(wrongKey, 'sak_not_a_key_0123456789abcdefghijklmnopqrstu');
    server = await spawnServer({ ...env, NODE_ENV: 'test', RATE_LIMIT_PER_MINUTE: '0' });
    const refused = await cli(['api-keys', 'list', '--url', server.url, '--api-key-file', wrongKey], env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^audit-admin: the server answered 401: /);
    const bad = await cli(['api-keys', 'list', '--url', 'not a url', '--api-key-file', keyFile], env);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--url is not a URL');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});

describePostgres('audit-admin beside a server on PostgreSQL', () => {
  let server: ServerProcess;
  let db: { url: string; drop: () => Promise<void> };

  beforeAll(async () => {
    db = await createTestDatabase();
    server = await spawnServer({
      DATABASE_URL: db.url,
      NODE_ENV: 'test',
      AUDIT_SIGNING_KEY: generateSignerKey('test.audit').signerKey,
      AUDIT_LOG_ORIGIN: 'test.audit',
      AUDIT_BOOTSTRAP_API_KEY: ADMIN,
      RATE_LIMIT_PER_MINUTE: '0',
    });
  });

  afterAll(async () => {
    if (server) await killServer(server, 'SIGTERM');
    await db?.drop();
  });

  it('revokes in the shared database and the running server then refuses the key', async () => {
    const producer = (await postJson(`${server.url}/api/v1/api-keys`, ADMIN, { name: 'p', role: 'producer' }))
      .body as { id: string; key: string };
    // Authenticated once, so the server's look-up cache holds the key when it is revoked.
    expect((await postJson(`${server.url}/api/v1/events`, producer.key, eventBody)).status).toBe(201);
    const revoked = await cli(['api-keys', 'revoke', '--id', producer.id], { DATABASE_URL: db.url });
    expect(revoked.stderr).toBe('');
    expect(revoked.status).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ id: producer.id, revoked: true });
    // Within the look-up cache's lifetime (1 s) the server refuses it, and for good.
    await until(
      'the server to refuse the revoked key',
      async () => (await postJson(`${server.url}/api/v1/events`, producer.key, eventBody)).status === 401,
    );
    const list = await getJson(`${server.url}/api/v1/api-keys`, ADMIN);
    expect(list.body.keys.find((k: { id: string }) => k.id === producer.id).revokedAt).not.toBeNull();
  });
});

describe('the data directory lock', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lock-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses a second open in the same process and frees the directory on close', async () => {
    const first = await openDatabase({ dataDir: dir });
    await expect(openDatabase({ dataDir: dir })).rejects.toBeInstanceOf(DataDirInUseError);
    await first.close();
    const again = await openDatabase({ dataDir: dir });
    await again.close();
  });

  it('takes over a lock whose process is gone or whose pid now belongs to another process', () => {
    const file = path.join(dir, LOCK_FILE);
    // pid 1 exists but started at another time than recorded: a reused pid, not the holder.
    fs.writeFileSync(file, JSON.stringify({ pid: 1, startTime: '1', hostname: 'old-container' }));
    acquireDataDirLock(dir).release();
    fs.writeFileSync(file, JSON.stringify({ pid: 2 ** 22 + 1, startTime: '5', hostname: 'x' }));
    const lock = acquireDataDirLock(dir);
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid });
    lock.release();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses while the recorded process is alive with the recorded start time', () => {
    const first = acquireDataDirLock(dir);
    try {
      expect(() => acquireDataDirLock(dir)).toThrow(DataDirInUseError);
      expect(() => acquireDataDirLock(dir)).toThrow(`in use by process ${process.pid}`);
    } finally {
      first.release();
    }
  });
});
