/**
 * A private Redis Sentinel group, as `RedisSentinel` (manifests/) deploys it: one primary, two
 * replicas and three sentinels (quorum 2), real `redis-server` and `redis-sentinel` processes on
 * ports the kernel picked, password-protected (`requirepass`/`masterauth` on the data nodes,
 * `requirepass` on the sentinels too), `maxmemory-policy noeviction`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, makeTempDir, requireBinary, run, startProcess, waitFor, type ManagedProcess } from '../../deploy/support/tools';

/** A running group. */
export interface SentinelGroup {
  readonly masterName: string;
  readonly password: string;
  readonly sentinelPassword: string;
  /** `host:port` of each sentinel (the form REDIS_SENTINELS takes, comma-separated). */
  readonly sentinels: string[];
  /** Ports of the data nodes; index 0 started as the primary. */
  readonly nodePorts: number[];
  /** The port of the current primary, as the sentinels report it. */
  primaryPort(): number;
  /** SIGKILLs the data node on `port` (no shutdown, no save: a crash). */
  kill(port: number): Promise<void>;
  /** Runs redis-cli against a data node. */
  cli(port: number, ...args: string[]): string;
  stop(): Promise<void>;
}

/** Starts the group and waits until every sentinel knows both replicas and the other sentinels. */
export async function startSentinelGroup(label: string, options: { downAfterMs?: number } = {}): Promise<SentinelGroup> {
  const redisServer = requireBinary('redis-server', 'redis-server');
  const redisSentinel = requireBinary('redis-sentinel', 'redis-sentinel');
  const redisCli = requireBinary('redis-cli', 'redis-tools');
  const temp = makeTempDir(label);
  const masterName = 'audit';
  const password = `pw-${Math.random().toString(36).slice(2)}`;
  const sentinelPassword = `spw-${Math.random().toString(36).slice(2)}`;
  const nodePorts = [await freePort(), await freePort(), await freePort()];
  const sentinelPorts = [await freePort(), await freePort(), await freePort()];
  const processes = new Map<number, ManagedProcess>();
  const cliEnv = (pw: string) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', REDISCLI_AUTH: pw });
  const cli = (port: number, ...args: string[]) => {
    const r = run(redisCli, ['-h', '127.0.0.1', '-p', String(port), ...args], { env: cliEnv(password), timeoutMs: 10_000 });
    return r.stdout.trim();
  };
  const sentinelCli = (port: number, ...args: string[]) =>
    run(redisCli, ['-h', '127.0.0.1', '-p', String(port), ...args], { env: cliEnv(sentinelPassword), timeoutMs: 10_000 }).stdout.trim();

  for (const [i, port] of nodePorts.entries()) {
    const dir = join(temp.dir, `node-${i}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'redis.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `requirepass ${password}`,
        `masterauth ${password}`,
        'maxmemory 64mb',
        'maxmemory-policy noeviction',
        'appendonly yes',
        'appendfsync everysec',
        'save ""',
        ...(i === 0 ? [] : [`replicaof 127.0.0.1 ${nodePorts[0]!}`]),
        '',
      ].join('\n'),
    );
    processes.set(port, startProcess(`redis-server ${i}`, redisServer, [conf], { cwd: dir }));
  }
  for (const port of nodePorts) {
    await waitFor(`redis-server on ${port}`, () => (cli(port, 'ping') === 'PONG' ? true : undefined), { describe: () => processes.get(port)!.output() });
  }
  for (const port of nodePorts.slice(1)) {
    await waitFor(`the replica on ${port} to sync`, () => (/master_link_status:up/.test(cli(port, 'info', 'replication')) ? true : undefined));
  }
  const sentinelProcs: ManagedProcess[] = [];
  for (const [i, port] of sentinelPorts.entries()) {
    const dir = join(temp.dir, `sentinel-${i}`);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `requirepass ${sentinelPassword}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${nodePorts[0]!} 2`,
        `sentinel auth-pass ${masterName} ${password}`,
        `sentinel sentinel-pass ${sentinelPassword}`,
        `sentinel down-after-milliseconds ${masterName} ${options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    sentinelProcs.push(startProcess(`redis-sentinel ${i}`, redisSentinel, [conf], { cwd: dir }));
  }
  for (const port of sentinelPorts) {
    await waitFor(
      `sentinel on ${port} to know 2 replicas and 2 other sentinels`,
      () => {
        // SENTINEL MASTER answers field names and values on alternate lines.
        const lines = sentinelCli(port, 'sentinel', 'master', masterName).split('\n');
        const field = (name: string) => Number(lines[lines.indexOf(name) + 1]);
        return field('num-slaves') === 2 && field('num-other-sentinels') === 2 ? true : undefined;
      },
      { timeoutMs: 60_000, describe: () => sentinelProcs.map((p) => p.output()).join('\n') },
    );
  }
  return {
    masterName,
    password,
    sentinelPassword,
    sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`),
    nodePorts,
    primaryPort: () => {
      for (const port of sentinelPorts) {
        const answer = sentinelCli(port, 'sentinel', 'get-master-addr-by-name', masterName).split('\n');
        if (answer.length === 2) return Number(answer[1]);
      }
      throw new Error('no sentinel answers with the primary');
    },
    kill: async (port) => {
      const p = processes.get(port);
      if (!p) throw new Error(`no data node on ${port}`);
      p.child.kill('SIGKILL');
      await p.exited;
    },
    cli,
    stop: async () => {
      await Promise.all([...sentinelProcs, ...processes.values()].map((p) => p.stop(5_000)));
      temp.remove();
    },
  };
}
