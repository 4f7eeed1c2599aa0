/**
 * The container's runtime contract without a container: the server compiled exactly as the
 * image's build stage compiles it (`tsc -p server/tsconfig.build.json`), laid out like the runner
 * stage (/app with server/dist, server/migrations, node_modules, all owned by root), and run as
 * the unprivileged uid/gid 1001 with the image's environment. Only a directory under /tmp is
 * writable, which is what `read_only: true` + a /tmp tmpfs (or Kubernetes
 * readOnlyRootFilesystem) leaves. It must migrate, serve, verify and stop cleanly on SIGTERM.
 *
 * When the tests do not run as root they cannot switch users: the tree is then made read-only
 * with chmod for the current (already unprivileged) user instead.
 */
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { createThrowawayDatabase, fetchOnce, postgresForTests } from './support/services';
import type { ThrowawayDatabase } from './support/services';
import { buildServerTree, newApiKey, newSigningKey, startAuditServer } from './support/server';
import type { AuditServer, ServerCommand } from './support/server';
import { describeResult, freePort, makeTempDir, requireBinary, run, stopAll } from './support/tools';
import type { CommandResult } from './support/tools';

jest.setTimeout(420_000);

const IMAGE_UID = 1001;
const IMAGE_GID = 1001;
const asRoot = process.getuid?.() === 0;
const pg = postgresForTests();
if (pg.url === undefined) console.warn(`read-only runtime (PostgreSQL variant): ${pg.reason}`);

/** Every path under `dir` (not following the node_modules link) with size and mtime. */
function snapshot(dir: string): Map<string, string> {
  const entries = new Map<string, string>();
  const walk = (path: string) => {
    const stat = lstatSync(path);
    entries.set(path, `${stat.mode}:${stat.size}:${stat.mtimeMs}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
  };
  walk(dir);
  return entries;
}

/** Recursively removes write permission for everyone (used when the tests are not root). */
function makeReadOnly(path: string): void {
  const stat = lstatSync(path);
  if (stat.isSymbolicLink()) return;
  if (stat.isDirectory()) for (const name of readdirSync(path)) makeReadOnly(join(path, name));
  chmodSync(path, stat.mode & ~0o222);
}

/** Runs `node <args>` as uid/gid 1001 (through util-linux setpriv when root), else as ourselves. */
function runAsImageUser(
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): CommandResult {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env };
  if (!asRoot) return run(process.execPath, args, { cwd: options.cwd, env });
  const setpriv = requireBinary('setpriv', 'util-linux');
  return run(
    setpriv,
    [`--reuid=${IMAGE_UID}`, `--regid=${IMAGE_GID}`, '--clear-groups', process.execPath, ...args],
    {
      cwd: options.cwd,
      env,
      timeoutMs: 180_000,
    },
  );
}

describe('built server under a read-only tree as uid 1001', () => {
  const temp = makeTempDir('readonly');
  let appDir: string;
  let writable: string;
  let command: ServerCommand;
  let before: Map<string, string>;
  const user = asRoot ? { uid: IMAGE_UID, gid: IMAGE_GID } : {};

  /** The runner stage's environment (Dockerfile ENV) plus what compose/Kubernetes inject. */
  const imageEnv = (extra: Record<string, string>): Record<string, string> => ({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    HOME: writable,
    TMPDIR: writable,
    AUDIT_DATA_DIR: join(writable, 'audit-data'),
    AUDIT_SIGNING_KEY: newSigningKey(),
    ...extra,
  });

  beforeAll(() => {
    // mkdtemp creates the directory 0700; the image user must be able to traverse into /app.
    chmodSync(temp.dir, 0o755);
    appDir = buildServerTree(temp.dir);
    writable = join(temp.dir, 'tmp');
    mkdirSync(writable, { mode: 0o700 });
    if (asRoot) {
      // Root owns /app (as COPY in the Dockerfile leaves it); only the tmp directory is 1001's.
      chownSync(writable, IMAGE_UID, IMAGE_GID);
    } else {
      makeReadOnly(appDir);
    }
    command = { kind: 'built', appDir };
    before = snapshot(appDir);
  });

  afterAll(async () => {
    await stopAll();
    if (!asRoot) run('chmod', ['-R', 'u+w', appDir]);
    temp.remove();
  });

  it('really cannot write to its own tree (the simulation is not vacuous)', () => {
    const target = join(appDir, 'server', 'probe');
    const result = runAsImageUser(['-e', `require('fs').writeFileSync(${JSON.stringify(target)}, 'x')`], {
      cwd: appDir,
      env: {},
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/EACCES|EPERM|EROFS/);
  });

  const modes: {
    name: string;
    database: () => Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }>;
  }[] = [
    {
      name: 'embedded PGlite with AUDIT_DATA_DIR under /tmp',
      database: () => Promise.resolve({ env: {}, cleanup: () => Promise.resolve() }),
    },
  ];
  if (pg.url !== undefined) {
    modes.push({
      name: 'PostgreSQL (DATABASE_URL), migrations by AUDIT_ROLE=migrate',
      database: async () => {
        const db: ThrowawayDatabase = await createThrowawayDatabase(pg.url, 'readonly');
        return {
          env: { DATABASE_URL: db.url, DATABASE_MIGRATE_ON_START: 'false' },
          cleanup: () => db.drop(),
        };
      },
    });
  }

  describe.each(modes)('$name', ({ name, database }) => {
    let server: AuditServer;
    let env: Record<string, string>;
    let cleanup: () => Promise<void> = () => Promise.resolve();
    const apiKey = newApiKey();

    beforeAll(async () => {
      const db = await database();
      cleanup = db.cleanup;
      env = imageEnv({
        ...db.env,
        AUDIT_BOOTSTRAP_API_KEY: apiKey,
        AUDIT_DATA_DIR: join(writable, `data-${name.split(' ')[0]}`),
      });
      if (env.DATABASE_URL) {
        const migrate = runAsImageUser(['server/dist/main.js'], {
          cwd: appDir,
          env: { ...env, AUDIT_ROLE: 'migrate' },
        });
        if (migrate.status !== 0) throw new Error(describeResult('AUDIT_ROLE=migrate as uid 1001', migrate));
      }
      server = await startAuditServer(`readonly-${name.split(' ')[0]}`, await freePort(), env, {
        command,
        ...user,
      });
    });

    afterAll(async () => {
      await server?.process.stop();
      await cleanup();
    });

    it('serves health, readiness and an authenticated write', async () => {
      expect((await fetchOnce({ port: server.port, path: '/health' })).status).toBe(200);
      expect((await fetchOnce({ port: server.port, path: '/ready' })).status).toBe(200);
      const receipt = await fetchOnce({
        port: server.port,
        path: '/api/v1/events',
        method: 'POST',
        headers: { 'x-api-key': apiKey },
        body: JSON.stringify({ action: 'data.read', status: 'success' }),
      });
      expect({ status: receipt.status, body: receipt.body }).toEqual(
        expect.objectContaining({ status: 201 }),
      );
      expect(JSON.parse(receipt.body)).toEqual(expect.objectContaining({ leafIndex: 0, treeSize: 1 }));
    });

    it('runs as the image user, never root', () => {
      const status = readFileSync(`/proc/${server.process.child.pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      expect(uid).not.toBe(0);
      if (asRoot) {
        expect(uid).toBe(IMAGE_UID);
        expect(Number(/^Gid:\s+(\d+)/m.exec(status)?.[1])).toBe(IMAGE_GID);
      }
    });

    it('stops with exit code 0 on SIGTERM (graceful shutdown)', async () => {
      expect(await server.process.stop(20_000)).toBe(0);
    });

    it('lets the admin CLI verify the ledger as the same user', () => {
      const verify = runAsImageUser(['server/dist/cli/admin.js', 'verify-ledger'], { cwd: appDir, env });
      expect(describeResult('audit-admin verify-ledger', verify)).toMatch(/exited 0/);
      expect(JSON.parse(verify.stdout)).toEqual(expect.objectContaining({ ok: true }));
    });

    it('left the application tree exactly as it was', () => {
      expect(snapshot(appDir)).toEqual(before);
    });
  });
});
