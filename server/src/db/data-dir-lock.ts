/**
 * One process per embedded data directory. PGlite has no lock of its own: two processes opening
 * the same directory (a second server, or `audit-admin` beside a running one) each see their own
 * copy of the database and overwrite each other's files. Whoever opens the directory first holds
 * `audit.lock` in it (its pid and the kernel's start time of that pid, so a reused pid is not
 * mistaken for the holder); anyone else is refused with {@link DataDirInUseError} until the
 * holder closes the database or dies (docs/architecture.md §2).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The lock file's name inside the data directory. */
export const LOCK_FILE = 'audit.lock';

/** What the lock file holds. */
export interface LockHolder {
  pid: number;
  /** Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux. */
  startTime: string | null;
  hostname: string;
  /** The holder's HTTP base URL, once it listens (servers only). */
  url?: string;
}

/** The data directory is open in another live process. */
export class DataDirInUseError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super(
      `the data directory ${dataDir} is in use by process ${holder.pid}${holder.url ? ` (a server at ${holder.url})` : ''}; ` +
        'the embedded database allows one process at a time',
    );
    this.name = 'DataDirInUseError';
  }
}

/** Start time of a live process, false when it does not exist, null when /proc is unavailable. */
function startTimeOf(pid: number): string | null | false {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesized command (which may contain spaces): state is field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return false;
    return fields[19] ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return fs.existsSync('/proc/self/stat') ? false : pidAlive(pid);
    return null;
  }
}

function pidAlive(pid: number): null | false {
  try {
    process.kill(pid, 0);
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? null : false;
  }
}

/** Whether the recorded holder is still the same running process (this one included). */
function holderAlive(holder: LockHolder): boolean {
  if (!Number.isInteger(holder.pid) || holder.pid <= 0) return false;
  const now = startTimeOf(holder.pid);
  if (now === false) return false;
  // With /proc, a different start time means the pid was reused (a new container's pid 1 too).
  if (now !== null && holder.startTime !== null) return now === holder.startTime;
  // Without it only liveness is known, and our own pid cannot be told from a previous run's.
  return holder.pid !== process.pid;
}

function readHolder(file: string): LockHolder | null {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as LockHolder;
    return typeof parsed.pid === 'number' ? parsed : null;
  } catch {
    return null;
  }
}

/** A held lock. */
export interface DataDirLock {
  readonly file: string;
  /** Records the server's URL in the lock, so a refused CLI can point at it. */
  setUrl(url: string): void;
  release(): void;
}

/**
 * Takes the lock of `dataDir` or throws {@link DataDirInUseError}. A lock left by a process that
 * is gone (killed, crashed, another container's pid) is taken over.
 */
export function acquireDataDirLock(dataDir: string): DataDirLock {
  const dir = path.resolve(dataDir);
  const file = path.join(dir, LOCK_FILE);
  const own: LockHolder = {
    pid: process.pid,
    startTime: startTimeOf(process.pid) || null,
    hostname: os.hostname(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      // 'wx' = O_CREAT|O_EXCL: exactly one process creates the file.
      fs.writeFileSync(file, JSON.stringify(own), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readHolder(file);
      if (holder && holderAlive(holder)) throw new DataDirInUseError(dataDir, holder);
      // A half-written file (a racing creator) is given one more look before it counts as stale.
      if (attempt >= 2)
        throw new DataDirInUseError(dataDir, holder ?? { pid: 0, startTime: null, hostname: '' });
      if (holder) fs.rmSync(file, { force: true });
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener('exit', release);
    const holder = readHolder(file);
    if (holder?.pid === process.pid) fs.rmSync(file, { force: true });
  };
  process.once('exit', release);
  return {
    file,
    setUrl(url) {
      if (!released) fs.writeFileSync(file, JSON.stringify({ ...own, url }), { mode: 0o600 });
    },
    release,
  };
}
