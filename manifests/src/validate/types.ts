/** A manifest as plain JSON, the way it is written to YAML. */
export type KubeObject = Record<string, unknown>;

/** One broken rule: which object, which rule, and what is wrong. */
export interface Violation {
  /** Rule name, e.g. `pss-restricted` (see {@link POLICY_RULES}). */
  readonly rule: string;
  /** The object, as `Kind namespace/name` (or `Kind name` when cluster-scoped). */
  readonly object: string;
  /** What is wrong, naming the field. */
  readonly message: string;
}

/** Every rule the validator applies, with a one-line description. */
export const POLICY_RULES = {
  schema: 'the object matches the Kubernetes OpenAPI schema (or our structural schema for CRDs)',
  namespace: 'namespaced objects name their namespace; cluster-scoped objects do not',
  'unique-names': 'no two objects share kind, namespace and name',
  'pss-restricted': 'pods satisfy Pod Security Standards restricted',
  'read-only-root-filesystem': 'every container has a read-only root filesystem',
  'no-token-automount': 'pods do not mount a service account token',
  resources: 'every container requests and limits cpu, memory and ephemeral-storage',
  probes: 'long-running containers have liveness and readiness probes with different checks',
  'no-latest-tag': 'images are pinned by a tag with a version number, or by digest (no rolling tags such as latest or pg17)',
  'no-literal-secrets': 'no secret values in manifests: Secrets, env values, ConfigMaps or URLs',
  'pdb-per-workload': 'every Deployment and StatefulSet is covered by a PodDisruptionBudget',
  'network-policy-per-pod': 'every pod is selected by a NetworkPolicy of its own',
  'network-policy-open': 'no NetworkPolicy rule without peers (it would admit every source or destination)',
  'selectors-match': 'selectors, service ports and references point at objects that exist',
  'hpa-min-replicas': 'an HPA keeps at least 2 replicas',
  'hpa-no-replicas': 'a workload targeted by an HPA does not set spec.replicas',
} as const;

/** Name of a policy rule. */
export type PolicyRuleName = keyof typeof POLICY_RULES;

/** Identifies an object in messages. */
export function describeObject(obj: KubeObject): string {
  const meta = (obj.metadata ?? {}) as { name?: string; namespace?: string };
  const kind = typeof obj.kind === 'string' ? obj.kind : '<no kind>';
  const name = meta.name ?? '<no name>';
  return meta.namespace ? `${kind} ${meta.namespace}/${name}` : `${kind} ${name}`;
}
