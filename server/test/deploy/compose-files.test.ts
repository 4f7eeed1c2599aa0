/**
 * Every compose file is accepted by `docker-compose config` (Debian's docker-compose v1, the
 * schema check Compose applies before `up`) and has the properties operators rely on: images
 * pinned to releases, no private addresses, rotated logs, secrets required (production: Docker
 * secret files, each service only its own; the infrastructure files: from the environment),
 * read-only production containers, no published database ports, the database role split.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { parseAllDocuments } from 'yaml';
import {
  COMPOSE_DIR,
  COMPOSE_FILES,
  composeConfig as composeConfigOf,
  exampleEnv,
  mounts,
  renderCompose,
  serviceSecrets,
  writeEnvFile,
} from './support/compose';
import type { ComposeFileKey, ComposeModel, Service, Yaml } from './support/compose';
import { REPO_ROOT, describeResult, freePort, makeTempDir, requireBinary, run } from './support/tools';
import { startTestServer } from '../helpers/server';

const COMPOSE = COMPOSE_DIR;
const FILES = COMPOSE_FILES;
type FileKey = ComposeFileKey;
const ENV_EXAMPLE: Record<FileKey, string> = {
  dev: join(COMPOSE, '.env.example'),
  prod: join(COMPOSE, '.env.example'),
  infisical: join(COMPOSE, 'infra', '.env.example'),
  inngest: join(COMPOSE, 'infra', '.env.example'),
  openobserve: join(COMPOSE, 'infra', '.env.example'),
  pgvector: join(COMPOSE, 'infra', '.env.example'),
};

/** A published port in either syntax (`[ip:]published:target[/proto]` strings in v1). */
interface Port {
  host_ip: string | undefined;
  published: string;
  target: number;
}
function ports(service: Service): Port[] {
  return ((service.ports ?? []) as (string | Record<string, Yaml>)[]).map((p) => {
    if (typeof p !== 'string')
      return {
        host_ip: p.host_ip as string | undefined,
        published: String(p.published),
        target: Number(p.target),
      };
    const parts = p.replace(/\/\w+$/, '').split(':');
    const target = Number(parts.pop());
    const published = parts.pop() ?? '';
    return { host_ip: parts.pop(), published, target };
  });
}

/**
 * True when an image reference's tag starts with a release version of at least two numeric
 * components (`1.28.0-alpine`, `0.8.6-pg17`, `17.6-alpine`, `v1.12.1`). Rolling tags — `latest`,
 * `stable`, `alpine`, `pg17`, a bare major such as `17-alpine` — move whenever upstream publishes a
 * release, so the same compose file would start different software on different days.
 */
function isReleaseTag(image: string): boolean {
  const at = image.indexOf('@sha256:');
  const reference = at >= 0 ? image.slice(0, at) : image;
  const colon = reference.lastIndexOf(':');
  if (colon < 0 || reference.lastIndexOf('/') > colon) return false;
  return /^v?\d+(\.\d+)+([-_.+][\w.-]*)?$/.test(reference.slice(colon + 1));
}

describe('isReleaseTag', () => {
  it.each([
    'nginx:1.28.0-alpine',
    'pgvector/pgvector:0.8.6-pg17',
    'postgres:17.6-alpine',
    'inngest/inngest:v1.12.1',
    'public.ecr.aws/zinclabs/openobserve:v0.14.0',
    'registry.example.org:5000/smedrec/audit-server:0.1.0',
    'redis:7.2.7-alpine@sha256:0000000000000000000000000000000000000000000000000000000000000000',
  ])('accepts %s', (image) => expect(isReleaseTag(image)).toBe(true));

  it.each([
    'pgvector/pgvector:pg17',
    'nginx:alpine',
    'nginx:latest',
    'nginx:stable-alpine',
    'postgres:17-alpine',
    'postgres:17',
    'nginx',
    'registry.example.org:5000/smedrec/audit-server',
    'redis:latest-7.2.7',
  ])('rejects %s', (image) => expect(isReleaseTag(image)).toBe(false));

  it('rejects every tag made of words and a bare major number, however spelled', () => {
    const word = fc.stringMatching(/^[a-z][a-z-]{0,11}$/);
    const rolling = fc.oneof(
      word,
      fc.tuple(word, fc.nat(99)).map(([w, n]) => `${w}${n}`),
      fc.tuple(fc.nat(99), fc.option(word, { nil: undefined })).map(([n, w]) => (w ? `${n}-${w}` : `${n}`)),
    );
    fc.assert(fc.property(rolling, (tag) => !isReleaseTag(`example/image:${tag}`)));
  });

  it('accepts every tag that starts with major.minor[.patch], with or without a suffix', () => {
    const version = fc
      .tuple(fc.nat(99), fc.nat(99), fc.option(fc.nat(99), { nil: undefined }))
      .map(([a, b, c]) => [a, b, ...(c === undefined ? [] : [c])].join('.'));
    const suffix = fc.option(fc.stringMatching(/^-[a-z0-9][a-z0-9.-]{0,10}$/), { nil: '' });
    fc.assert(fc.property(version, suffix, (v, s) => isReleaseTag(`example/image:${v}${s}`)));
  });
});

const temp = makeTempDir('compose');
afterAll(() => temp.remove());

/** The .env.example with every empty value filled by a random hex string. */
function filledEnvFile(example: string): string {
  return writeEnvFile(
    join(temp.dir, `${randomBytes(4).toString('hex')}.env`),
    exampleEnv(example, { fillEmpty: true }),
  );
}

const composeConfig = (key: FileKey, envFile: string) => composeConfigOf(FILES[key], envFile);

const models = new Map<FileKey, ComposeModel>();

/** The exit code of `node -e script`, run without blocking this process. */
function nodeExit(script: string): Promise<number | null> {
  return new Promise((resolve) =>
    execFile(process.execPath, ['-e', script], { timeout: 60_000 }, (err) =>
      resolve(err ? (typeof err.code === 'number' ? err.code : null) : 0),
    ),
  );
}

/**
 * What an operator runs with: no .env at all for the development file; for the production file
 * its .env.example as written (no secret goes in there); the infrastructure files need their
 * secrets filled in.
 */
function operatorEnvFile(key: FileKey): string {
  if (key === 'prod') return ENV_EXAMPLE.prod;
  if (key !== 'dev') return filledEnvFile(ENV_EXAMPLE[key]);
  return writeEnvFile(join(temp.dir, 'empty.env'), {});
}

function model(key: FileKey): ComposeModel {
  let m = models.get(key);
  if (!m) {
    m = renderCompose(FILES[key], operatorEnvFile(key));
    models.set(key, m);
  }
  return m;
}

describe.each(Object.keys(FILES) as FileKey[])('compose file %s', (key) => {
  it('is accepted by `docker-compose config` with the variables of its .env.example filled in', () => {
    const result = composeConfig(key, filledEnvFile(ENV_EXAMPLE[key]));
    expect(describeResult('docker-compose config', result)).toMatch(/^docker-compose config exited 0/);
    expect(
      describeResult('docker-compose config (operator env)', composeConfig(key, operatorEnvFile(key))),
    ).toMatch(/exited 0/);
    expect(Object.keys(model(key).services).length).toBeGreaterThan(0);
  });

  it('pins every pulled image to a tag that names a release (no rolling tag)', () => {
    for (const [name, service] of Object.entries(model(key).services)) {
      const image = String(service.image);
      // An image built here from the Dockerfile (the dev stage) is named, not released.
      const builtHere = service.build !== undefined && service.build.target === 'dev';
      expect({ name, image, pinned: builtHere || isReleaseTag(image) }).toEqual({
        name,
        image,
        pinned: true,
      });
    }
  });

  it('contains no hard-coded private IP address', () => {
    const text = readFileSync(FILES[key], 'utf8');
    expect(text).not.toMatch(/\b(10\.\d+\.\d+\.\d+|192\.168\.\d+\.\d+|172\.(1[6-9]|2\d|3[01])\.\d+\.\d+)\b/);
  });

  it('rotates every container log (json-file, 10m × 3)', () => {
    for (const [name, service] of Object.entries(model(key).services)) {
      expect({ name, logging: service.logging }).toEqual({
        name,
        logging: { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } },
      });
    }
  });

  it('documents every variable it reads in its .env.example', () => {
    const text = readFileSync(FILES[key], 'utf8');
    // `$${X}` is escaped for the container's shell, not interpolated by compose.
    const used = new Set([...text.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1]));
    const documented = new Set(
      [...readFileSync(ENV_EXAMPLE[key], 'utf8').matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]),
    );
    const missing = [...used].filter((v) => !documented.has(v));
    expect(missing).toEqual([]);
  });
});

describe.each(['infisical', 'inngest', 'openobserve', 'pgvector'] as const)(
  'compose file %s without secrets',
  (key) => {
    it('refuses to render while a required secret is empty, naming the variable', () => {
      const result = composeConfig(key, ENV_EXAMPLE[key]);
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/Missing mandatory value .*: set [A-Z0-9_]+ in compose\//);
    });
  },
);

describe('development compose file', () => {
  it('mounts the server sources read-only for hot reload and builds the dev target', () => {
    const server = model('dev').services['audit-server']!;
    expect(server.build.target).toBe('dev');
    const src = mounts(server).find((v) => v.target === '/app/server/src');
    expect(src).toEqual(
      expect.objectContaining({ source: join(REPO_ROOT, 'server', 'src'), read_only: true }),
    );
  });

  it('starts the server only after healthy PostgreSQL and Redis', () => {
    const server = model('dev').services['audit-server']!;
    expect(server.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    for (const name of ['audit-server', 'postgres', 'redis']) {
      expect(model('dev').services[name]!.healthcheck.test.length).toBeGreaterThan(0);
    }
  });

  it.each([
    ['dev', 'audit-server', '/health'],
    ['prod', 'audit-server', '/ready'],
  ] as const)(
    'has a %s %s health check that passes against a running server and fails against none',
    async (file, service, probe) => {
      const test = model(file).services[service]!.healthcheck.test as string[];
      expect(test.slice(0, 3)).toEqual(['CMD', 'node', '-e']);
      const script = test[3]!;
      expect(script).toContain(`http://127.0.0.1:3000${probe}`);
      const srv = await startTestServer('pglite');
      try {
        const port = new URL(srv.url).port;
        // Asynchronously: the server answers from this process.
        expect(await nodeExit(script.replace('127.0.0.1:3000', `127.0.0.1:${port}`))).toBe(0);
      } finally {
        await srv.close();
      }
      const closed = await freePort();
      expect(await nodeExit(script.replace('127.0.0.1:3000', `127.0.0.1:${closed}`))).toBe(1);
    },
  );

  it('runs pgvector PostgreSQL 17 with pg_stat_statements and logical WAL', () => {
    const postgres = model('dev').services.postgres!;
    expect(postgres.image).toBe('pgvector/pgvector:0.8.6-pg17');
    expect(postgres.command.join(' ')).toContain('shared_preload_libraries=pg_stat_statements');
    expect(postgres.command.join(' ')).toContain('wal_level=logical');
  });

  it('uses compose/redis.conf and the password it declares', () => {
    const redis = model('dev').services.redis!;
    const conf = mounts(redis).find((v) => v.target === '/usr/local/etc/redis/redis.conf');
    expect(conf?.source).toBe(join(COMPOSE, 'redis.conf'));
    const password = /^requirepass (\S+)$/m.exec(readFileSync(join(COMPOSE, 'redis.conf'), 'utf8'))?.[1];
    expect(password).toBeDefined();
    expect(model('dev').services['audit-server']!.environment.REDIS_URL).toBe(
      `redis://:${password}@redis:6379/0`,
    );
  });

  it('allows CORS from localhost development servers', () => {
    const origins = String(model('dev').services['audit-server']!.environment.CORS_ORIGINS).split(',');
    expect(origins).toEqual(expect.arrayContaining(['http://localhost:5173', 'http://localhost:3000']));
  });

  it('publishes ports on the loopback interface only', () => {
    for (const service of Object.values(model('dev').services)) {
      for (const port of ports(service)) expect(port.host_ip).toBe('127.0.0.1');
    }
  });
});

describe('production-simulation compose file', () => {
  it('puts nginx with compose/nginx.conf in front, the only service with published ports', () => {
    const services = model('prod').services;
    const withPorts = Object.entries(services)
      .filter(([, s]) => ports(s).length > 0)
      .map(([n]) => n);
    expect(withPorts).toEqual(['nginx']);
    const conf = mounts(services.nginx!).find((v) => v.target === '/etc/nginx/nginx.conf');
    expect(conf).toEqual(expect.objectContaining({ source: join(COMPOSE, 'nginx.conf'), read_only: true }));
    expect(
      ports(services.nginx!)
        .map((p) => p.target)
        .sort(),
    ).toEqual([443, 80]);
  });

  it('runs two API replicas with resource limits, reservations and a restart policy', () => {
    const server = model('prod').services['audit-server']!;
    expect(server.deploy.replicas).toBe(2);
    expect(server.deploy.resources.limits).toEqual(expect.objectContaining({ memory: expect.any(String) }));
    expect(server.deploy.resources.reservations).toEqual(
      expect.objectContaining({ memory: expect.any(String) }),
    );
    expect(server.deploy.restart_policy.condition).toBe('on-failure');
    expect(server.environment.AUDIT_ROLE).toBe('api');
    expect(server.environment.NODE_ENV).toBe('production');
  });

  it('runs the same image as api, worker and migrate, read-only with a /tmp tmpfs', () => {
    const services = model('prod').services;
    const roles = ['audit-server', 'audit-worker', 'audit-migrate'].map((name) => {
      const s = services[name]!;
      expect({ name, read_only: s.read_only }).toEqual({ name, read_only: true });
      expect((s.tmpfs as string[]).some((t) => t.startsWith('/tmp'))).toBe(true);
      expect(s.cap_drop).toEqual(['ALL']);
      return {
        image: String(s.image),
        target: String(s.build.target),
        role: String(s.environment.AUDIT_ROLE),
      };
    });
    expect(new Set(roles.map((r) => r.image)).size).toBe(1);
    expect(roles.map((r) => r.target)).toEqual(['runner', 'runner', 'runner']);
    expect(roles.map((r) => r.role)).toEqual(['api', 'worker', 'migrate']);
    expect(services['audit-server']!.depends_on['audit-migrate']).toEqual({
      condition: 'service_completed_successfully',
    });
  });

  it('keeps PostgreSQL and Redis off the host network and Redis on redis.prod.conf', () => {
    const { postgres, redis } = model('prod').services;
    expect(postgres!.ports).toBeUndefined();
    expect(redis!.ports).toBeUndefined();
    const conf = mounts(redis!).find((v) => v.target === '/usr/local/etc/redis/redis.conf');
    expect(conf?.source).toBe(join(COMPOSE, 'redis.prod.conf'));
  });

  /** The secrets each service must receive: exactly what its role uses (docs/deploying.md). */
  const SECRETS_BY_SERVICE: Record<string, string[]> = {
    nginx: [],
    'audit-migrate': ['migrator-database-url'],
    'audit-server': ['audit-auth-secret', 'audit-bootstrap-api-key', 'audit-delivery-secret-key', 'audit-signing-key', 'database-url', 'redis-url'],
    'audit-worker': ['audit-delivery-secret-key', 'audit-verifier-key', 'database-url', 'redis-url'],
    postgres: ['audit-migrator-password', 'audit-runtime-password', 'postgres-password'],
    redis: ['redis-password'],
  };

  it('gives each service exactly the secrets its role uses, each read through a *_FILE variable', () => {
    const { services, secrets } = model('prod');
    const received = Object.fromEntries(
      Object.entries(services).map(([name, s]) => [
        name,
        serviceSecrets(s)
          .map((x) => x.source)
          .sort(),
      ]),
    );
    expect(received).toEqual(SECRETS_BY_SERVICE);
    for (const [name, service] of Object.entries(services)) {
      const paths = serviceSecrets(service).map((x) => x.path);
      const fileVars = Object.entries((service.environment ?? {}) as Record<string, string>).filter(([k]) =>
        k.endsWith('_FILE'),
      );
      // Every *_FILE variable names a secret of this service, and every secret is read by one.
      for (const [variable, path] of fileVars)
        expect({ name, variable, path, mounted: paths.includes(path) }).toEqual({
          name,
          variable,
          path,
          mounted: true,
        });
      expect({ name, unread: paths.filter((p) => !fileVars.some(([, v]) => v === p)) }).toEqual({
        name,
        unread: [],
      });
    }
    // The files live in AUDIT_SECRETS_DIR (compose/secrets/ by default, git-ignored).
    for (const [name, secret] of Object.entries(secrets ?? {})) {
      expect({ name, file: secret.file }).toEqual({ name, file: join(COMPOSE, 'secrets', name) });
    }
    expect(run('git', ['-C', REPO_ROOT, 'check-ignore', '-q', 'compose/secrets/database-url']).status).toBe(
      0,
    );
  });

  it('with the Inngest overlay, the api alone gets the Inngest signing key, as a file, and joins the infrastructure network', () => {
    const result = run(
      requireBinary('docker-compose', 'docker-compose'),
      ['--env-file', ENV_EXAMPLE.prod, '-f', FILES.prod, '-f', join(COMPOSE, 'docker-compose.inngest.yml'), 'config'],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
    );
    expect(describeResult('docker-compose config', result)).toMatch(/exited 0/);
    const { services, secrets, networks } = parseAllDocuments(result.stdout)[0]!.toJS() as ComposeModel;
    const received = Object.fromEntries(Object.entries(services).map(([name, s]) => [name, serviceSecrets(s).map((x) => x.source).sort()]));
    expect(received).toEqual({ ...SECRETS_BY_SERVICE, 'audit-server': [...SECRETS_BY_SERVICE['audit-server']!, 'audit-inngest-signing-key'].sort() });
    expect(services['audit-server']!.environment).toMatchObject({
      INNGEST_SIGNING_KEY_FILE: '/run/secrets/audit-inngest-signing-key',
      INNGEST_BASE_URL: 'http://inngest:8288',
    });
    expect(secrets?.['audit-inngest-signing-key']).toEqual({ file: join(COMPOSE, 'secrets', 'audit-inngest-signing-key') });
    expect(networks?.infra).toEqual({ external: true, name: 'smedrec-infra' });
  });

  it('puts no secret in an environment variable, a command line or a committed file', () => {
    const secretVariables = [
      'DATABASE_URL',
      'REDIS_URL',
      'AUDIT_SIGNING_KEY',
      'AUDIT_BOOTSTRAP_API_KEY',
      'POSTGRES_PASSWORD',
      'REDIS_PASSWORD',
      'AUDIT_MIGRATOR_PASSWORD',
      'AUDIT_RUNTIME_PASSWORD',
    ];
    for (const [name, service] of Object.entries(model('prod').services)) {
      const variables = Object.keys((service.environment ?? {}) as Record<string, string>);
      expect({ name, secrets: variables.filter((v) => secretVariables.includes(v)) }).toEqual({
        name,
        secrets: [],
      });
      const commandLine = [service.entrypoint, service.command].flat().filter(Boolean).join(' ');
      expect(commandLine).not.toMatch(/requirepass|password|PRIVATE\+KEY/i);
    }
    for (const file of [
      FILES.prod,
      ENV_EXAMPLE.prod,
      join(COMPOSE, 'redis.prod.conf'),
      join(COMPOSE, 'redis-start.sh'),
      join(COMPOSE, 'postgres-roles.sh'),
    ]) {
      const text = readFileSync(file, 'utf8');
      // No credentials in a URL, no requirepass line, no signing key, no literal password value.
      expect({ file, url: /(postgres(ql)?|rediss?):\/\/[^\s'"@]*:[^\s'"@<>]+@/.test(text) }).toEqual({
        file,
        url: false,
      });
      expect({ file, requirepass: /^\s*requirepass\s/m.test(text) }).toEqual({ file, requirepass: false });
      expect({ file, key: /PRIVATE\+KEY\+/.test(text) }).toEqual({ file, key: false });
      expect({ file, assigned: /^\s*[A-Z_]*(PASSWORD|SECRET|_KEY)=(?!["']?\$)\S/m.test(text) }).toEqual({
        file,
        assigned: false,
      });
    }
  });

  it('connects migrate as the owner role and api and worker as the runtime role, after migrate succeeded', () => {
    const { services } = model('prod');
    expect(services['audit-migrate']!.environment.DATABASE_URL_FILE).toBe(
      '/run/secrets/migrator-database-url',
    );
    for (const name of ['audit-server', 'audit-worker']) {
      expect({ name, url: services[name]!.environment.DATABASE_URL_FILE }).toEqual({
        name,
        url: '/run/secrets/database-url',
      });
      expect({ name, migrates: services[name]!.environment.DATABASE_MIGRATE_ON_START }).toEqual({
        name,
        migrates: 'false',
      });
      expect({ name, after: services[name]!.depends_on['audit-migrate'] }).toEqual({
        name,
        after: { condition: 'service_completed_successfully' },
      });
    }
    expect(services['audit-migrate']!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(services['audit-migrate']!.restart).toBe('no');
    // The init script that creates the roles runs when the image initializes the volume.
    const init = mounts(services.postgres!).filter((m) =>
      m.target.startsWith('/docker-entrypoint-initdb.d/'),
    );
    expect(init).toEqual([
      {
        source: join(COMPOSE, 'postgres-roles.sh'),
        target: '/docker-entrypoint-initdb.d/10-audit-roles.sh',
        read_only: true,
      },
    ]);
    // Healthy only once the real server listens on TCP (the init-time server has the socket only).
    expect(services.postgres!.healthcheck.test.join(' ')).toContain('pg_isready --host=127.0.0.1');
  });

  it("creates the roles with the same SQL as PgVectorDb's init script in dist-k8s/", () => {
    /** The SQL statements of a roles script's psql here-document, and its role names. */
    const sqlOf = (script: string) => {
      const body = /<<'SQL'\n([\s\S]*?)\nSQL\n/.exec(script)?.[1];
      if (body === undefined) throw new Error("no <<'SQL' here-document");
      return {
        statements: body.split('\n').filter((line) => line.trim() !== '' && !line.trim().startsWith('--')),
        roles: [...script.matchAll(/-v (migrator|app)=(\w+)/g)].map((m) => `${m[1]}=${m[2]}`),
      };
    };
    const objects = parseAllDocuments(
      readFileSync(join(REPO_ROOT, 'dist-k8s', 'dev', '0001-data.k8s.yaml'), 'utf8'),
    ).map((d) => d.toJS() as Record<string, Yaml> | null);
    const configMap = objects.find(
      (o) => o?.kind === 'ConfigMap' && o.data?.['10-audit-roles.sh'] !== undefined,
    );
    expect(configMap).toBeDefined();
    const kubernetes = sqlOf(String(configMap!.data['10-audit-roles.sh']));
    const compose = sqlOf(readFileSync(join(COMPOSE, 'postgres-roles.sh'), 'utf8'));
    expect(compose).toEqual(kubernetes);
    expect(compose.roles).toEqual(['migrator=audit_migrator', 'app=audit_runtime']);
  });
});

describe('shell scripts mounted into compose containers', () => {
  const scripts = ['postgres-roles.sh', 'redis-start.sh'];

  it.each(scripts)('%s passes shellcheck as POSIX sh (the images run dash or busybox ash)', (name) => {
    const result = run(requireBinary('shellcheck'), ['--shell=sh', '--severity=style', join(COMPOSE, name)]);
    expect(describeResult(`shellcheck ${name}`, result)).toMatch(/exited 0/);
  });

  it.each(scripts)('%s starts with #!/bin/sh, set -eu, and is executable', (name) => {
    const file = join(COMPOSE, name);
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('#!/bin/sh\n')).toBe(true);
    expect(text).toMatch(/^set -eu$/m);
    expect(statSync(file).mode & 0o111).toBe(0o111);
  });
});

describe('infrastructure compose files', () => {
  it('join one configurable network instead of an external hard-coded one', () => {
    for (const key of ['infisical', 'inngest', 'openobserve', 'pgvector'] as const) {
      const networks = model(key).networks ?? {};
      expect({ key, name: networks.default?.name }).toEqual({ key, name: 'smedrec-infra' });
      expect(networks.default?.external).toBeUndefined();
    }
  });

  it('bind published ports to 127.0.0.1 by default', () => {
    for (const key of ['infisical', 'inngest', 'openobserve', 'pgvector'] as const) {
      for (const service of Object.values(model(key).services)) {
        for (const port of ports(service))
          expect({ key, ip: port.host_ip }).toEqual({ key, ip: '127.0.0.1' });
      }
    }
  });
});
