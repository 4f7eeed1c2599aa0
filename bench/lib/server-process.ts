/**
 * Runs the audit server as a child process (`node --import tsx server/src/main.ts`), so that its
 * memory and CPU can be read from /proc/<pid> apart from the benchmark client's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

/** Repository root (bench/lib/ → ../..). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** Linux reports CPU times in clock ticks; USER_HZ is 100 on every mainstream kernel build. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Memory and CPU of one process, read from procfs. */
export interface ProcessSample {
  /** Resident set size now (VmRSS), bytes. */
  rssBytes: number;
  /** Peak resident set size since start (VmHWM), bytes. */
  hwmBytes: number;
  /** User + system CPU time consumed since start, seconds. */
  cpuSeconds: number;
}

/** Reads VmRSS/VmHWM (proc(5) /proc/pid/status) and utime+stime (/proc/pid/stat fields 14–15). */
export function sampleProcess(pid: number): ProcessSample {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  };
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]); // field 14 overall; fields[0] is field 3 (state)
  const stime = Number(fields[12]); // field 15
  return { rssBytes: kib('VmRSS'), hwmBytes: kib('VmHWM'), cpuSeconds: (utime + stime) / CLOCK_TICKS_PER_SECOND };
}

/** utime + stime of `pids`, seconds, from /proc; a process that is gone counts as 0. */
export function cpuSecondsOf(pids: readonly number[]): number {
  let s = 0;
  for (const pid of pids) {
    try {
      s += sampleProcess(pid).cpuSeconds;
    } catch {
      // exited: its CPU is no longer readable
    }
  }
  return s;
}

/**
 * CPU seconds of a process's threads, from /proc/<pid>/task/<tid>/stat: `main` (the thread where
 * JavaScript runs) and the others by name with digits dropped (on Node 20 V8's platform workers —
 * parallel and concurrent GC, concurrent compilation — and libuv's thread pool are all named after
 * the process). Threads that exited are lost.
 */
export function sampleThreads(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+/g, '').trim();
      const name = tid === String(pid) ? 'main' : `${comm} (other threads)`;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
      out.set(name, (out.get(name) ?? 0) + cpu);
    } catch {
      // the thread exited meanwhile
    }
  }
  return out;
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

/** A started server child. */
export interface ServerProcess {
  pid: number;
  url: string;
  /** Last lines the server wrote to stdout/stderr (for error reports). */
  output(): string;
  /** SIGTERM (graceful drain), SIGKILL after `timeoutMs`; resolves with the exit code or signal. */
  stop(timeoutMs?: number): Promise<string>;
  /** SIGKILL now (a crash: no drain); resolves once the process is gone. */
  kill(): Promise<string>;
}

/**
 * Starts the server with `env` added to this process's environment (PORT and HOST are set here)
 * and waits until `/ready` answers 200, at most `readyTimeoutMs` (default 120 s). `nodeArgs` go
 * before the script (e.g. `--cpu-prof`); `compiled` runs `server/dist/main.js` instead of the
 * TypeScript sources through tsx.
 */
export async function startServer(
  env: Record<string, string>,
  options: { readyTimeoutMs?: number; nodeArgs?: string[]; compiled?: boolean } = {},
): Promise<ServerProcess> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // The compiled server (`npm run build -w server`, what the image runs) or the sources through tsx.
  const script = options.compiled ? ['server/dist/main.js'] : ['--import', 'tsx', 'server/src/main.ts'];
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), ...script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(...chunk.toString('utf8').split('\n').filter((l) => l.length > 0));
    if (tail.length > 60) tail.splice(0, tail.length - 60);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited: string | null = null;
  const exit = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal ?? `exit ${code ?? '?'}`;
      resolve(exited);
    });
  });
  const output = () => tail.join('\n');
  const stop = async (timeoutMs = 30_000): Promise<string> => {
    if (exited !== null) return exited;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const how = await exit;
    clearTimeout(timer);
    return how;
  };

  const deadline = Date.now() + readyTimeoutMs;
  // Bounded: one probe per 200 ms until the deadline.
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`server exited during start-up (${String(exited)}):\n${output()}`);
    if ((await getStatus(`${url}/ready`)) === 200) {
      const kill = () => {
        if (exited === null) child.kill('SIGKILL');
        return exit;
      };
      return { pid: child.pid!, url, output, stop, kill };
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await stop(5_000);
  throw new Error(`server was not ready after ${readyTimeoutMs} ms:\n${output()}`);
}

/**
 * Samples a process every `intervalMs` and keeps the peak RSS per named phase, so the report can
 * say which phase drove memory up. Sampling stops when the process is gone.
 */
export class RssSampler {
  private timer: NodeJS.Timeout | null = null;
  private phase = 'start-up';
  private readonly peaks = new Map<string, number>();
  private last: ProcessSample | null = null;

  constructor(
    private readonly pid: number,
    private readonly intervalMs = 250,
  ) {}

  /** Starts sampling. */
  start(): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.timer.unref();
  }

  /** Attributes following samples to `name` (takes one sample at the boundary). */
  enter(name: string): void {
    this.sample();
    this.phase = name;
    this.sample();
  }

  /** Takes a sample now and returns it (null once the process has exited). */
  sample(): ProcessSample | null {
    try {
      const s = sampleProcess(this.pid);
      this.last = s;
      this.peaks.set(this.phase, Math.max(this.peaks.get(this.phase) ?? 0, s.rssBytes));
      return s;
    } catch {
      return null; // the process exited between two samples
    }
  }

  /** The most recent successful sample. */
  latest(): ProcessSample | null {
    return this.last;
  }

  /** Peak RSS (bytes) seen during each phase, in the order the phases were entered. */
  peakByPhase(): Array<[string, number]> {
    return [...this.peaks.entries()];
  }

  /** Stops sampling. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
