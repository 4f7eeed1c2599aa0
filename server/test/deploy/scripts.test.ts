/**
 * The operator scripts in scripts/: shellcheck-clean, strict mode, usage text, clear errors for
 * bad arguments and missing tools, and `--dry-run` printing exactly the commands a real run
 * executes (the README's deployment commands are these).
 */
import { chmodSync, existsSync, readdirSync, readFileSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, describeResult, makeTempDir, requireBinary, run } from './support/tools';
import type { CommandResult } from './support/tools';
import { parseSignerKey, parseVerifierKey } from '../../src/ledger';

const SCRIPTS_DIR = join(REPO_ROOT, 'scripts');
const scripts = readdirSync(SCRIPTS_DIR)
  .filter((f) => f.endsWith('.sh'))
  .sort();
const temp = makeTempDir('scripts');
afterAll(() => temp.remove());

function sh(name: string, args: string[], env: Record<string, string> = {}): CommandResult {
  return run(join(SCRIPTS_DIR, name), args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
}

describe('scripts/', () => {
  it('holds the operator scripts', () => {
    expect(scripts).toEqual(['backup.sh', 'compose-secrets.sh', 'docker-build.sh', 'k8s-deploy.sh', 'pitr-restore.sh', 'restore.sh', 'secrets-backup.sh']);
  });

  it.each([...scripts, 'lib/common.sh'])('%s passes shellcheck (all optional checks on severity style)', (name) => {
    const result = run(requireBinary('shellcheck'), [
      '--shell=bash',
      '--severity=style',
      '--external-sources',
      join(SCRIPTS_DIR, name),
    ]);
    expect(describeResult(`shellcheck ${name}`, result)).toMatch(/exited 0/);
  });

  it.each(scripts)('%s runs in strict mode under bash and is executable', (name) => {
    const text = readFileSync(join(SCRIPTS_DIR, name), 'utf8');
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toMatch(/^set -euo pipefail$/m);
    const mode = run('stat', ['-c', '%a', join(SCRIPTS_DIR, name)]).stdout.trim();
    expect(Number.parseInt(mode, 8) & 0o111).toBe(0o111);
  });

  it.each(scripts)('%s prints usage with --help and exits 0', (name) => {
    const result = sh(name, ['--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: /);
    expect(result.stdout).toContain('--dry-run');
  });

  it.each(scripts)('%s rejects an unknown argument with exit 2 and usage on stderr', (name) => {
    const result = sh(name, ['--no-such-option']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(`${name}: error: unknown argument '--no-such-option'`);
    expect(result.stderr).toContain('Usage: ');
  });
});

describe('scripts/docker-build.sh', () => {
  const revision = run('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD']).stdout.trim();

  // Without -t the tag is the server's version, the project's one image tag (image-tag.test.ts).
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'server', 'package.json'), 'utf8')) as { version: string }).version;

  it('dry-runs `build` as a BuildKit build of the runner target, tagged with the server version', () => {
    const result = sh('docker-build.sh', ['build', '--dry-run']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      `env DOCKER_BUILDKIT=1 docker build --file ${REPO_ROOT}/Dockerfile --target runner --tag smedrec/audit-server:${version} ${REPO_ROOT}\n`,
    );
  });

  it('dry-runs `build-prod` and `push` with the server version when -t is not given', () => {
    expect(sh('docker-build.sh', ['build-prod', '--dry-run']).stdout).toContain(`--build-arg VERSION=${version} `);
    expect(sh('docker-build.sh', ['push', '-r', 'ghcr.io', '--dry-run']).stdout).toBe(
      `docker tag smedrec/audit-server:${version} ghcr.io/smedrec/audit-server:${version}\n` +
        `docker push ghcr.io/smedrec/audit-server:${version}\n`,
    );
  });

  it('dry-runs `build-prod -t v1.0.0` with fresh base and OCI label values', () => {
    const result = sh('docker-build.sh', ['build-prod', '-t', 'v1.0.0', '--dry-run'], {
      SOURCE_DATE_EPOCH: '1767225600',
    });
    expect(result.status).toBe(0);
    const origin = run('git', ['-C', REPO_ROOT, 'config', '--get', 'remote.origin.url']).stdout.trim();
    expect(result.stdout).toBe(
      `env DOCKER_BUILDKIT=1 docker build --file ${REPO_ROOT}/Dockerfile --target runner --pull ` +
        `--build-arg VERSION=v1.0.0 --build-arg REVISION=${revision} --build-arg CREATED=2026-01-01T00:00:00Z ` +
        `--build-arg SOURCE_URL=${origin} --tag smedrec/audit-server:v1.0.0 ${REPO_ROOT}\n`,
    );
  });

  it('dry-runs `push -t v1.0.0 -r REGISTRY` as tag + push', () => {
    const result = sh('docker-build.sh', ['push', '-t', 'v1.0.0', '-r', 'ghcr.io/', '--dry-run']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      'docker tag smedrec/audit-server:v1.0.0 ghcr.io/smedrec/audit-server:v1.0.0\n' +
        'docker push ghcr.io/smedrec/audit-server:v1.0.0\n',
    );
  });

  it.each([
    [['push', '-t', 'v1'], 'push needs -r REGISTRY'],
    [['build', '-t', 'latest'], "refusing the tag 'latest'"],
    [['build', '-t', 'bad tag'], "invalid tag 'bad tag'"],
    [[], 'no command given'],
    [['build', 'push'], "only one command may be given (got 'build' and 'push')"],
  ])('rejects %j with a clear message', (args, message) => {
    const result = sh('docker-build.sh', [...args, '--dry-run']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('fails with exit 127 and an install hint when docker is missing', () => {
    const result = sh('docker-build.sh', ['build'], { DOCKER: join(temp.dir, 'no-docker') });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain(`'${join(temp.dir, 'no-docker')}' not found: install the Docker CLI`);
  });
});

describe('scripts/k8s-deploy.sh', () => {
  const dist = join(temp.dir, 'dist-k8s');
  beforeAll(() => {
    mkdirSync(join(dist, 'prod'), { recursive: true });
    writeFileSync(
      join(dist, 'prod', '0000-audit-server.k8s.yaml'),
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: smedrec-audit\n',
    );
  });
  const k8s = (args: string[], env: Record<string, string> = {}) =>
    sh('k8s-deploy.sh', args, { DIST_K8S: dist, ...env });
  const rollout = (name: string) =>
    `kubectl --namespace smedrec-audit rollout status deployment/${name} --timeout 300s`;

  it('applies the committed dist-k8s/prod by default', () => {
    const result = sh('k8s-deploy.sh', ['deploy', '-n', 'smedrec-audit', '--dry-run']);
    expect(describeResult('k8s-deploy.sh deploy', result)).toMatch(/exited 0/);
    expect(result.stdout).toBe(
      [
        `kubectl apply --recursive --filename ${REPO_ROOT}/dist-k8s/prod`,
        rollout('audit-server'),
        rollout('audit-server-worker'),
        '',
      ].join('\n'),
    );
  });

  it('dry-runs update as diff, apply and rollout waits', () => {
    const result = k8s(['update', '-n', 'smedrec-audit', '--dry-run']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      [
        `kubectl diff --recursive --filename ${dist}/prod`,
        `kubectl apply --recursive --filename ${dist}/prod`,
        rollout('audit-server'),
        rollout('audit-server-worker'),
        '',
      ].join('\n'),
    );
  });

  it('dry-runs status, scale -r 6 and rollback', () => {
    expect(k8s(['status', '-n', 'smedrec-audit', '--dry-run']).stdout).toBe(
      'kubectl --namespace smedrec-audit get deployments,statefulsets,pods,services,horizontalpodautoscalers,poddisruptionbudgets --output wide\n' +
        'kubectl --namespace smedrec-audit rollout history deployment/audit-server\n',
    );
    expect(k8s(['scale', '-r', '6', '-n', 'smedrec-audit', '--dry-run']).stdout).toBe(
      `kubectl --namespace smedrec-audit scale deployment/audit-server --replicas 6\n${rollout('audit-server')}\n`,
    );
    const rollback = k8s(['rollback', '-n', 'smedrec-audit', '--dry-run']);
    expect(rollback.stdout).toBe(
      `kubectl --namespace smedrec-audit rollout undo deployment/audit-server\n${rollout('audit-server')}\n`,
    );
    expect(rollback.stderr).toContain('Argo CD');
  });

  it('passes --context and custom names through', () => {
    const result = k8s([
      'scale',
      '-r',
      '0',
      '-n',
      'audit-staging',
      '-d',
      'api',
      '--context',
      'kind-audit',
      '--timeout',
      '5m',
      '--dry-run',
    ]);
    expect(result.stdout).toBe(
      'kubectl --context kind-audit --namespace audit-staging scale deployment/api --replicas 0\n' +
        'kubectl --context kind-audit --namespace audit-staging rollout status deployment/api --timeout 5m\n',
    );
  });

  it.each([
    [['scale'], 'scale needs -r N'],
    [['scale', '-r', 'many'], "invalid replica count 'many'"],
    [['status', '-n', 'Bad_Namespace'], "invalid namespace 'Bad_Namespace'"],
    [['deploy', '--timeout', 'soon'], "invalid timeout 'soon'"],
    [[], 'no command given'],
  ])('rejects %j with a clear message', (args, message) => {
    const result = k8s([...args, '--dry-run']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('names the missing manifest folder and how to create it', () => {
    const result = k8s(['deploy', '-e', 'staging', '--dry-run']);
    expect(result.status).toBe(66);
    expect(result.stderr).toContain(`no manifests in ${dist}/staging: run 'npm run synth'`);
  });

  it('fails with exit 127 and an install hint when kubectl is missing', () => {
    const result = k8s(['status'], { KUBECTL: join(temp.dir, 'no-kubectl') });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain('not found: install kubectl');
  });
});

describe('scripts/backup.sh and scripts/restore.sh argument checks', () => {
  it.each([
    ['backup.sh', ['-r', 'KEY'], 'no database: pass -d URL or set DATABASE_URL'],
    ['backup.sh', ['-d', 'postgres://h/db'], 'backups are always encrypted'],
    [
      'backup.sh',
      ['-d', 'postgres://h/db', '-r', 'K', '-p', '/f'],
      'choose one of -r (public key) and -p (passphrase file)',
    ],
    ['backup.sh', ['-d', 'mysql://h/db', '-r', 'K'], 'must be a postgres:// or postgresql:// URL'],
    ['restore.sh', ['-d', 'postgres://h/db'], 'no backup file: pass -i FILE'],
    ['restore.sh', ['-i', 'x.gpg'], 'no target database'],
    [
      'restore.sh',
      ['-i', 'x.gpg', '-d', 'postgres://h/bad-name'],
      "target database name 'bad-name' must be a plain identifier",
    ],
  ])('%s %j fails with a clear message', (name, args, message) => {
    const result = sh(name, [...args, '--dry-run']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('restore.sh reports a missing PostgreSQL client with an install hint', () => {
    // A PATH holding only bash and coreutils-free essentials: pg_restore cannot be found.
    const bin = join(temp.dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['bash', 'dirname', 'gpg', 'gzip']) {
      const path = requireBinary(tool, tool === 'gpg' ? 'gnupg' : 'coreutils');
      run('ln', ['-s', path, join(bin, tool)]);
    }
    const result = run('bash', [join(SCRIPTS_DIR, 'restore.sh'), '-i', 'x.gpg', '-d', 'postgres://h/db'], {
      env: { PATH: bin },
    });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain(
      "'pg_restore' not found: install the PostgreSQL client (apt-get install postgresql-client)",
    );
  });
});

describe('scripts/compose-secrets.sh', () => {
  const FILES = [
    'postgres-password',
    'audit-migrator-password',
    'audit-runtime-password',
    'redis-password',
    'migrator-database-url',
    'database-url',
    'redis-url',
    'audit-signing-key',
    'audit-verifier-key',
    'audit-auth-secret',
    'audit-delivery-secret-key',
    'audit-bootstrap-api-key',
  ];
  const secrets = (dir: string, args: string[] = []) => sh('compose-secrets.sh', ['-o', dir, ...args]);
  const read = (dir: string, name: string) => readFileSync(join(dir, name), 'utf8').replace(/\n$/, '');

  it('dry-runs as the list of files it would write, with no secret value', () => {
    const dir = join(temp.dir, 'secrets-dry');
    const result = secrets(dir, ['--dry-run']);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      [
        `install -d -m 700 ${dir}`,
        `write ${dir}/postgres-password (mode 444): openssl rand -hex 32`,
        `write ${dir}/audit-migrator-password (mode 444): openssl rand -hex 32`,
        `write ${dir}/audit-runtime-password (mode 444): openssl rand -hex 32`,
        `write ${dir}/redis-password (mode 444): openssl rand -hex 32`,
        `write ${dir}/migrator-database-url (mode 444): postgres://audit_migrator:<audit-migrator-password>@postgres:5432/audit`,
        `write ${dir}/database-url (mode 444): postgres://audit_runtime:<audit-runtime-password>@postgres:5432/audit`,
        `write ${dir}/redis-url (mode 444): redis://:<redis-password>@redis:6379/0`,
        `write ${dir}/audit-signing-key (mode 444): generateSignerKey('smedrec.audit') (server/src/ledger), private half`,
        `write ${dir}/audit-verifier-key (mode 444): the same key's public half`,
        `write ${dir}/audit-auth-secret (mode 444): openssl rand -hex 32`,
        `write ${dir}/audit-delivery-secret-key (mode 444): openssl rand -base64 32`,
        `write ${dir}/audit-bootstrap-api-key (mode 444): openssl rand -hex 32`,
        '',
      ].join('\n'),
    );
    expect(existsSync(dir)).toBe(false);
  });

  it('writes every secret the production compose file mounts, consistent with each other', () => {
    const dir = join(temp.dir, 'secrets');
    const result = secrets(dir, ['--origin', 'audit.example.org']);
    expect(describeResult('compose-secrets.sh', result)).toMatch(/exited 0/);
    expect(result.stdout.trim()).toBe(dir);
    expect(readdirSync(dir).sort()).toEqual([...FILES].sort());
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const name of FILES)
      expect({ name, mode: statSync(join(dir, name)).mode & 0o777 }).toEqual({ name, mode: 0o444 });
    for (const name of [
      'postgres-password',
      'audit-migrator-password',
      'audit-runtime-password',
      'redis-password',
      'audit-auth-secret',
      'audit-bootstrap-api-key',
    ]) {
      expect({ name, value: read(dir, name) }).toEqual({
        name,
        value: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
    }
    expect(new Set(FILES.filter((f) => f.endsWith('password')).map((f) => read(dir, f))).size).toBe(4);
    // DELIVERY_SECRET_KEY's form: 32 bytes in standard base64 (server/src/config.ts).
    expect(read(dir, 'audit-delivery-secret-key')).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(read(dir, 'migrator-database-url')).toBe(
      `postgres://audit_migrator:${read(dir, 'audit-migrator-password')}@postgres:5432/audit`,
    );
    expect(read(dir, 'database-url')).toBe(
      `postgres://audit_runtime:${read(dir, 'audit-runtime-password')}@postgres:5432/audit`,
    );
    expect(read(dir, 'redis-url')).toBe(`redis://:${read(dir, 'redis-password')}@redis:6379/0`);
    // The server parses the key, named by --origin, and the verifier key is its public half.
    const signer = parseSignerKey(read(dir, 'audit-signing-key'));
    expect(signer.name).toBe('audit.example.org');
    expect(read(dir, 'audit-verifier-key')).toBe(signer.verifierKey);
    expect(parseVerifierKey(read(dir, 'audit-verifier-key')).keyId).toEqual(signer.keyId);
    // No secret on stdout or stderr.
    for (const name of FILES) expect(`${result.stdout}${result.stderr}`).not.toContain(read(dir, name));
  });

  it('keeps existing files and rebuilds only what is missing, from the kept passwords', () => {
    const dir = join(temp.dir, 'secrets-keep');
    expect(secrets(dir).status).toBe(0);
    const before = Object.fromEntries(FILES.map((f) => [f, read(dir, f)]));
    run('rm', ['-f', join(dir, 'database-url'), join(dir, 'redis-password'), join(dir, 'redis-url')]);
    const again = secrets(dir);
    expect(again.status).toBe(0);
    for (const name of FILES.filter((f) => !['redis-password', 'redis-url'].includes(f))) {
      expect({ name, value: read(dir, name) }).toEqual({ name, value: before[name] });
    }
    expect(read(dir, 'redis-password')).not.toBe(before['redis-password']);
    expect(read(dir, 'redis-url')).toBe(`redis://:${read(dir, 'redis-password')}@redis:6379/0`);
    expect(secrets(dir, ['--dry-run']).stdout).toContain(`keep ${dir}/database-url`);
  });

  it('refuses a kept URL that no longer matches its password file', () => {
    const dir = join(temp.dir, 'secrets-mismatch');
    expect(secrets(dir).status).toBe(0);
    chmodSync(join(dir, 'redis-url'), 0o644);
    writeFileSync(join(dir, 'redis-url'), 'redis://:stale@redis:6379/0\n');
    const result = secrets(dir);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      `${dir}/redis-url does not match ${dir}/redis-password: delete redis-url`,
    );
  });

  it.each([
    [['--origin', 'has space'], "origin 'has space' must be printable ASCII without spaces or '+'"],
    [['--origin', 'a+b'], "origin 'a+b' must be printable ASCII without spaces or '+'"],
    [['-o', ''], 'the output directory must not be empty'],
  ])('rejects %j with a clear message', (args, message) => {
    const result = sh('compose-secrets.sh', [...args, '--dry-run']);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
  });
});
