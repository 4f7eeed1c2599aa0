/**
 * The packages as a new user gets them: `npm pack` each one (which builds it through `prepack`),
 * install the tarballs into fresh projects outside the workspace (dependencies from the npm
 * registry, through npm's cache), compile them there under `strict` without `skipLibCheck`, and
 * run them: the audit-client README's example against a running server, the manifests README's
 * cdk8s app, and `audit-verify` on a receipt that server issued.
 */
import { execFile, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../helpers/server';

const ROOT = path.resolve(__dirname, '../../..');
jest.setTimeout(900_000);

/** Versions the workspace pins (so npm's cache has them). */
const rootLock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { version: string }>;
};
const pinned = (name: string) => `${name}@${rootLock.packages[`node_modules/${name}`]!.version}`;

function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    timeout: 600_000,
    env: {
      ...process.env,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      ...env,
    },
  });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** A fresh project in `dir` with `deps` installed (tarball paths or name@version). */
function project(dir: string, pkg: Record<string, unknown>, deps: string[]): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({ name: path.basename(dir), version: '1.0.0', private: true, ...pkg }, null, 2),
  );
  run('npm', ['install', '--prefer-offline', '--no-package-lock', '--save-exact', ...deps], dir);
}

/** Installed package names under `dir/node_modules` (scoped ones as `@scope/name`). */
function installed(dir: string): string[] {
  const nm = path.join(dir, 'node_modules');
  return fs
    .readdirSync(nm)
    .filter((n) => !n.startsWith('.'))
    .flatMap((n) => (n.startsWith('@') ? fs.readdirSync(path.join(nm, n)).map((m) => `${n}/${m}`) : [n]))
    .sort();
}

const STRICT = {
  strict: true,
  noUncheckedIndexedAccess: true,
  skipLibCheck: false,
  noEmitOnError: true,
  outDir: 'dist',
  rootDir: 'src',
};

function readmeExample(file: string, lang: string): string {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(text)?.[1];
  if (!block) throw new Error(`${file} has no \`\`\`${lang} block`);
  return block;
}

describe('packed packages installed into fresh projects', () => {
  let scratch: string;
  let tarballs: Record<string, { file: string; files: string[] }>;
  let server: TestServer;

  beforeAll(async () => {
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-pack-'));
    const packed = run(
      'npm',
      [
        'pack',
        '--json',
        '--pack-destination',
        scratch,
        '-w',
        'packages/audit-client',
        '-w',
        'packages/audit-verify',
        '-w',
        'manifests',
      ],
      ROOT,
    );
    // prepack's build output precedes npm's JSON report on stdout.
    const report = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as Array<{
      name: string;
      filename: string;
      files: Array<{ path: string }>;
    }>;
    tarballs = Object.fromEntries(
      report.map((r) => [
        r.name,
        { file: path.join(scratch, r.filename), files: r.files.map((f) => f.path).sort() },
      ]),
    );
    server = await startTestServer('pglite');
  });

  afterAll(async () => {
    await server?.close();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  it('ships only what users need: built code, declarations, README and package.json', () => {
    expect(Object.keys(tarballs).sort()).toEqual([
      '@smedrec/audit-client',
      '@smedrec/audit-manifests',
      '@smedrec/audit-verify',
    ]);
    expect(tarballs['@smedrec/audit-client']!.files).toEqual([
      'README.md',
      'dist/index.d.ts',
      'dist/index.js',
      'dist/openapi.json',
      'package.json',
    ]);
    for (const [name, dir] of [
      ['@smedrec/audit-manifests', 'lib/'],
      ['@smedrec/audit-verify', 'dist/'],
    ] as const) {
      const files = tarballs[name]!.files;
      expect(files.filter((f) => !f.startsWith(dir))).toEqual(['README.md', 'package.json']);
      expect(files.filter((f) => !/\.(js|d\.ts)$/.test(f) && f.startsWith(dir))).toEqual([]);
      expect(files.some((f) => /test/.test(f))).toBe(false);
    }
    // The verifier is the ledger and its CLI, nothing of the server.
    expect(
      tarballs['@smedrec/audit-verify']!.files.filter(
        (f) => f.startsWith('dist/') && !/^dist\/(ledger\/[\w-]+|cli\/audit-verify(-bundle)?)\.(js|d\.ts)$/.test(f),
      ),
    ).toEqual([]);
  });

  it('audit-client: a strict frontend project compiles the README example and creates and queries events on a running server', async () => {
    const dir = path.join(scratch, 'frontend');
    project(dir, { type: 'module' }, [
      tarballs['@smedrec/audit-client']!.file,
      pinned('@trpc/client'),
      pinned('@trpc/server'),
      pinned('typescript'),
    ]);
    // A handful of packages: nothing of the server (zod, drizzle, PGlite, OpenTelemetry …).
    expect(installed(dir)).toEqual(['@smedrec/audit-client', '@trpc/client', '@trpc/server', 'typescript']);
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(
      path.join(dir, 'src', 'audit.ts'),
      readmeExample('packages/audit-client/README.md', 'ts'),
    );
    fs.writeFileSync(
      path.join(dir, 'src', 'main.ts'),
      `import type { AppRouter, RestOperations } from '@smedrec/audit-client';
import type { inferRouterOutputs } from '@trpc/server';
import { auditClient, recordRead } from './audit.js';
declare const process: { argv: string[] };

const [url, key] = process.argv.slice(2) as [string, string];
const audit = auditClient(url, key);
const { receipt, events } = await recordRead(audit, 'dr-house', 'patient-42');
// The types are the server's, not \`any\`: a wrong field or procedure does not compile.
// @ts-expect-error no such procedure
void audit.events.nope;
// @ts-expect-error status is an enum
const bad: RestOperations['eventsCreate']['input'] = { action: 'x', status: 'maybe' };
void bad;
const keys: inferRouterOutputs<AppRouter>['ledger']['keys'] = await audit.ledger.keys.query();
console.log(JSON.stringify({ receipt, found: events.some((e) => e.id === receipt.id), verifierKey: keys.keys[0]?.verifierKey }));
`,
    );
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...STRICT,
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          lib: ['ES2022', 'DOM', 'ESNext.Disposable'],
          types: [],
        },
        include: ['src'],
      }),
    );
    run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
    // Asynchronously: the server runs in this process, so a synchronous child would block it.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['dist/main.js', server.url, server.adminKey],
      { cwd: dir, timeout: 300_000 },
    );
    const out = JSON.parse(stdout) as { receipt: { id: string }; found: boolean; verifierKey: string };
    expect(out.found).toBe(true);
    expect(out.verifierKey).toBe(server.verifierKey);
  });

  it('audit-verify: installed alone (no dependencies), verifies a receipt of the server and rejects a tampered one', async () => {
    const dir = path.join(scratch, 'auditor');
    project(dir, {}, [tarballs['@smedrec/audit-verify']!.file]);
    expect(installed(dir)).toEqual(['@smedrec/audit-verify']);
    const created = await server.request('POST', '/api/v1/events', {
      action: 'data.read',
      status: 'success',
      patientId: 'patient-7',
    });
    expect(created.status).toBe(201);
    const receiptFile = path.join(scratch, 'receipt.json');
    fs.writeFileSync(receiptFile, JSON.stringify(created.body));
    const ok = spawnSync(
      path.join(dir, 'node_modules/.bin/audit-verify'),
      ['receipt', receiptFile, '--key', server.verifierKey],
      { encoding: 'utf8' },
    );
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    const receipt = JSON.parse(fs.readFileSync(receiptFile, 'utf8')) as { leafHash: string };
    const tampered = path.join(scratch, 'tampered.json');
    fs.writeFileSync(
      tampered,
      JSON.stringify({ ...receipt, leafHash: Buffer.alloc(32, 7).toString('base64') }),
    );
    const bad = spawnSync(
      path.join(dir, 'node_modules/.bin/audit-verify'),
      ['receipt', tampered, '--key', server.verifierKey],
      { encoding: 'utf8' },
    );
    expect(bad.status).toBe(1);
    // And as a library, from plain Node.
    const lib = run(
      process.execPath,
      [
        '-e',
        `const l = require('@smedrec/audit-verify'); console.log(l.parseVerifierKey(${JSON.stringify(server.verifierKey)}).name)`,
      ],
      dir,
    );
    expect(lib.stdout.trim()).toBe('test.audit');
  });

  it('audit-manifests: a cdk8s app of its own compiles the README example and synthesizes AuditServer and the other constructs', () => {
    const dir = path.join(scratch, 'cluster');
    project(dir, {}, [
      tarballs['@smedrec/audit-manifests']!.file,
      pinned('cdk8s'),
      pinned('cdk8s-plus-28'),
      pinned('constructs'),
      pinned('typescript'),
    ]);
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'main.ts'), readmeExample('manifests/README.md', 'ts'));
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { ...STRICT, target: 'ES2022', module: 'commonjs', lib: ['ES2022'], types: [] },
        include: ['src'],
      }),
    );
    run(process.execPath, [path.join(dir, 'node_modules/typescript/bin/tsc'), '-p', '.'], dir);
    run(process.execPath, ['dist/main.js'], dir);
    const yaml = fs.readFileSync(path.join(dir, 'dist-k8s', 'staging', 'audit.k8s.yaml'), 'utf8');
    for (const kind of ['Deployment', 'StatefulSet', 'Ingress', 'HorizontalPodAutoscaler', 'NetworkPolicy'])
      expect(yaml).toContain(`kind: ${kind}`);
    expect(yaml).toContain('host: audit.staging.example.org');
    expect(yaml).toMatch(/name: redis\b/);
    expect(yaml).toMatch(/image: .*pgvector/);
  });
});
