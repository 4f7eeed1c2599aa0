/**
 * Production simulation without a Docker engine: compose/docker-compose.prod.yml run as plain
 * processes, each started from what `docker-compose config` renders for its service (support/
 * compose.ts maps container paths, secrets and service names to this host):
 *
 * - the secret files made by scripts/compose-secrets.sh, as an operator makes them;
 * - `postgres`: a private PostgreSQL cluster initialized the way the postgres image initializes an
 *   empty volume (support/postgres-image.ts), which runs compose/postgres-roles.sh for real;
 * - `redis`: compose/redis-start.sh with compose/redis.prod.conf and the password secret;
 * - `audit-migrate` (AUDIT_ROLE=migrate, as the owner role audit_migrator), then two `audit-server`
 *   replicas and an `audit-worker` as the runtime role audit_runtime, each with exactly the
 *   environment and secret files its compose service has (`npm start`'s command for the image's);
 * - real nginx running compose/nginx.conf (ports, resolver address and certificate paths
 *   templated) with a certificate made by openssl. As in compose, the replicas share one port on
 *   their own addresses (127.0.0.2, .3, .4 stand for container addresses) and nginx finds them
 *   through DNS: a test DNS server answers `audit-server` the way Docker's embedded DNS does.
 *
 * Replicas are told apart by their own JSON request logs (`reqId`), which carry the request id
 * nginx generated and passed upstream.
 */
import { Agent as HttpsAgent } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Client } from 'pg';
import {
  COMPOSE_DIR,
  COMPOSE_FILES,
  exampleEnv,
  hostCommand,
  renderCompose,
  serviceSecrets,
  writeEnvFile,
} from './support/compose';
import type { ComposeModel } from './support/compose';
import { fetchOnce, generateCertificate, startNginx, startRedis } from './support/services';
import type { FetchOptions, FetchResult, NginxInstance, RedisInstance } from './support/services';
import { startComposePostgres } from './support/postgres-image';
import type { ImagePostgres } from './support/postgres-image';
import { startDnsServer } from './support/dns';
import type { DnsServer } from './support/dns';
import { runServerCommand, startAuditServer } from './support/server';
import type { AuditServer } from './support/server';
import {
  REPO_ROOT,
  describeResult,
  freePort,
  makeTempDir,
  requireBinary,
  run,
  stopAll,
  waitFor,
} from './support/tools';

jest.setTimeout(240_000);

/** Addresses of the replicas (loopback aliases, as containers have their own addresses). */
const REPLICA_HOSTS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

/** Debian's PostgreSQL has no pgvector package; the image has it. Everything else runs as is. */
function withoutVectorUnlessAvailable(file: string, copyDir: string): string {
  const available = existsSync('/usr/share/postgresql/15/extension/vector.control');
  const text = readFileSync(file, 'utf8');
  if (available || !text.includes('CREATE EXTENSION IF NOT EXISTS vector;\n')) return file;
  const copy = join(copyDir, 'init-without-vector.sh');
  writeFileSync(copy, text.replace('CREATE EXTENSION IF NOT EXISTS vector;\n', ''), { mode: 0o755 });
  return copy;
}

describe('production simulation: nginx → two replicas + worker → PostgreSQL (two roles) + Redis', () => {
  const temp = makeTempDir('prod-sim');
  let model: ComposeModel;
  let secretsDir: string;
  let apiKey: string;
  let pg: ImagePostgres;
  let redis: RedisInstance;
  /** The environment of each server service, on this host. */
  const serviceEnv: Record<string, Record<string, string>> = {};
  let worker: AuditServer;
  /** Every replica started so far (a killed one stays listed: its log still counts). */
  let replicas: AuditServer[];
  /** The port every replica listens on, each on its own loopback address. */
  let replicaPort: number;
  let dns: DnsServer;
  let nginx: NginxInstance;
  let httpPort: number;
  let httpsPort: number;
  let ca: string;

  /** A request to nginx over HTTPS, verified against the test's own certificate. */
  const viaHttps = (options: Omit<FetchOptions, 'port' | 'tls'>): Promise<FetchResult> =>
    fetchOnce({ ...options, port: httpsPort, tls: { ca } });
  const authorized = () => ({ authorization: `Bearer ${apiKey}` });
  /** The replicas whose request log holds this id; waits (bounded) for the log line to arrive. */
  const servedBy = async (requestId: string | string[] | undefined): Promise<string[]> => {
    const find = () =>
      replicas
        .filter((r) => typeof requestId === 'string' && r.requestIds().has(requestId))
        .map((r) => r.name);
    try {
      return await waitFor(
        `log line for request ${String(requestId)}`,
        () => (find().length > 0 ? find() : undefined),
        {
          attempts: 25,
          intervalMs: 100,
        },
      );
    } catch {
      return find();
    }
  };
  const secret = (name: string) => readFileSync(join(secretsDir, name), 'utf8').trim();
  /** A compose service name and port inside a URL, as this host reaches it. */
  const onThisHost = (value: string) =>
    value
      .replaceAll('@postgres:5432/', `@127.0.0.1:${pg.port}/`)
      .replaceAll('@redis:6379/', `@127.0.0.1:${redis.port}/`);

  /**
   * The environment a server service's container gets, on this host: the compose environment
   * (plus the image's AUDIT_DATA_DIR under its /tmp tmpfs), each of its secrets as a file copy
   * whose service addresses point at this host's PostgreSQL and Redis.
   */
  const environmentOf = (service: string): Record<string, string> => {
    const dir = join(temp.dir, service);
    mkdirSync(join(dir, 'secrets'), { recursive: true });
    const overrides: Record<string, string> = { '/tmp': join(dir, 'tmp') };
    for (const s of serviceSecrets(model.services[service]!)) {
      const copy = join(dir, 'secrets', s.source);
      writeFileSync(copy, onThisHost(readFileSync(model.secrets![s.source]!.file!, 'utf8')), { mode: 0o400 });
      overrides[s.path] = copy;
    }
    const { env } = hostCommand(model, service, overrides);
    const translated = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, onThisHost(v)]));
    return { AUDIT_DATA_DIR: join(dir, 'tmp', 'audit-data'), ...translated };
  };
  /** A client connected with the URL in one of the secret files (as this host reaches it). */
  const connectWith = async (secretName: string): Promise<Client> => {
    const client = new Client({ connectionString: onThisHost(secret(secretName)) });
    await client.connect();
    return client;
  };

  beforeAll(async () => {
    requireBinary('nginx', 'nginx');
    requireBinary('redis-server', 'redis-server');
    requireBinary('openssl');
    // The postgres user initializes its cluster under this directory.
    chmodSync(temp.dir, 0o711);

    // 1. The operator's secrets, then the compose file rendered with them.
    secretsDir = join(temp.dir, 'secrets');
    const made = run(join(REPO_ROOT, 'scripts', 'compose-secrets.sh'), ['-o', secretsDir], {
      timeoutMs: 120_000,
    });
    if (made.status !== 0) throw new Error(describeResult('scripts/compose-secrets.sh', made));
    apiKey = secret('audit-bootstrap-api-key');
    const envFile = writeEnvFile(join(temp.dir, 'compose.env'), {
      ...exampleEnv(join(COMPOSE_DIR, '.env.example')),
      AUDIT_SECRETS_DIR: secretsDir,
    });
    model = renderCompose(COMPOSE_FILES.prod, envFile);

    // 2. PostgreSQL and Redis as their services start them.
    pg = await startComposePostgres(model, join(temp.dir, 'postgres'), (file) =>
      withoutVectorUnlessAvailable(file, temp.dir),
    );
    mkdirSync(join(temp.dir, 'redis'));
    redis = await startRedis('prod', join(temp.dir, 'redis'), secret('redis-password'));

    // 3. The one-shot migration, then the replicas and the worker, as their services run them.
    for (const service of ['audit-migrate', 'audit-server', 'audit-worker'])
      serviceEnv[service] = environmentOf(service);
    const migrate = runServerCommand(serviceEnv['audit-migrate']!);
    if (migrate.status !== 0) throw new Error(describeResult('audit-migrate (AUDIT_ROLE=migrate)', migrate));

    // The first replica bootstraps the organization and its key; the second finds them.
    replicaPort = await freePort(REPLICA_HOSTS);
    const first = await startAuditServer('replica-a', replicaPort, serviceEnv['audit-server']!, {
      host: REPLICA_HOSTS[0],
    });
    const second = await startAuditServer('replica-b', replicaPort, serviceEnv['audit-server']!, {
      host: REPLICA_HOSTS[1],
    });
    replicas = [first, second];
    // The worker re-verifies the ledger every 2 s here (5 min by default) so the test sees a run.
    worker = await startAuditServer('worker', await freePort(), {
      ...serviceEnv['audit-worker']!,
      AUDIT_SELF_AUDIT_INTERVAL_MS: '2000',
    });
    dns = await startDnsServer({ 'audit-server': [first.host, second.host] });

    const certDir = join(temp.dir, 'certs');
    mkdirSync(certDir);
    ca = generateCertificate(certDir).cert;
    httpPort = await freePort();
    httpsPort = await freePort();
    nginx = await startNginx({
      prefixDir: join(temp.dir, 'nginx'),
      certDir,
      httpPort,
      httpsPort,
      resolver: `127.0.0.1:${dns.port}`,
      upstreamPort: replicaPort,
    });
  });

  afterAll(async () => {
    await stopAll();
    await dns?.close();
    await pg?.stop();
    temp.remove();
  });

  it('initializes PostgreSQL as the image does: the init script creates both roles from the secret files', () => {
    expect(pg.initOutput).toContain('--- 10-audit-roles.sh ---');
    expect(pg.healthcheck().status).toBe(0);
    expect(
      pg
        .psql("SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'audit\\_%' ORDER BY 1")
        .stdout.trim(),
    ).toBe('audit_migrator|f\naudit_runtime|f');
    expect(
      pg
        .psql(
          "SELECT count(*) FROM pg_authid WHERE rolname LIKE 'audit\\_%' AND rolpassword LIKE 'SCRAM-SHA-256$%'",
        )
        .stdout.trim(),
    ).toBe('2');
    expect(
      pg
        .psql('SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()')
        .stdout.trim(),
    ).toBe('audit_migrator');
    // The superuser is `postgres`, with the password from its own secret file, and no server uses it.
    expect(pg.superuser).toBe('postgres');
    for (const service of ['audit-migrate', 'audit-server', 'audit-worker']) {
      expect(Object.values(serviceEnv[service]!).join('\n')).not.toContain(secret('postgres-password'));
    }
  });

  it('runs the migrations as audit_migrator, which owns every table', () => {
    expect(
      pg.psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").stdout.trim(),
    ).toBe('audit_migrator');
    expect(
      Number(pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").stdout.trim()),
    ).toBeGreaterThan(5);
  });

  it('connects the replicas and the worker as audit_runtime, never as the owner or the superuser', async () => {
    await viaHttps({ path: '/ready' });
    const sessions = pg
      .psql(
        "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
      )
      .stdout.trim();
    expect(sessions).toBe('audit_runtime');
  });

  it('leaves audit_runtime (the api and worker URL) without DDL, DELETE or TRUNCATE', async () => {
    const client = await connectWith('database-url');
    try {
      expect((await client.query('SELECT current_user AS u')).rows[0].u).toBe('audit_runtime');
      for (const sql of [
        'CREATE TABLE intruder (id int)',
        'DROP TABLE events',
        'ALTER TABLE events DISABLE TRIGGER ALL',
        'DELETE FROM events',
        'TRUNCATE events',
        'CREATE ROLE intruder',
      ]) {
        await expect(client.query(sql)).rejects.toMatchObject({
          message: expect.stringMatching(/permission denied|must be owner/),
        });
      }
    } finally {
      await client.end();
    }
  });

  it('reports ready through nginx with the database, migrations and Redis checked', async () => {
    const ready = await viaHttps({ path: '/ready' });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual(
      expect.objectContaining({
        status: 'ready',
        checks: expect.objectContaining({ database: 'ok', migrations: 'ok', redis: 'ok' }),
      }),
    );
  });

  it('spreads HTTPS requests over both replicas, which append to one unforked ledger', async () => {
    const receipts: { leafIndex: number; requestId: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const response = await viaHttps({
        path: '/api/v1/events',
        method: 'POST',
        headers: authorized(),
        body: JSON.stringify({ action: 'data.read', status: 'success' }),
      });
      expect({ i, status: response.status, body: response.body }).toEqual(
        expect.objectContaining({ status: 201 }),
      );
      const requestId = response.headers['x-request-id'];
      expect(typeof requestId).toBe('string');
      receipts.push({
        leafIndex: (JSON.parse(response.body) as { leafIndex: number }).leafIndex,
        requestId: requestId as string,
      });
    }
    // nginx's $request_id reached the replica and came back: each request is in exactly one log.
    const counts = { 'replica-a': 0, 'replica-b': 0 } as Record<string, number>;
    for (const { requestId } of receipts) {
      const servers = await servedBy(requestId);
      expect({ requestId, servers: servers.length }).toEqual({ requestId, servers: 1 });
      counts[servers[0]!]! += 1;
    }
    expect(counts['replica-a']).toBeGreaterThan(0);
    expect(counts['replica-b']).toBeGreaterThan(0);
    // Both replicas appended to the same per-organization tree: indexes 0..23, no gaps, no forks.
    expect(receipts.map((r) => r.leafIndex).sort((a, b) => a - b)).toEqual([...Array(24).keys()]);
    process.stdout.write(
      `production simulation: 24 POST /api/v1/events → replica-a ${counts['replica-a']}, replica-b ${counts['replica-b']}\n`,
    );
  });

  it('verifies the ledger in the worker, as audit_runtime with only the public verifier key', async () => {
    // The worker's environment names no private key: it trusts the verifier key alone.
    const env = serviceEnv['audit-worker']!;
    expect(Object.keys(env).filter((k) => k.startsWith('AUDIT_SIGNING_KEY'))).toEqual([]);
    expect(Object.values(env).join('\n')).not.toContain(secret('audit-signing-key'));
    const lastSuccess = await waitFor(
      'a successful self-audit run of the worker over the events appended through nginx',
      async () => {
        const metrics = await fetchOnce({ port: worker.port, path: '/metrics' });
        const value = /^audit_ledger_last_verification_success_timestamp_seconds (\S+)$/m.exec(
          metrics.body,
        )?.[1];
        return value !== undefined && Number(value) > 0 ? Number(value) : undefined;
      },
      { attempts: 150, intervalMs: 200, describe: () => worker.process.output() },
    );
    expect(lastSuccess).toBeGreaterThan(0);
    const failures = worker
      .logs()
      .filter((l) => typeof l.msg === 'string' && /self-audit/.test(l.msg) && Number(l.level) >= 50);
    expect(failures).toEqual([]);
  });

  it('signs a person in through nginx with the secret file; the session works on both replicas and ends on both at once', async () => {
    // The operator creates the person with the admin CLI (password on stdin), as docs/deploying.md says.
    const env = serviceEnv['audit-server']!;
    expect(env.AUTH_SECRET_FILE).toBeDefined();
    const email = 'kim@example.org';
    const password = 'kim password 0123456789';
    for (const [args, input] of [
      [['users', 'create', '--email', email, '--name', 'Kim'], `${password}\n`],
      [['members', 'add', '--email', email, '--role', 'auditor'], undefined],
    ] as const) {
      const result = runServerCommand(env, { script: 'admin', args: [...args], ...(input ? { input } : {}) });
      expect(describeResult(`audit-admin ${args.join(' ')}`, result)).toMatch(/exited 0/);
      expect(`${result.stdout}${result.stderr}`).not.toContain(password);
    }

    // Sign-in through nginx over HTTPS: a Secure, HttpOnly, SameSite=Strict session cookie.
    const signedIn = await viaHttps({
      path: '/auth/sign-in/email',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.40' },
      body: JSON.stringify({ email, password }),
      localAddress: '127.0.0.20',
    });
    expect({ status: signedIn.status, body: signedIn.body }).toEqual(expect.objectContaining({ status: 200 }));
    const setCookie = (signedIn.headers['set-cookie'] ?? []).find((c) => /^__Secure-audit\.session_token=/.test(c));
    expect(setCookie).toBeDefined();
    expect(setCookie).toMatch(/; Secure/i);
    expect(setCookie).toMatch(/; HttpOnly/i);
    expect(setCookie).toMatch(/; SameSite=Strict/i);
    const cookie = setCookie!.split(';')[0]!;

    // Each replica process on its own: both accept the session (same secret, sessions in Redis).
    const me = (r: AuditServer) =>
      fetchOnce({ host: r.host, port: r.port, path: '/trpc/account.me', headers: { cookie } });
    const [a, b] = replicas as [AuditServer, AuditServer];
    const before = await Promise.all([me(a), me(b)]);
    expect(before.map((r) => r.status)).toEqual([200, 200]);
    expect(JSON.parse(before[1].body)).toEqual(
      expect.objectContaining({ result: { data: expect.objectContaining({ role: 'auditor' }) } }),
    );

    // Signing out on replica b (a cookie-carrying POST from the server's own origin) ends it on a too.
    const out = await fetchOnce({
      host: b.host,
      port: b.port,
      path: '/auth/sign-out',
      method: 'POST',
      headers: { cookie, origin: `http://${b.host}:${b.port}`, 'content-type': 'application/json' },
      body: '{}',
    });
    expect({ status: out.status, body: out.body }).toEqual(expect.objectContaining({ status: 200 }));
    const after = await Promise.all([me(a), me(b)]);
    expect(after.map((r) => r.status)).toEqual([401, 401]);
  });

  it('counts failed sign-ins across both replica processes: the sixth within the window is 429 with Retry-After', async () => {
    const [a, b] = replicas as [AuditServer, AuditServer];
    const attempt = (r: AuditServer) =>
      fetchOnce({
        host: r.host,
        port: r.port,
        path: '/auth/sign-in/email',
        method: 'POST',
        // One client address (nginx's X-Forwarded-For, trusted from the proxy's network).
        headers: { 'content-type': 'application/json', 'x-forwarded-for': '192.0.2.41' },
        body: JSON.stringify({ email: 'nobody@example.org', password: 'not the password 123' }),
      });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await attempt(i % 2 === 0 ? a : b)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const sixth = await attempt(b);
    expect(sixth.status).toBe(429);
    expect(Number(sixth.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('serves TLS 1.2+ with the generated certificate and offers HTTP/2', async () => {
    const session = await new Promise<{
      protocol: string | null;
      alpn: string | false | null;
      authorized: boolean;
    }>((done, fail) => {
      const socket = tlsConnect(
        {
          host: '127.0.0.1',
          port: httpsPort,
          servername: 'localhost',
          ca,
          ALPNProtocols: ['h2', 'http/1.1'],
        },
        () => {
          done({ protocol: socket.getProtocol(), alpn: socket.alpnProtocol, authorized: socket.authorized });
          socket.end();
        },
      );
      socket.on('error', fail);
    });
    expect(session.authorized).toBe(true);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(session.protocol);
    expect(session.alpn).toBe('h2');
  });

  it('sends each security header exactly once over HTTPS', async () => {
    const response = await viaHttps({ path: '/api/v1/ledger/checkpoint', headers: authorized() });
    expect(response.status).toBe(200);
    expect(response.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(response.headers.server).toBe('nginx');
  });

  it('redirects plain HTTP to HTTPS, except /health', async () => {
    const redirect = await fetchOnce({
      port: httpPort,
      path: '/api/v1/events?limit=5',
      headers: { host: 'audit.example.org' },
    });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://audit.example.org/api/v1/events?limit=5');
    const trpc = await fetchOnce({
      port: httpPort,
      path: '/trpc/events.list',
      headers: { host: 'audit.example.org' },
    });
    expect(trpc.status).toBe(301);
    const health = await fetchOnce({ port: httpPort, path: '/health' });
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toEqual({ status: 'ok' });
  });

  it('answers 429 once a client exceeds the per-address rate limit, but never on /health', async () => {
    // Separate loopback source addresses give this test its own rate-limit buckets. Kept-alive
    // connections make 400 requests take far less than the 6 s the bucket (50 r/s after a burst
    // of 100) would need to drain, so limiting is certain without asserting on time.
    const burst = async (path: string, localAddress: string, total: number) => {
      const agent = new HttpsAgent({
        keepAlive: true,
        maxSockets: 16,
        ca,
        servername: 'localhost',
        localAddress,
      });
      const statuses: number[] = [];
      let next = 0;
      const worker = async () => {
        while (next < total) {
          next += 1;
          const r = await fetchOnce({
            port: httpsPort,
            path,
            tls: { ca },
            localAddress,
            agent,
            headers: authorized(),
          });
          statuses.push(r.status);
        }
      };
      try {
        await Promise.all(Array.from({ length: 16 }, worker));
      } finally {
        agent.destroy();
      }
      return statuses;
    };
    // Rounds of 400 until nginx limits: a machine fast enough to serve 400 requests within the
    // bucket's refill never needs a second round; a slow one gets more traffic, not a flaky test.
    const api: number[] = [];
    for (let round = 0; round < 8 && !api.includes(429); round++) {
      api.push(...(await burst('/api/v1/ledger/checkpoint', '127.0.0.9', 400)));
    }
    const limited = api.filter((s) => s === 429).length;
    const served = api.filter((s) => s === 200).length;
    expect(limited + served).toBe(api.length);
    expect(limited).toBeGreaterThan(0);
    // The burst allowance (100) is always served before limiting starts.
    expect(served).toBeGreaterThanOrEqual(100);
    const health = await burst('/health', '127.0.0.10', 400);
    expect(health.filter((s) => s !== 200)).toEqual([]);
    process.stdout.write(
      `production simulation: ${api.length} rapid requests from one address → ${served} served, ${limited} × 429\n`,
    );
  });

  it('keeps serving when a replica is killed mid-traffic: nginx retries on the survivor', async () => {
    const [survivor, victim] = replicas as [AuditServer, AuditServer];
    const statuses: number[] = [];
    const gets = 80;
    let sent = 0;
    // Four concurrent streams of idempotent GETs; the victim dies (SIGKILL, no graceful close)
    // after 20 of them, while others are in flight.
    const stream = async () => {
      while (sent < gets) {
        sent += 1;
        if (sent === 20) {
          victim.process.child.kill('SIGKILL');
        }
        const r = await viaHttps({
          path: '/api/v1/ledger/checkpoint',
          headers: authorized(),
          localAddress: '127.0.0.11',
        });
        statuses.push(r.status);
      }
    };
    await Promise.all(Array.from({ length: 4 }, stream));
    await victim.process.exited;
    expect(victim.process.hasExited()).toBe(true);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    // Writes after the kill: a refused connection was never sent, so nginx retries even a POST.
    const after: number[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await viaHttps({
        path: '/api/v1/events',
        method: 'POST',
        headers: authorized(),
        body: JSON.stringify({ action: 'data.read', status: 'success' }),
        localAddress: '127.0.0.12',
      });
      after.push(r.status);
      expect(await servedBy(r.headers['x-request-id'])).toEqual([survivor.name]);
    }
    expect(after).toEqual(Array(12).fill(201));

    // nginx's access log shows the retries: "$upstream_addr" lists the dead replica, then the survivor.
    const retried = nginx
      .accessEntries()
      .filter(
        (e) =>
          typeof e.upstream === 'string' &&
          e.upstream.includes(`${victim.host}:${replicaPort}, ${survivor.host}:${replicaPort}`),
      );
    expect(retried.length).toBeGreaterThan(0);
    process.stdout.write(
      `production simulation: replica killed mid-traffic → ${gets} GETs + 12 POSTs all succeeded, ${retried.length} retried by nginx\n`,
    );
  });
  it('sends traffic to a replica started after nginx once DNS names it (docker-compose up --scale)', async () => {
    // What `--scale` does: a new container starts, Docker's DNS adds its address to the service
    // name (and has dropped the killed replica's), nginx keeps running untouched.
    const [first] = replicas as [AuditServer];
    // nginx has been serving: every worker process (each has its own resolver cache) holds an
    // answer for `audit-server` that lacks the new replica. Parallel requests reach every worker.
    const workers = nginx.workerPids().length;
    expect(workers).toBeGreaterThan(0);
    await waitFor(
      `each of the ${workers} nginx workers to resolve audit-server`,
      async () => {
        const health = await Promise.all(
          Array.from({ length: 8 }, () => viaHttps({ path: '/health', localAddress: '127.0.0.13' })),
        );
        expect(health.map((h) => h.status)).toEqual(Array(8).fill(200));
        return dns.askedBy('audit-server').size >= workers ? true : undefined;
      },
      { attempts: 100, intervalMs: 50 },
    );
    const added = await startAuditServer('replica-c', replicaPort, serviceEnv['audit-server']!, {
      host: REPLICA_HOSTS[2],
    });
    replicas.push(added);
    const queriesBefore = dns.queries('audit-server');
    const changedAt = Date.now();
    dns.setAddresses('audit-server', [first.host, added.host]);
    // The answer nginx cached may be up to `valid=10s` old: poll until the new replica serves a
    // request, with a deadline well past that window (the cached TTL, 600 s, must not apply).
    const servedByNew = await waitFor(
      'a request served by the replica started after nginx',
      async () => {
        const r = await viaHttps({
          path: '/api/v1/ledger/checkpoint',
          headers: authorized(),
          localAddress: '127.0.0.13',
        });
        if (r.status !== 200) throw new Error(`status ${r.status}: ${r.body}`);
        // nginx's access log names the address it proxied to ($upstream_addr), written at once.
        const requestId = r.headers['x-request-id'];
        const entry = nginx.accessEntries().find((e) => e.requestId === requestId);
        return entry?.upstream === `${added.host}:${replicaPort}` ? (requestId as string) : undefined;
      },
      { attempts: 150, intervalMs: 200, describe: () => nginx.process.output() },
    );
    const waitedMs = Date.now() - changedAt;
    // …and the replica's own log has the request.
    expect(await servedBy(servedByNew)).toEqual(['replica-c']);
    // nginx asked the DNS server again instead of keeping the answer it got at start-up.
    expect(dns.queries('audit-server')).toBeGreaterThan(queriesBefore);
    // And writes reach it too: the new replica appends to the same ledger.
    const write = await viaHttps({
      path: '/api/v1/events',
      method: 'POST',
      headers: authorized(),
      body: JSON.stringify({ action: 'data.read', status: 'success' }),
      localAddress: '127.0.0.13',
    });
    expect(write.status).toBe(201);
    process.stdout.write(
      `production simulation: replica started after nginx served its first request ${waitedMs} ms after DNS named it (resolver valid=10s)\n`,
    );
  });
});
