/**
 * The project has one image tag: the server's version. scripts/docker-build.sh builds and pushes
 * it by default, compose/.env.example and the production compose file run it, the synth
 * configuration (so dist-k8s/) deploys it, and the documentation names no other.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Yaml } from 'cdk8s';
import { DEFAULT_CONFIG_FILE } from '../src/environment-config';
import { listFiles } from '../src/environments';
import { AUDIT_SERVER_VERSION } from '../src/version';

const repoRoot = path.resolve(__dirname, '..', '..');
const read = (file: string) => fs.readFileSync(path.join(repoRoot, file), 'utf8');
const version = (JSON.parse(read('server/package.json')) as { version: string }).version;

describe('the image tag', () => {
  it('is the server version in the constructs and the synth configuration', () => {
    expect(AUDIT_SERVER_VERSION).toBe(version);
    expect((Yaml.load(DEFAULT_CONFIG_FILE)[0] as { image: { tag: string } }).image.tag).toBe(version);
  });

  it('is what dist-k8s/ deploys', () => {
    const tags = new Set<string>();
    for (const file of listFiles(path.join(repoRoot, 'dist-k8s'))) {
      for (const m of read(`dist-k8s/${file}`).matchAll(/image: \S*\/audit-server:(\S+)/g)) tags.add(m[1]!);
    }
    expect([...tags]).toEqual([version]);
  });

  it('is the default of scripts/docker-build.sh for build, build-prod and push', () => {
    const dryRun = (...args: string[]) => spawnSync('bash', [path.join(repoRoot, 'scripts', 'docker-build.sh'), ...args, '--dry-run'], { encoding: 'utf8' });
    expect(dryRun('build').stdout).toContain(` --tag smedrec/audit-server:${version} `);
    expect(dryRun('build-prod').stdout).toContain(` --build-arg VERSION=${version} `);
    expect(dryRun('push', '-r', 'ghcr.io').stdout).toContain(`docker push ghcr.io/smedrec/audit-server:${version}\n`);
  });

  it('is what compose/.env.example and the production compose file run', () => {
    expect([...read('compose/.env.example').matchAll(/^AUDIT_TAG=(.*)$/gm)].map((m) => m[1])).toEqual([version]);
    expect([...read('compose/docker-compose.prod.yml').matchAll(/\$\{AUDIT_TAG:-([^}]*)\}/g)].map((m) => m[1])).toEqual([version]);
  });

  it('is the only release tag the documentation names', () => {
    // compose/docker-compose.yml's smedrec/audit-server:dev is the Dockerfile's `dev` target, built
    // locally for development and never pushed: not a release tag, and not in these files.
    // Every file under docs/, subfolders included (docs/mutation/ holds the mutation records).
    const docs = ['README.md', 'manifests/README.md', 'dist-k8s/README.md', ...listFiles(path.join(repoRoot, 'docs')).map((f) => `docs/${f}`)];
    const named: string[] = [];
    for (const file of docs) {
      const text = read(file);
      for (const m of text.matchAll(/audit-server:(v?[0-9][\w.-]*)/g)) named.push(`${file}: ${m[1]}`);
      for (const m of text.matchAll(/imageTag: '([^']*)'/g)) named.push(`${file}: ${m[1]}`);
      for (const m of text.matchAll(/docker-build\.sh [^\n`]*(?:-t|--tag) (\S+)/g)) named.push(`${file}: ${m[1]}`);
    }
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((n) => !n.endsWith(`: ${version}`))).toEqual([]);
  });
});
