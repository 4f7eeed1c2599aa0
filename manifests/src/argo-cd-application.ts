import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { PART_OF } from './version';

/** Props of {@link ArgoCdApplication}. */
export interface ArgoCdApplicationProps {
  /**
   * Name of the Application.
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/names/
   */
  readonly name: string;
  /** Git repository holding the synthesized manifests. */
  readonly repoUrl: string;
  /** Directory inside the repository (for example `dist-k8s/prod`). */
  readonly path: string;
  /**
   * Namespace the manifests are applied to (objects without a namespace land here).
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly destinationNamespace: string;
  /**
   * Git revision to track.
   * @default 'main'
   */
  readonly targetRevision?: string;
  /**
   * Namespace Argo CD runs in (Applications live there).
   * @default 'argocd'
   * @see https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
   */
  readonly namespace?: string;
  /**
   * Argo CD project.
   * @default 'default'
   */
  readonly project?: string;
  /**
   * Destination cluster API server.
   * @default 'https://kubernetes.default.svc'
   */
  readonly destinationServer?: string;
}

/**
 * An Argo CD `Application` that syncs a directory of plain manifests: directory source with
 * `recurse`, automated sync with prune and self-heal, retries with back-off.
 *
 * @see https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/#applications
 */
export class ArgoCdApplication extends Construct {
  /** The Application object. */
  public readonly resource: ApiObject;

  constructor(scope: Construct, id: string, props: ArgoCdApplicationProps) {
    super(scope, id);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(props.name)) {
      throw new Error(`invalid name: '${props.name}' (expected a dns label)`);
    }
    if (props.path.startsWith('/') || props.path.includes('..')) {
      throw new Error(`invalid path: '${props.path}' (expected a relative path inside the repository)`);
    }
    this.resource = new ApiObject(this, 'Resource', {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: {
        name: props.name,
        namespace: props.namespace ?? 'argocd',
        labels: { 'app.kubernetes.io/part-of': PART_OF, 'app.kubernetes.io/managed-by': 'cdk8s' },
        // Deleting the Application deletes what it deployed (cascading), not only the CR.
        finalizers: ['resources-finalizer.argocd.argoproj.io'],
      },
      spec: {
        project: props.project ?? 'default',
        source: {
          repoURL: props.repoUrl,
          targetRevision: props.targetRevision ?? 'main',
          path: props.path,
          // Plain YAML: the directory source reads every .yaml/.yml/.json file, so no
          // kustomization.yaml may sit in the path (the synthesized folders name theirs
          // `Kustomization`, which it skips).
          directory: { recurse: true },
        },
        destination: { server: props.destinationServer ?? 'https://kubernetes.default.svc', namespace: props.destinationNamespace },
        syncPolicy: {
          automated: { prune: true, selfHeal: true },
          syncOptions: ['PrunePropagationPolicy=foreground', 'PruneLast=true'],
          retry: { limit: 5, backoff: { duration: '10s', factor: 2, maxDuration: '5m' } },
        },
        // An HPA owns the api's replica count. The api Deployment omits `replicas` already; this
        // also keeps a manual `kubectl scale` (scripts/k8s-deploy.sh scale) from showing as drift.
        ignoreDifferences: [{ group: 'apps', kind: 'Deployment', jsonPointers: ['/spec/replicas'] }],
      },
    });
  }
}
