/**
 * Shared plumbing for the deployment tests: finding system binaries (failing loudly when they are
 * missing), temporary directories, free ports, child processes that are always cleaned up, and
 * small bounded polling helpers. Nothing here mocks a program: every test runs the real one.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';

/** Repository root (this file lives in server/test/deploy/support). */
export const REPO_ROOT = resolve(__dirname, '..', '..', '..', '..');

/** Where CI's `apt-get install` puts the binaries; searched in addition to PATH. */
const EXTRA_BIN_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', '/sbin', '/bin'];

/**
 * Returns the absolute path of a binary, or throws an error that names the Debian package to
 * install. Tests must fail (not skip) when a tool is missing: CI installs them (.ci/run).
 */
export function requireBinary(name: string, debianPackage: string = name): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d.length > 0), ...EXTRA_BIN_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  throw new Error(
    `required binary "${name}" was not found in PATH or ${EXTRA_BIN_DIRS.join(', ')}; ` +
      `install it with: apt-get install -y ${debianPackage}`,
  );
}

/** Creates a fresh temporary directory; the returned function removes it. */
export function makeTempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `audit-deploy-${prefix}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function tryBind(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => done(true)));
  });
}

/** A port the kernel picks (listen on 0) on `host`. */
function kernelPort(host: string): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => done(port));
    });
  });
}

const handedOut = new Set<number>();

/**
 * A TCP port for a program that must be told its port up front (nginx, redis-server, postgres):
 * one the kernel picks by listening on port 0, so never a guess from a range that overlaps the
 * ephemeral ports of outgoing connections, and free right now on every one of `hosts` (default
 * 127.0.0.1; several loopback addresses let replicas share one port, as containers do). Ports
 * already handed out in this process are never reused. The audit server itself listens on 0 and
 * reports its address instead (see support/server.ts).
 */
export async function freePort(hosts: readonly string[] = ['127.0.0.1']): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await kernelPort(hosts[0] ?? '127.0.0.1');
    if (handedOut.has(port)) continue;
    let free = true;
    for (const host of hosts.slice(1)) free = free && (await tryBind(port, host));
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no TCP port free on ${hosts.join(', ')} after 200 attempts`);
}

/** A child process whose output is captured line by line. */
export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every stdout line so far. */
  readonly stdoutLines: string[];
  /** Every stderr line so far. */
  readonly stderrLines: string[];
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** True once the process has exited. */
  hasExited(): boolean;
  /** SIGTERM, then SIGKILL if it is still alive after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>;
  /** Output so far, for error messages. */
  output(): string;
}

const running = new Set<ManagedProcess>();

function splitLines(target: string[], onLine?: (line: string) => void) {
  let partial = '';
  return (chunk: Buffer) => {
    partial += chunk.toString('utf8');
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      target.push(line);
      onLine?.(line);
    }
  };
}

/**
 * Spawns a program with captured output and registers it for {@link stopAll}. The environment is
 * exactly `env` (plus PATH) so the parent's variables never leak into a server under test.
 */
export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    uid?: number;
    gid?: number;
    stdoutFd?: number;
    processGroup?: boolean;
  } = {},
): ManagedProcess {
  const spawnOptions: SpawnOptions = {
    cwd: options.cwd ?? REPO_ROOT,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    // A file descriptor as stdout lets programs that open /dev/stdout (nginx access_log) work:
    // Node's own stdio pipes are sockets, and open("/proc/self/fd/1") fails on a socket (ENXIO).
    stdio: ['ignore', options.stdoutFd ?? 'pipe', 'pipe'],
  };
  // A wrapper such as `npm start` does not reliably pass SIGTERM on to its child: give it its own
  // process group and signal the whole group, so no grandchild outlives the test.
  if (options.processGroup) spawnOptions.detached = true;
  if (options.uid !== undefined) spawnOptions.uid = options.uid;
  if (options.gid !== undefined) spawnOptions.gid = options.gid;
  const child = spawn(command, [...args], spawnOptions);
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  child.stdout?.on('data', splitLines(stdoutLines));
  child.stderr?.on('data', splitLines(stderrLines));
  let exited = false;
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (options.processGroup && child.pid !== undefined) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  const exitPromise = new Promise<number | string>((done) => {
    child.once('exit', (code, signal) => {
      exited = true;
      done(code ?? signal ?? 'unknown');
    });
    child.once('error', (error) => {
      exited = true;
      stderrLines.push(`spawn error: ${error.message}`);
      done('spawn-error');
    });
  });
  const managed: ManagedProcess = {
    name,
    child,
    stdoutLines,
    stderrLines,
    exited: exitPromise,
    hasExited: () => exited,
    output: () =>
      `--- ${name} stdout ---\n${stdoutLines.slice(-60).join('\n')}\n--- ${name} stderr ---\n${stderrLines.slice(-60).join('\n')}`,
    stop: async (graceMs = 10_000) => {
      if (!exited) {
        signal('SIGTERM');
        const timer = setTimeout(() => {
          if (!exited) signal('SIGKILL');
        }, graceMs);
        await exitPromise;
        clearTimeout(timer);
      }
      // The group may outlive its leader (the wrapper exited first): make sure it is gone too.
      if (options.processGroup) signal('SIGKILL');
      running.delete(managed);
      return exitPromise;
    },
  };
  running.add(managed);
  return managed;
}

/** Stops every process started through {@link startProcess} that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(5_000)));
}

/** Sleeps without blocking the event loop. */
export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

/** Thrown by a probe to stop {@link waitFor} at once (the process it waits for has exited). */
export class StopWaiting extends Error {}

/**
 * Polls `probe` until it returns a value that is not `undefined`, every `intervalMs`, until a
 * deadline (`timeoutMs`, default `attempts × intervalMs`, measured on the clock so a slow probe on
 * a loaded machine does not stretch it); throws with `describe()` (typically process output) if it
 * never does. A probe that throws {@link StopWaiting} ends the wait at once with that error (a
 * crashed process is reported as exited, not as a timeout).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  {
    attempts = 150,
    intervalMs = 200,
    timeoutMs = attempts * intervalMs,
    describe = () => '',
  }: { attempts?: number; intervalMs?: number; timeoutMs?: number; describe?: () => string } = {},
): Promise<T> {
  let lastError = '';
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      if (error instanceof StopWaiting) throw new Error(`${what}: ${error.message}\n${describe()}`);
      lastError = error instanceof Error ? error.message : String(error);
    }
    if (Date.now() > deadline) break;
    await sleep(intervalMs);
  }
  throw new Error(
    `timed out waiting for ${what} after ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}\n${describe()}`,
  );
}

/** Result of a synchronous command. */
export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by `timeoutMs`) and returns its output. */
export function run(
  command: string,
  args: readonly string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    input?: string;
    timeoutMs?: number;
    stdoutFd?: number;
    uid?: number;
    gid?: number;
  } = {},
): CommandResult {
  const result = spawnSync(command, [...args], {
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
    cwd: options.cwd ?? REPO_ROOT,
    ...(options.stdoutFd !== undefined ? { stdio: ['pipe', options.stdoutFd, 'pipe'] } : {}),
    env: options.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    input: options.input,
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 120_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Formats a failed command for an assertion message. */
export function describeResult(label: string, result: CommandResult): string {
  return `${label} exited ${String(result.status)}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
}
