import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { PART_OF } from './version';
import { setSyncWave, SyncWaves } from './workload-defaults';

/** Props of {@link RestrictedNamespace}. */
export interface RestrictedNamespaceProps {
  /** Name of the namespace. */
  readonly name: string;
}

/**
 * A Namespace in which Pod Security Admission enforces the `restricted` profile on every pod
 * (and audits and warns with it), synced before anything that lives in it. Internal to the
 * library (`AuditServerProps.createNamespace`).
 *
 * @see https://kubernetes.io/docs/concepts/security/pod-security-admission/#pod-security-admission-labels-for-namespaces
 */
export class RestrictedNamespace extends k8s.KubeNamespace {
  constructor(scope: Construct, id: string, props: RestrictedNamespaceProps) {
    super(scope, id, {
      metadata: {
        name: props.name,
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
          'app.kubernetes.io/part-of': PART_OF,
        },
      },
    });
    setSyncWave(this, SyncWaves.namespace);
  }
}
