/**
 * The TypeScript example in manifests/README.md compiles and runs against this package, so the
 * documentation cannot drift from the API.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { listFiles } from '../src/environments';

const manifestsDir = path.resolve(__dirname, '..');
const readme = fs.readFileSync(path.join(manifestsDir, 'README.md'), 'utf8');

describe('README example', () => {
  it('synthesizes a validated environment', () => {
    const example = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toContain("from '@smedrec/audit-manifests'");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-example-'));
    try {
      // The published package name resolves to this workspace's sources; cdk8s to its install.
      const source = example!
        .replace("from '@smedrec/audit-manifests'", `from ${JSON.stringify(path.join(manifestsDir, 'src', 'index'))}`)
        .replace("from 'cdk8s'", `from ${JSON.stringify(require.resolve('cdk8s'))}`);
      fs.writeFileSync(path.join(dir, 'example.ts'), source);
      // tsx's loader by absolute URL, so the example runs in its own directory like a consumer's app.
      const tsx = pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'loader.mjs')).href;
      const r = spawnSync(process.execPath, ['--import', tsx, path.join(dir, 'example.ts')], {
        cwd: dir,
        env: { ...process.env, CDK8S_OUTDIR: '' },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const out = path.join(dir, 'dist-k8s', 'staging');
      expect(listFiles(out)).toEqual(['audit.k8s.yaml']);
      const yaml = fs.readFileSync(path.join(out, 'audit.k8s.yaml'), 'utf8');
      expect(yaml).toContain('namespace: smedrec-audit-staging');
      expect(yaml).toContain('host: audit.staging.example.org');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
