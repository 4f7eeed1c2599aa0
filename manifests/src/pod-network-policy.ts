import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { setSyncWave, SyncWaves } from './workload-defaults';

/** Props of {@link PodNetworkPolicy}. */
export interface PodNetworkPolicyProps {
  /** Name, namespace and labels. */
  readonly metadata: k8s.ObjectMeta;
  /**
   * Labels of the pods the policy applies to.
   * @default - every pod of the namespace
   */
  readonly podSelector?: { [key: string]: string };
  /**
   * Allowed inbound traffic.
   * @default - none allowed
   */
  readonly ingress?: k8s.NetworkPolicyIngressRule[];
  /**
   * Allowed outbound traffic.
   * @default - none allowed
   */
  readonly egress?: k8s.NetworkPolicyEgressRule[];
}

/**
 * A NetworkPolicy that governs both directions of the selected pods: whatever `ingress` and
 * `egress` do not allow is dropped. It is synced with the configuration, before the pods start.
 * Internal to the library.
 *
 * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/
 */
export class PodNetworkPolicy extends k8s.KubeNetworkPolicy {
  constructor(scope: Construct, id: string, props: PodNetworkPolicyProps) {
    super(scope, id, {
      metadata: props.metadata,
      spec: {
        podSelector: props.podSelector ? { matchLabels: { ...props.podSelector } } : {},
        policyTypes: ['Ingress', 'Egress'],
        ingress: props.ingress,
        egress: props.egress,
      },
    });
    setSyncWave(this, SyncWaves.config);
  }
}
