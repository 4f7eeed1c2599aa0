/**
 * Real infrastructure for the deployment tests: throwaway PostgreSQL databases, redis-server
 * started with the project's configuration files, nginx running the project's nginx.conf, a TLS
 * certificate made with openssl, and an HTTP(S) client that can pick its source address.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { Agent as HttpAgent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import { Client } from 'pg';
import { REPO_ROOT, describeResult, freePort, requireBinary, run, startProcess, waitFor } from './tools';
import type { HostCommand } from './compose';
import {
  COMPOSE_DIR,
  COMPOSE_FILES,
  ensureDir,
  exampleEnv,
  hostCommand,
  mounts,
  renderCompose,
  serviceSecrets,
  writeEnvFile,
} from './compose';
import type { ManagedProcess } from './tools';

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The PostgreSQL server the tests may use: TEST_DATABASE_URL when set (CI — then it must work),
 * otherwise the local default only if `pg_isready` says it answers. `undefined` = skip, with
 * `reason` saying why. Decided synchronously so `describe` can choose `skip` at load time.
 */
export function postgresForTests(): { url: string } | { url: undefined; reason: string } {
  const configured = process.env.TEST_DATABASE_URL;
  if (configured !== undefined && configured !== '') return { url: configured };
  const probe = spawnSync(
    requireBinary('pg_isready', 'postgresql-client'),
    ['-q', '-t', '3', '-d', DEFAULT_PG_URL],
    {
      timeout: 10_000,
    },
  );
  if (probe.status === 0) return { url: DEFAULT_PG_URL };
  return {
    url: undefined,
    reason: `TEST_DATABASE_URL is unset and no PostgreSQL answers at ${DEFAULT_PG_URL}; skipping the tests that need it`,
  };
}

/** Replaces the database name of a postgres:// URL. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** A database created for one test file and dropped afterwards. */
export interface ThrowawayDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates an empty database `audit_deploy_<random>` on the server behind `adminUrl`. */
export async function createThrowawayDatabase(adminUrl: string, label: string): Promise<ThrowawayDatabase> {
  const name = `audit_deploy_${label}_${randomBytes(4).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: withDatabase(adminUrl, name),
    drop: () => dropDatabase(adminUrl, name),
  };
}

/** Drops a database, disconnecting its sessions first (PostgreSQL 13+ `WITH (FORCE)`). */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}

/** Runs `fn` with a connected client and always closes it. */
export async function withClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------------

/** A redis-server started as a compose file's `redis` service starts it. */
export interface RedisInstance {
  readonly port: number;
  readonly password: string | undefined;
  readonly url: string;
  /** The process compose would run (the start script execs redis-server in place). */
  readonly process: ManagedProcess;
  /** The secret file the password was read from (production file only). */
  readonly passwordFile: string | undefined;
  /** The directory standing in for the container's /tmp tmpfs. */
  readonly tmpDir: string;
  /** The container's command and environment (what `docker inspect` would show). */
  readonly command: HostCommand;
}

/**
 * Starts the `redis` service of a compose file (`dev`: docker-compose.yml, `prod`:
 * docker-compose.prod.yml) the way its container would start: the service's entrypoint, command
 * and environment from `docker-compose config`, with container paths mapped into `dir` (data
 * volume, /tmp tmpfs, secret files under `dir/secrets`). The only changes to the mounted Redis
 * configuration are the port and bind address (a copy on the test port, loopback only) and
 * `set-proc-title no`, so the process shows the arguments it was started with. For
 * `prod`, `password` is written to the secret file the compose file names.
 */
export async function startRedis(
  file: 'dev' | 'prod',
  dir: string,
  password?: string,
): Promise<RedisInstance> {
  const redisCli = requireBinary('redis-cli', 'redis-tools');
  requireBinary('redis-server', 'redis-server');
  const port = await freePort();
  const dataDir = ensureDir(join(dir, 'data'));
  const tmpDir = ensureDir(join(dir, 'tmp'));
  const secretsDir = ensureDir(join(dir, 'secrets'));
  // The password goes wherever an operator would put it: the secret file and compose/.env.
  const env =
    file === 'prod'
      ? {
          ...exampleEnv(join(COMPOSE_DIR, '.env.example')),
          AUDIT_SECRETS_DIR: secretsDir,
          ...(password !== undefined ? { REDIS_PASSWORD: password } : {}),
        }
      : {};
  const model = renderCompose(COMPOSE_FILES[file], writeEnvFile(join(dir, 'compose.env'), env));
  const service = model.services.redis!;
  const config = mounts(service).find((m) => m.target.endsWith('.conf'));
  if (!config) throw new Error(`the ${file} compose file mounts no Redis configuration`);
  let passwordFile: string | undefined;
  if (file === 'prod') {
    if (password === undefined) throw new Error('the production Redis needs a password');
    const secret = serviceSecrets(service).find((s) => s.source === 'redis-password');
    passwordFile = secret && model.secrets?.[secret.source]?.file;
    if (passwordFile !== undefined) writeFileSync(passwordFile, `${password}\n`, { mode: 0o400 });
  }
  let text = readFileSync(config.source, 'utf8');
  text = replaceExactly(text, /^port 6379$/gm, `port ${port}`, 1, config.source);
  text = replaceExactly(text, /^bind 0\.0\.0\.0$/gm, 'bind 127.0.0.1', 1, config.source);
  // Redis overwrites its argv (and the environment beside it) with a process title once started;
  // without that, /proc/<pid>/cmdline and environ keep what redis-server was really given.
  text += '\nset-proc-title no\n';
  const configCopy = join(dir, 'redis.conf');
  writeFileSync(configCopy, text);
  const command = hostCommand(model, 'redis', {
    [config.target]: configCopy,
    '/tmp': tmpDir,
    '/data': dataDir,
  });
  const [program, ...args] = command.argv;
  if (program === undefined) throw new Error(`the ${file} redis service sets neither entrypoint nor command`);
  // The image's working directory is the data volume, where Redis writes its AOF and RDB files.
  const proc = startProcess(`redis-server (${file})`, program, args, { env: command.env, cwd: dataDir });
  const effectivePassword = password ?? readRequirePass(config.source);
  await waitFor(
    `redis-server (${file}) on port ${port}`,
    () => {
      if (proc.hasExited()) throw new Error(`redis-server exited\n${proc.output()}`);
      const cliEnv: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
      if (effectivePassword !== undefined) cliEnv.REDISCLI_AUTH = effectivePassword;
      const pong = run(redisCli, ['-h', '127.0.0.1', '-p', String(port), 'ping'], {
        env: cliEnv,
        timeoutMs: 5_000,
      });
      return pong.stdout.trim() === 'PONG' ? true : undefined;
    },
    { describe: () => proc.output() },
  );
  const auth = effectivePassword === undefined ? '' : `:${encodeURIComponent(effectivePassword)}@`;
  return {
    port,
    password: effectivePassword,
    url: `redis://${auth}127.0.0.1:${port}/0`,
    process: proc,
    passwordFile,
    tmpDir,
    command,
  };
}

/** The literal `requirepass` of a configuration file, if it has one (the development file does). */
export function readRequirePass(confFile: string): string | undefined {
  const text = readFileSync(confFile, 'utf8');
  const match = /^\s*requirepass\s+(\S+)\s*$/m.exec(text);
  return match?.[1];
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/** Generates a self-signed certificate for `localhost` / 127.0.0.1 into `dir` (tls.crt, tls.key). */
export function generateCertificate(dir: string): { certFile: string; keyFile: string; cert: string } {
  const openssl = requireBinary('openssl');
  const certFile = join(dir, 'tls.crt');
  const keyFile = join(dir, 'tls.key');
  const result = run(openssl, [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  if (result.status !== 0) throw new Error(describeResult('openssl req', result));
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

// ---------------------------------------------------------------------------------------------
// nginx
// ---------------------------------------------------------------------------------------------

/** What the test changes in compose/nginx.conf to run it outside a container. */
export interface NginxTemplateOptions {
  readonly prefixDir: string;
  readonly certDir: string;
  readonly httpPort: number;
  readonly httpsPort: number;
  /** `host:port` of the DNS server that answers `audit-server` (Docker's is 127.0.0.11:53). */
  readonly resolver: string;
  /** The port every replica listens on (3000 in the containers). */
  readonly upstreamPort: number;
}

function replaceExactly(
  text: string,
  search: string | RegExp,
  replacement: string,
  expected: number,
  file = 'compose/nginx.conf',
): string {
  const pattern =
    typeof search === 'string' ? new RegExp(search.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : search;
  const count = (text.match(pattern) ?? []).length;
  if (count !== expected) {
    throw new Error(
      `${file} changed: expected ${expected} occurrence(s) of ${String(search)}, found ${count}; update the test template`,
    );
  }
  return text.replace(pattern, replacement);
}

/**
 * Rewrites compose/nginx.conf for a test run: loopback listen ports instead of 80/443 (no IPv6
 * listeners), the test's DNS server instead of Docker's, the replicas' test port instead of 3000,
 * the generated certificate, and the test's prefix directory instead of /tmp for the writable
 * paths. Everything else — how replicas are found, headers, rate limits, retries, redirects — is
 * the project's file byte for byte. Each rewrite must match exactly as often as expected, so a
 * change to nginx.conf that the template misses fails loudly.
 */
export function templateNginxConf(options: NginxTemplateOptions): string {
  let text = readFileSync(join(REPO_ROOT, 'compose', 'nginx.conf'), 'utf8');
  text = replaceExactly(text, /^\s*listen \[::\]:(80|443)[^;]*;\n/gm, '', 2);
  text = replaceExactly(
    text,
    'listen 80 default_server;',
    `listen 127.0.0.1:${options.httpPort} default_server;`,
    1,
  );
  text = replaceExactly(
    text,
    'listen 443 ssl http2 default_server;',
    `listen 127.0.0.1:${options.httpsPort} ssl http2 default_server;`,
    1,
  );
  text = replaceExactly(text, /resolver 127\.0\.0\.11 /g, `resolver ${options.resolver} `, 1);
  text = replaceExactly(text, 'audit-server:3000;', `audit-server:${options.upstreamPort};`, 2);
  text = replaceExactly(text, '/etc/nginx/certs/', `${options.certDir}/`, 2);
  text = replaceExactly(text, '/tmp/nginx', `${options.prefixDir}/nginx`, 6);
  return text;
}

/**
 * Writes the templated configuration and returns the arguments for `nginx -p … -c … -e …` and
 * the file that receives nginx's stdout (the JSON access log goes to /dev/stdout, as in Docker).
 */
export function writeNginxConf(options: NginxTemplateOptions): {
  confFile: string;
  accessLog: string;
  args: string[];
} {
  mkdirSync(options.prefixDir, { recursive: true });
  const confFile = join(options.prefixDir, 'nginx.conf');
  writeFileSync(confFile, templateNginxConf(options));
  return {
    confFile,
    accessLog: join(options.prefixDir, 'access.log'),
    args: ['-p', options.prefixDir, '-c', confFile, '-e', join(options.prefixDir, 'error.log')],
  };
}

/** `nginx -t` on a templated configuration. */
export function nginxConfigTest(options: NginxTemplateOptions): ReturnType<typeof run> {
  const nginx = requireBinary('nginx', 'nginx');
  const { args, accessLog } = writeNginxConf(options);
  const fd = openSync(accessLog, 'a');
  try {
    return run(nginx, [...args, '-t'], { stdoutFd: fd });
  } finally {
    closeSync(fd);
  }
}

/** A running nginx and the file its access log (stdout) is written to. */
export interface NginxInstance {
  readonly process: ManagedProcess;
  readonly accessLog: string;
  /** Access-log lines parsed as JSON. */
  accessEntries(): Record<string, unknown>[];
  /** Process ids of the worker processes (children of the master). */
  workerPids(): number[];
}

/** Starts nginx in the foreground on a templated configuration and waits until it answers. */
export async function startNginx(options: NginxTemplateOptions): Promise<NginxInstance> {
  const nginx = requireBinary('nginx', 'nginx');
  const { args, accessLog } = writeNginxConf(options);
  const fd = openSync(accessLog, 'a');
  const proc = startProcess('nginx', nginx, [...args, '-g', 'daemon off;'], { stdoutFd: fd });
  closeSync(fd);
  await waitFor(
    `nginx on port ${options.httpPort}`,
    async () => {
      if (proc.hasExited()) throw new Error(`nginx exited\n${proc.output()}`);
      // Any HTTP answer (the redirect) proves nginx is listening.
      const response = await fetchOnce({ port: options.httpPort, path: '/' });
      return response.status > 0 ? true : undefined;
    },
    { describe: () => proc.output() },
  );
  return {
    process: proc,
    accessLog,
    workerPids: () =>
      readFileSync(`/proc/${proc.child.pid}/task/${proc.child.pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter((pid) => pid !== '')
        .map(Number),
    accessEntries: () =>
      readFileSync(accessLog, 'utf8')
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP(S) client
// ---------------------------------------------------------------------------------------------

/** A request the tests send; `localAddress` picks a loopback source so rate-limit buckets stay apart. */
export interface FetchOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  readonly path: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly tls?: { ca: string; servername?: string };
  readonly localAddress?: string;
  readonly agent?: HttpAgent | HttpsAgent;
  readonly timeoutMs?: number;
}

/** A response with its body read as text. */
export interface FetchResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** One HTTP(S) request (to 127.0.0.1 unless `host` says otherwise) with node:http(s); rejects on network errors and timeouts. */
export function fetchOnce(options: FetchOptions): Promise<FetchResult> {
  return new Promise((resolveResult, reject) => {
    const common = {
      host: options.host ?? '127.0.0.1',
      port: options.port,
      path: options.path,
      method: options.method ?? 'GET',
      headers: {
        ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...options.headers,
      },
      ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {}),
      // No pooling unless asked: Node's global agents keep connections alive, which would
      // outlive the test and hold jest's workers open.
      agent: options.agent ?? false,
      timeout: options.timeoutMs ?? 15_000,
    };
    const onResponse = (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolveResult({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    };
    const req = options.tls
      ? httpsRequest(
          { ...common, ca: options.tls.ca, servername: options.tls.servername ?? 'localhost' },
          onResponse,
        )
      : httpRequest(common, onResponse);
    req.on('timeout', () => req.destroy(new Error(`request ${common.method} ${options.path} timed out`)));
    req.on('error', reject);
    if (options.body !== undefined) req.write(options.body);
    req.end();
  });
}
