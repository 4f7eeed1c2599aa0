import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { setSyncWave, SyncWaves } from './workload-defaults';

/** Props of {@link NginxIngress}. */
export interface NginxIngressProps {
  /** Name, namespace, labels and annotations. */
  readonly metadata: k8s.ObjectMeta;
  /** IngressClass. */
  readonly className: string;
  /** Public host name. */
  readonly host: string;
  /** Secret holding the TLS certificate of `host`. */
  readonly tlsSecretName: string;
  /** Paths routed to `backend`. */
  readonly paths: { readonly path: string; readonly pathType: 'Prefix' | 'Exact' }[];
  /** Where the paths go. */
  readonly backend: k8s.IngressBackend;
}

/**
 * An Ingress for one TLS host, synced last (after the pods it routes to). The annotations
 * configure ingress-nginx per location. Internal to the library.
 *
 * @see https://kubernetes.io/docs/concepts/services-networking/ingress/
 */
export class NginxIngress extends k8s.KubeIngress {
  constructor(scope: Construct, id: string, props: NginxIngressProps) {
    super(scope, id, {
      metadata: props.metadata,
      spec: {
        ingressClassName: props.className,
        tls: [{ hosts: [props.host], secretName: props.tlsSecretName }],
        rules: [{ host: props.host, http: { paths: props.paths.map((p) => ({ path: p.path, pathType: p.pathType, backend: props.backend })) } }],
      },
    });
    setSyncWave(this, SyncWaves.edge);
  }
}
