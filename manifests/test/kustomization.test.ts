/* eslint-disable @typescript-eslint/no-unsafe-return --
   tests walk manifest YAML, whose shape the assertions themselves check */
/**
 * Each environment folder of dist-k8s/ carries a `Kustomization` for overlay users. Checked with
 * the real tool: `kubectl kustomize` builds exactly the folder's objects (the Namespace first, so
 * `kubectl apply -k` works on an empty cluster), an overlay can patch it, and `kubectl apply -f
 * --recursive` (what scripts/k8s-deploy.sh and the docs run) still reads only the manifests.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Yaml } from 'cdk8s';
import { FOLDER_KUSTOMIZATION, listFiles } from '../src/environments';

const dist = path.resolve(__dirname, '..', '..', 'dist-k8s');
const folders = ['dev', 'prod', 'monitoring/prod'];

function kubectl(args: string[], cwd = dist): string {
  const r = spawnSync('kubectl', args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, KUBECONFIG: '/dev/null' } });
  if (r.error) throw new Error(`kubectl is required for this test (Debian: kubernetes-client; .ci/run installs it): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kustomization-'));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));
let parsed = 0;
/** Documents of a YAML stream (cdk8s reads YAML from files only). */
const docs = (yaml: string): any[] => {
  const file = path.join(scratch, `${parsed++}.yaml`);
  fs.writeFileSync(file, yaml);
  return Yaml.load(file).filter((d: unknown) => d !== null);
};
const id = (o: any) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
/** The folder's objects as the .yaml files hold them, in file order. */
const folderObjects = (dir: string): any[] =>
  listFiles(path.join(dist, dir)).filter((f) => f.endsWith('.yaml')).flatMap((f) => docs(fs.readFileSync(path.join(dist, dir, f), 'utf8')));

describe('Kustomization of each environment folder', () => {
  it.each(folders)('%s: kubectl kustomize builds exactly the objects of the folder', (dir) => {
    expect(listFiles(path.join(dist, dir))).toContain(FOLDER_KUSTOMIZATION);
    const built = docs(kubectl(['kustomize', dir]));
    const files = folderObjects(dir);
    const byId = (list: any[]) => Object.fromEntries(list.map((o) => [id(o), o]));
    expect(built.map(id).sort()).toEqual(files.map(id).sort());
    expect(byId(built)).toEqual(byId(files));
    if (dir !== 'monitoring/prod') expect(built[0].kind).toBe('Namespace');
  });

  it.each(folders)('%s: kubectl apply -f --recursive skips it and reads every manifest', (dir) => {
    const names = kubectl(['label', '--local', '--recursive', '-f', dir, '-o', 'name', 'smedrec.test/read=true']).trim().split('\n');
    expect(names).toHaveLength(folderObjects(dir).length);
  });

  it('an overlay over dist-k8s/prod patches it', () => {
    const overlay = fs.mkdtempSync(path.join(os.tmpdir(), 'overlay-'));
    try {
      fs.writeFileSync(
        path.join(overlay, 'kustomization.yaml'),
        [
          'apiVersion: kustomize.config.k8s.io/v1beta1',
          'kind: Kustomization',
          'resources:',
          `  - ${path.relative(overlay, path.join(dist, 'prod'))}`,
          'images:',
          '  - name: ghcr.io/smedrec/audit-server',
          '    newName: registry.example.org/audit-server',
          '    newTag: 9.9.9',
          '',
        ].join('\n'),
      );
      const built = docs(kubectl(['kustomize', '.'], overlay));
      const images = built.flatMap((o) => [...(o.spec?.template?.spec?.containers ?? []), ...(o.spec?.template?.spec?.initContainers ?? [])]).map((c: any) => c.image);
      expect(images).toContain('registry.example.org/audit-server:9.9.9');
      expect(images.some((i: string) => i.startsWith('ghcr.io/smedrec/audit-server'))).toBe(false);
    } finally {
      fs.rmSync(overlay, { recursive: true, force: true });
    }
  });
});
