/**
 * docs/deploying.md promises that every command on it is exercised. This test reads the page's
 * ```bash blocks and handles each command line by kind: operator scripts run with `--dry-run`,
 * `docker-compose … config` and the secret generators run for real, `npm start` starts and
 * answers /health, and the commands that need a Docker engine or a cluster (`up`, `logs`,
 * `kubectl apply -k`) must name compose files, services and folders that exist and validate.
 * A command of any other kind fails the test, so the page cannot drift from what is tested.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { parseSignerKey } from '../../src/ledger';
import { fetchOnce } from './support/services';
import {
  REPO_ROOT,
  describeResult,
  freePort,
  makeTempDir,
  requireBinary,
  run,
  startProcess,
  stopAll,
  waitFor,
} from './support/tools';

jest.setTimeout(180_000);

const page = readFileSync(join(REPO_ROOT, 'docs', 'deploying.md'), 'utf8');

/** Command lines of every ```bash block (continuations joined, comments dropped). */
function commands(markdown: string): string[] {
  const out: string[] = [];
  for (const block of markdown.matchAll(/```bash\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, ' ');
    for (const line of joined.split('\n')) {
      const trimmed = line.trim();
      if (trimmed !== '' && !trimmed.startsWith('#')) out.push(trimmed);
    }
  }
  return out;
}

const all = commands(page);
const temp = makeTempDir('docs');
afterAll(async () => {
  await stopAll();
  temp.remove();
});

/** What the page's commands see: secrets the prod compose file requires, and a database URL. */
const shellEnv: Record<string, string> = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: temp.dir,
  DATABASE_URL: 'postgres://audit:not-a-real-password@db.example.org:5432/audit',
  POSTGRES_PASSWORD: randomBytes(24).toString('hex'),
  REDIS_PASSWORD: randomBytes(32).toString('hex'),
  AUDIT_SIGNING_KEY: 'PRIVATE+KEY+smedrec.audit+00000000+AQ==',
};
const bash = (command: string) => run('bash', ['-c', command], { env: shellEnv, timeoutMs: 120_000 });

/** Compose file and services a `docker-compose -f FILE …` line refers to. */
function composeTarget(command: string): { file: string; services: Set<string> } {
  const file = /-f (\S+)/.exec(command)?.[1];
  if (!file) throw new Error(`docker-compose command without -f: ${command}`);
  const result = run(
    requireBinary('docker-compose', 'docker-compose'),
    ['-f', join(REPO_ROOT, file), 'config'],
    {
      env: shellEnv,
      cwd: REPO_ROOT,
    },
  );
  if (result.status !== 0) {
    // Infra files need their own .env; the compose-files test renders them with it. Here it is
    // enough that the file exists and names the services.
    const raw = parse(readFileSync(join(REPO_ROOT, file), 'utf8')) as { services: Record<string, unknown> };
    return { file, services: new Set(Object.keys(raw.services)) };
  }
  const model = parse(result.stdout) as { services: Record<string, unknown> };
  return { file, services: new Set(Object.keys(model.services)) };
}

describe('docs/deploying.md', () => {
  it('has commands to check', () => {
    expect(all.length).toBeGreaterThan(20);
  });

  it.each(all.filter((c) => c.startsWith('scripts/')))('`%s` succeeds with --dry-run', (command) => {
    const result = bash(command.includes('--dry-run') ? command : `${command} --dry-run`);
    expect(describeResult(command, result)).toMatch(/exited 0/);
    expect(result.stdout.trim().length).toBeGreaterThan(0);
  });

  it.each(all.filter((c) => /^docker-compose .* config( |$)/.test(c)))('`%s` passes', (command) => {
    const result = bash(command);
    expect(describeResult(command, result)).toMatch(/exited 0/);
  });

  it.each(all.filter((c) => /^docker-compose /.test(c) && !/ config( |$)/.test(c)))(
    '`%s` names a compose file and services that exist',
    (command) => {
      const { file, services } = composeTarget(command);
      expect(existsSync(join(REPO_ROOT, file))).toBe(true);
      expect(command).toMatch(/ (up -d|logs -f|down)( |$)/);
      const named = [
        ...(/ logs -f (.+)$/.exec(command)?.[1]?.split(' ') ?? []),
        ...[...command.matchAll(/--scale ([\w-]+)=/g)].map((m) => m[1]!),
      ];
      for (const service of named)
        expect({ command, service, known: services.has(service) }).toEqual({ command, service, known: true });
    },
  );

  it.each(all.filter((c) => c.startsWith('openssl ')))(
    '`%s` prints a secret of the promised size',
    (command) => {
      const result = bash(command);
      expect(result.status).toBe(0);
      const bytes = Number(/-hex (\d+)/.exec(command)?.[1]);
      expect(result.stdout.trim()).toMatch(new RegExp(`^[0-9a-f]{${bytes * 2}}$`));
    },
  );

  it.each(all.filter((c) => c.startsWith('node ')))(
    '`%s` prints a signing key the server accepts',
    (command) => {
      const result = run('bash', ['-c', command], { env: shellEnv, cwd: REPO_ROOT });
      expect(describeResult(command, result)).toMatch(/exited 0/);
      const key = result.stdout.trim();
      expect(key).toMatch(/^PRIVATE\+KEY\+smedrec\.audit\+[0-9a-f]{8}\+/);
      expect(() => parseSignerKey(key)).not.toThrow();
    },
  );

  it.each(all.filter((c) => c.startsWith('cp ')))(
    '`%s` copies a file that exists to a git-ignored path',
    (command) => {
      const [, from, to] = command.split(/\s+/);
      expect(existsSync(join(REPO_ROOT, from!))).toBe(true);
      const ignored = run('git', ['-C', REPO_ROOT, 'check-ignore', '-q', to!]);
      expect(ignored.status).toBe(0);
    },
  );

  it.each(all.filter((c) => c.startsWith('kubectl ')))(
    '`%s` points at a synthesized kustomization',
    (command) => {
      const dir = /-k (\S+)/.exec(command)?.[1];
      expect(dir).toBeDefined();
      // Committed (not merely present: `npm run synth` may be rewriting the folder right now).
      const tracked = run('git', [
        '-C',
        REPO_ROOT,
        'ls-files',
        '--error-unmatch',
        `${dir!}/kustomization.yaml`,
      ]);
      expect(describeResult('git ls-files', tracked)).toMatch(/exited 0/);
    },
  );

  it.each(all.filter((c) => c === 'npm start'))(
    '`%s` starts the embedded server, which answers /health',
    async () => {
      const port = await freePort();
      const server = startProcess('npm start', 'npm', ['start'], {
        env: {
          HOME: temp.dir,
          PORT: String(port),
          HOST: '127.0.0.1',
          AUDIT_DATA_DIR: join(temp.dir, 'data'),
        },
        processGroup: true,
      });
      await waitFor(
        'npm start /health',
        async () => {
          if (server.hasExited()) throw new Error(server.output());
          return (await fetchOnce({ port, path: '/health', timeoutMs: 2_000 })).status === 200
            ? true
            : undefined;
        },
        { attempts: 300, describe: () => server.output() },
      );
      await server.stop();
    },
  );

  it('contains no command of a kind this test does not exercise', () => {
    const known = [
      /^scripts\//,
      /^docker-compose /,
      /^openssl rand -hex \d+$/,
      /^node /,
      /^cp /,
      /^kubectl apply -k /,
      /^npm start$/,
    ];
    expect(all.filter((c) => !known.some((k) => k.test(c)))).toEqual([]);
  });
});
