/**
 * Starting the real audit server for the deployment tests: from source (`npm start`'s command,
 * `node --import tsx server/src/main.ts`) or from a `tsc` build (the image's
 * `node server/dist/main.js`), with an explicit environment and captured JSON logs.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSignerKey } from '../../../src/ledger';
import { fetchOnce } from './services';
import { REPO_ROOT, StopWaiting, describeResult, run, startProcess, waitFor } from './tools';
import type { ManagedProcess } from './tools';

/** A fresh Ed25519 checkpoint signing key in the form AUDIT_SIGNING_KEY takes. */
export function newSigningKey(name = 'smedrec.audit'): string {
  return generateSignerKey(name).signerKey;
}

/** A bootstrap admin API key (AUDIT_BOOTSTRAP_API_KEY needs at least 32 characters). */
export function newApiKey(): string {
  return `deploy-test-${randomBytes(24).toString('hex')}`;
}

/** How to launch the server: TypeScript source through tsx, or a compiled tree. */
export type ServerCommand = { kind: 'source' } | { kind: 'built'; appDir: string };

function argv(command: ServerCommand, script: 'main' | 'admin'): { cwd: string; args: string[] } {
  if (command.kind === 'source') {
    const file = script === 'main' ? 'server/src/main.ts' : 'server/src/cli/admin.ts';
    return { cwd: REPO_ROOT, args: ['--import', 'tsx', file] };
  }
  const file = script === 'main' ? 'server/dist/main.js' : 'server/dist/cli/admin.js';
  return { cwd: command.appDir, args: [file] };
}

/** One parsed JSON log line of the server (pino). */
export type LogLine = Record<string, unknown>;

/** A running server process. */
export interface AuditServer {
  readonly name: string;
  /** The address it listens on. */
  readonly host: string;
  readonly port: number;
  readonly process: ManagedProcess;
  /** JSON lines the process has written to stdout so far. */
  logs(): LogLine[];
  /** Request ids (`reqId`) of the requests this process logged. */
  requestIds(): Set<string>;
}

function parseLogs(lines: readonly string[]): LogLine[] {
  const parsed: LogLine[] = [];
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      parsed.push(JSON.parse(line) as LogLine);
    } catch {
      // a partial or non-JSON line (the one-time bootstrap banner) is not a log record
    }
  }
  return parsed;
}

/**
 * Starts the server with exactly `env` (plus PORT, and HOST: 127.0.0.1 unless `host` names another
 * loopback address) and waits until `/ready` answers 200
 * (database reachable, schema current, Redis answering when configured).
 */
export async function startAuditServer(
  name: string,
  port: number,
  env: Record<string, string>,
  options: { command?: ServerCommand; uid?: number; gid?: number; host?: string } = {},
): Promise<AuditServer> {
  const { cwd, args } = argv(options.command ?? { kind: 'source' }, 'main');
  const host = options.host ?? '127.0.0.1';
  const proc = startProcess(name, process.execPath, args, {
    cwd,
    env: { ...env, PORT: String(port), HOST: host },
    ...(options.uid !== undefined ? { uid: options.uid } : {}),
    ...(options.gid !== undefined ? { gid: options.gid } : {}),
  });
  await waitFor(
    `${name} /ready on port ${port}`,
    async () => {
      if (proc.hasExited())
        throw new StopWaiting(`${name} exited with ${String(await proc.exited)} during start-up`);
      const response = await fetchOnce({ host, port, path: '/ready', timeoutMs: 2_000 });
      return response.status === 200 ? true : undefined;
    },
    // A deadline, not a count of attempts: a server compiled by tsx on a busy 2-core machine can
    // need well over a minute.
    { intervalMs: 200, timeoutMs: 180_000, describe: () => proc.output() },
  );
  const logs = () => parseLogs(proc.stdoutLines);
  return {
    name,
    host,
    port,
    process: proc,
    logs,
    requestIds: () =>
      new Set(
        logs()
          .map((l) => l.reqId)
          .filter((id): id is string => typeof id === 'string'),
      ),
  };
}

/** Runs a one-shot server command (`AUDIT_ROLE=migrate`, or the admin CLI) to completion. */
export function runServerCommand(
  env: Record<string, string>,
  options: { command?: ServerCommand; script?: 'main' | 'admin'; args?: string[]; input?: string } = {},
): ReturnType<typeof run> {
  const { cwd, args } = argv(options.command ?? { kind: 'source' }, options.script ?? 'main');
  return run(process.execPath, [...args, ...(options.args ?? [])], {
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    ...(options.input !== undefined ? { input: options.input } : {}),
    timeoutMs: 180_000,
  });
}

/**
 * Compiles the server the way the image's build stage does (`tsc -p server/tsconfig.build.json`)
 * into `<dir>/app/server/dist`, and lays out the runner stage's tree beside it: package.json
 * files, migrations, and the installed node_modules (linked, read-only for the test user).
 */
export function buildServerTree(dir: string): string {
  const appDir = join(dir, 'app');
  mkdirSync(join(appDir, 'server'), { recursive: true });
  const tsc = run(
    process.execPath,
    [
      join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      'server/tsconfig.build.json',
      '--outDir',
      join(appDir, 'server', 'dist'),
    ],
    {
      timeoutMs: 300_000,
    },
  );
  if (tsc.status !== 0) throw new Error(describeResult('tsc -p server/tsconfig.build.json', tsc));
  cpSync(join(REPO_ROOT, 'package.json'), join(appDir, 'package.json'));
  cpSync(join(REPO_ROOT, 'server', 'package.json'), join(appDir, 'server', 'package.json'));
  cpSync(join(REPO_ROOT, 'server', 'migrations'), join(appDir, 'server', 'migrations'), { recursive: true });
  symlinkSync(join(REPO_ROOT, 'node_modules'), join(appDir, 'node_modules'), 'dir');
  writeFileSync(join(dir, 'BUILT'), 'ok\n');
  return appDir;
}
