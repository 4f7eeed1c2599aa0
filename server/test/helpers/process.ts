/**
 * Runs the real server entry point (`server/src/main.ts`) as a child process, the way operators
 * run it, for tests about processes: durability under SIGKILL, several replicas, shutdown.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A server child process. */
export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** Resolves with the exit code / signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/**
 * Spawns `node --import tsx server/src/main.ts` with `env` and waits until /health answers.
 * The server listens on port 0 and the kernel picks the port, which the server's "listening" log
 * line reports (nothing can take it in between); with a LOG_LEVEL above `info`, which hides that
 * line, a kernel-picked free port is passed as PORT instead. The wait has a deadline and watches
 * the child: one that exits during start-up is reported as exited, with its output, at once.
 */
export async function spawnServer(env: Record<string, string>, timeoutMs = 180_000): Promise<ServerProcess> {
  const level = env.LOG_LEVEL ?? 'info';
  const fixedPort = env.PORT
    ? Number(env.PORT)
    : LEVELS.indexOf(level) > LEVELS.indexOf('info')
      ? await freePort()
      : 0;
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      HOST: '127.0.0.1',
      // As in helpers/server.ts: the detectors' own `alert.*` events would change other tests' counts.
      ALERTS_DETECTORS_ENABLED: 'false',
      ...env,
      LOG_LEVEL: level,
      PORT: String(fixedPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let announced: string | null = null;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (announced === null)
      announced =
        /"url":"(http:\/\/[^"]+)"[^\n]*audit server listening|audit server listening[^\n]*"url":"(http:\/\/[^"]+)"/
          .exec(out)
          ?.slice(1)
          .find(Boolean) ?? null;
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  void exited.then((e) => (exit = e));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exit) throw new Error(`server exited during start-up (${JSON.stringify(exit)}):\n${out}`);
    const url = fixedPort === 0 ? announced : `http://127.0.0.1:${fixedPort}`;
    if (url !== null) {
      try {
        const res = await fetch(`${url}/health`);
        if (res.ok) return { child, url, output: () => out, exited };
      } catch {
        /* not answering yet */
      }
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not become healthy within ${timeoutMs} ms:\n${out}`);
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 100))]);
  }
}

/** Kills a server process and waits for it to be gone. */
export async function killServer(p: ServerProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  await p.exited;
}

/** POSTs JSON with a key; returns status and parsed body (throws on network errors). */
export async function postJson(
  url: string,
  key: string,
  body: unknown,
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** GETs JSON with a key. */
export async function getJson(url: string, key: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

/** What a finished CLI run printed. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `audit-admin` (server/src/cli/admin.ts) from source, as operators do, with only `env`
 * (plus PATH and NODE_ENV=test) and `stdin` (default: none).
 */
export function runAdminCli(args: string[], env: Record<string, string>, stdin?: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/cli/admin.ts', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_ENV: 'test', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(stdin ?? '');
    child.once('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
