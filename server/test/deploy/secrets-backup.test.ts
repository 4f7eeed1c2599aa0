/**
 * scripts/secrets-backup.sh round trip with the real jq and gpg and a recording `kubectl` stub (no
 * cluster here): the export is encrypted (no Secret value in the file), carries only what a new
 * cluster needs (no uid, resourceVersion, managedFields, owner or last-applied annotation; no
 * service-account tokens), and --restore decrypts it into `kubectl apply`.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, describeResult, makeTempDir, requireBinary, run } from './support/tools';

const SECRET_VALUE = 'c2VjcmV0LXZhbHVlLW5vdC1pbi10aGUtZmlsZQ=='; // base64 of a recognizable value

const LISTING = {
  apiVersion: 'v1',
  kind: 'List',
  items: [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      data: { password: SECRET_VALUE },
      metadata: {
        name: 'audit-postgres',
        namespace: 'smedrec-audit',
        uid: '7d1c0c5e-0000-0000-0000-000000000000',
        resourceVersion: '4242',
        creationTimestamp: '2026-01-01T00:00:00Z',
        managedFields: [{ manager: 'kubectl' }],
        ownerReferences: [{ kind: 'Cluster', name: 'audit-postgres', uid: 'x' }],
        labels: { 'app.kubernetes.io/part-of': 'smedrec-audit' },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"…"}}', note: 'kept' },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'helm.sh/release.v1',
      data: { release: 'aGVsbQ==' },
      metadata: { name: 'sh.helm.release.v1.x.v1', namespace: 'smedrec-audit' },
    },
  ],
};

describe('scripts/secrets-backup.sh', () => {
  const temp = makeTempDir('secrets-backup');
  afterAll(() => temp.remove());
  const stubDir = join(temp.dir, 'bin');
  const applied = join(temp.dir, 'applied.json');
  const calls = join(temp.dir, 'kubectl-calls');

  beforeAll(() => {
    requireBinary('jq');
    requireBinary('gpg', 'gnupg');
    mkdirSync(stubDir);
    writeFileSync(join(temp.dir, 'listing.json'), JSON.stringify(LISTING));
    // kubectl stub: records its arguments; `get` prints the listing, `apply -f -` stores stdin.
    writeFileSync(
      join(stubDir, 'kubectl'),
      `#!/usr/bin/env bash\nprintf '%s\\n' "$*" >> '${calls}'\ncase " $* " in\n  *" get "*) cat '${join(temp.dir, 'listing.json')}' ;;\n  *" apply "*) cat > '${applied}' ;;\nesac\n`,
    );
    chmodSync(join(stubDir, 'kubectl'), 0o755);
    writeFileSync(join(temp.dir, 'passphrase'), 'a test passphrase for the secrets export\n', { mode: 0o600 });
  });

  const script = (args: string[]) =>
    run('bash', [join(REPO_ROOT, 'scripts', 'secrets-backup.sh'), ...args], {
      env: { PATH: `${stubDir}:${process.env.PATH ?? '/usr/bin:/bin'}`, GNUPGHOME: join(temp.dir, 'gnupg') },
    });

  it('exports encrypted, keeps only what a new cluster needs, and restores through kubectl apply', () => {
    mkdirSync(join(temp.dir, 'gnupg'), { mode: 0o700 });
    const file = join(temp.dir, 'secrets.json.gpg');
    const exported = script(['-n', 'smedrec-audit', '-p', join(temp.dir, 'passphrase'), '-o', file]);
    expect(describeResult('secrets-backup.sh', exported)).toMatch(/exited 0/);
    expect(existsSync(file)).toBe(true);
    const raw = readFileSync(file);
    expect(raw.includes(SECRET_VALUE)).toBe(false);
    expect(raw.includes('audit-postgres')).toBe(false);
    expect((Number(run('stat', ['-c', '%a', file]).stdout.trim()) % 100)).toBe(0); // no group/other access
    expect(readFileSync(calls, 'utf8')).toContain("--namespace smedrec-audit get secrets --field-selector type!=kubernetes.io/service-account-token -o json");

    const restored = script(['--restore', '-n', 'smedrec-audit', '-i', file, '-p', join(temp.dir, 'passphrase')]);
    expect(describeResult('secrets-backup.sh --restore', restored)).toMatch(/exited 0/);
    expect(JSON.parse(readFileSync(applied, 'utf8'))).toEqual({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          data: { password: SECRET_VALUE },
          metadata: { name: 'audit-postgres', namespace: 'smedrec-audit', labels: { 'app.kubernetes.io/part-of': 'smedrec-audit' }, annotations: { note: 'kept' } },
        },
      ],
    });
    expect(readFileSync(calls, 'utf8')).toContain('--namespace smedrec-audit apply --server-side --force-conflicts -f -');
  });

  it('a wrong passphrase restores nothing', () => {
    writeFileSync(join(temp.dir, 'wrong'), 'not the passphrase\n', { mode: 0o600 });
    writeFileSync(applied, 'untouched');
    const restored = script(['--restore', '-i', join(temp.dir, 'secrets.json.gpg'), '-p', join(temp.dir, 'wrong')]);
    expect(restored.status).toBe(1);
    expect(restored.stderr).toContain('secrets-backup.sh: error: import failed');
    expect(readFileSync(applied, 'utf8')).toBe('');
  });

  it('refuses an unencrypted export', () => {
    const r = script(['-o', join(temp.dir, 'plain.json')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('exports are always encrypted: pass -r RECIPIENT or -p PASSPHRASE_FILE');
  });
});
