/**
 * Things a newcomer following the README hits: `.ci/run` needs the test database to exist,
 * stopping `npm start` must stop the server, the quick start follows `$PORT` and leaves no
 * untracked receipt behind.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describePostgres } from '../helpers/backends';
import { freePort } from '../helpers/process';

const ROOT = path.resolve(__dirname, '../../..');
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/**
 * Polls `probe` every 100 ms until it returns true; fails after `limitMs` (a hang guard only: a
 * fresh data directory is created and migrated inside WebAssembly, which took 68 s at a load
 * average of 17 on two cores, and 339 s when the test itself ran at nice 10 beside that load),
 * saying what `context` returns then.
 */
async function until(
  what: string,
  probe: () => Promise<boolean> | boolean,
  context: () => string = () => '',
  limitMs = 540_000,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs / 1000} s waiting for ${what} (load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})${context()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every descendant pid of `pid` (from /proc). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      /* gone meanwhile */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    for (const child of parents.get(stack.pop()!) ?? []) {
      out.push(child);
      stack.push(child);
    }
  }
  return out;
}

const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));

describe('npm start', () => {
  it('stops the server when the npm process alone receives SIGTERM', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'npm-start-'));
    const port = await freePort();
    // Not a process group: only npm's own pid is signalled, as `kill <pid>` of a newcomer does.
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        PORT: String(port),
        HOST: '127.0.0.1',
        AUDIT_DATA_DIR: path.join(dir, 'data'),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    npm.stdout.on('data', (d: Buffer) => (output += d.toString()));
    npm.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<void>((resolve) => npm.once('exit', () => resolve()));
    let tree: number[] = [];
    try {
      await until('npm start /health', async () => {
        if (npm.exitCode !== null) throw new Error(`npm start exited:\n${output}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
        } catch {
          return false;
        }
      }, () => `; its output so far:\n${output.slice(-4000)}`);
      tree = descendants(npm.pid!);
      expect(tree.length).toBeGreaterThan(0);
      npm.kill('SIGTERM');
      await exited;
      // Every process npm started (the node server) ends too, and the port stops answering.
      await until('the server processes to end', () => tree.every((pid) => !alive(pid)));
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    } finally {
      for (const pid of [npm.pid!, ...tree]) {
        try {
          if (alive(pid)) process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the README quick start', () => {
  const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## API'));

  it('talks to the port the server listens on ($PORT, 3000 by default), never a fixed one', () => {
    expect(quickStart).toContain('export PORT=${PORT:-3000}');
    expect(quickStart).toMatch(/localhost:\$PORT\//);
    expect(quickStart).not.toMatch(/localhost:\d/);
  });

  it('writes receipt.json, which git ignores', () => {
    expect(quickStart).toContain('tee receipt.json');
    const ignored = spawnSync('git', ['-C', ROOT, 'check-ignore', '-q', 'receipt.json']);
    expect(ignored.status).toBe(0);
  });

  it('says how long the tests take', () => {
    expect(readme).toMatch(/`bash \.ci\/run` takes about \d+ minutes/);
  });
});

jest.setTimeout(600_000);

describePostgres('.ci/ensure-database (run by .ci/run)', () => {
  const name = `ensure_db_${randomBytes(5).toString('hex')}`;
  const base = process.env.TEST_DATABASE_URL ?? 'postgres://unset/unset';
  const url = Object.assign(new URL(base), { pathname: `/${name}` }).toString();
  const exists = async () => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      return (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
    } finally {
      await c.end();
    }
  };
  afterAll(async () => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  });

  it('creates the database named in the URL when missing, and leaves it alone when present', async () => {
    expect(await exists()).toBe(false);
    const first = spawnSync(path.join(ROOT, '.ci/ensure-database'), [url], { encoding: 'utf8' });
    expect(first.stderr).toBe('');
    expect(first.stdout).toContain(`created ${name}`);
    expect(await exists()).toBe(true);
    const second = spawnSync(path.join(ROOT, '.ci/ensure-database'), [url], { encoding: 'utf8' });
    expect(second.status).toBe(0);
    expect(second.stdout).toBe('');
  });

  it('refuses a database name it would have to quote', () => {
    const bad = spawnSync(
      path.join(ROOT, '.ci/ensure-database'),
      [`${base.replace(/\/[^/]*$/, '')}/x";drop`],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('the database name must be');
  });
});
