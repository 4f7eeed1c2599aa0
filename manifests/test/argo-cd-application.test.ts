import { Testing } from 'cdk8s';
import { ArgoCdApplication } from '../src/argo-cd-application';
import type { ArgoCdApplicationProps } from '../src/argo-cd-application';
import { validateManifests } from '../src/validate';

const base: ArgoCdApplicationProps = {
  name: 'smedrec-audit-prod',
  repoUrl: 'https://github.com/smedrec/smedrec-audit.git',
  path: 'dist-k8s/prod',
  destinationNamespace: 'smedrec-audit',
};

function synth(props: ArgoCdApplicationProps = base): Record<string, any>[] {
  const chart = Testing.chart();
  new ArgoCdApplication(chart, 'App', props);
  return Testing.synth(chart) as Record<string, any>[];
}

describe('ArgoCdApplication', () => {
  const [app] = synth();

  it('matches the snapshot', () => {
    expect(app).toMatchSnapshot();
  });

  it('syncs a directory source recursively with automated prune and self-heal, retrying with back-off', () => {
    expect(app!.spec).toEqual({
      project: 'default',
      source: { repoURL: base.repoUrl, targetRevision: 'main', path: 'dist-k8s/prod', directory: { recurse: true } },
      destination: { server: 'https://kubernetes.default.svc', namespace: 'smedrec-audit' },
      syncPolicy: {
        automated: { prune: true, selfHeal: true },
        syncOptions: ['PrunePropagationPolicy=foreground', 'PruneLast=true'],
        retry: { limit: 5, backoff: { duration: '10s', factor: 2, maxDuration: '5m' } },
      },
      ignoreDifferences: [{ group: 'apps', kind: 'Deployment', jsonPointers: ['/spec/replicas'] }],
    });
    expect(app!.metadata).toMatchObject({ namespace: 'argocd', finalizers: ['resources-finalizer.argocd.argoproj.io'] });
  });

  it('passes the structural Application schema', () => {
    expect(validateManifests([app!])).toEqual([]);
  });

  it('fails when the path leaves the repository', () => {
    expect(() => synth({ ...base, path: '../secrets' })).toThrow("invalid path: '../secrets' (expected a relative path inside the repository)");
  });

  it('fails when the name is not a dns label', () => {
    expect(() => synth({ ...base, name: 'Audit' })).toThrow("invalid name: 'Audit' (expected a dns label)");
  });
});
