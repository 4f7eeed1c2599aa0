/**
 * One end of an allowed network path, used to build NetworkPolicy rules. Constructs expose the
 * peers they serve (`RedisCache.peer`, `PgVectorDb.peer`, `ObservabilityStack.otlpPeer`) so that a
 * client construct can open exactly that path and nothing else.
 *
 * Selection follows NetworkPolicy semantics: `podLabels` and `namespace` combine into one peer
 * (pods with these labels in that namespace); `cidr` is used alone.
 *
 * @see https://kubernetes.io/docs/concepts/services-networking/network-policies/#behavior-of-to-and-from-selectors
 */
export interface NetworkPeer {
  /**
   * Labels of the peer pods.
   * @default - any pod in the selected namespace (only meaningful together with `namespace`)
   */
  readonly podLabels?: { [key: string]: string };
  /**
   * Namespace of the peer pods, matched on the immutable `kubernetes.io/metadata.name` label.
   * @default - the namespace of the policy
   */
  readonly namespace?: string;
  /**
   * IP block of a peer outside the cluster (for example a managed database). Overrides
   * `podLabels`/`namespace`.
   * @default - pods are selected by labels
   */
  readonly cidr?: string;
  /** TCP port the traffic goes to (egress) or arrives on (ingress). */
  readonly port: number;
}
