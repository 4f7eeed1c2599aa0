// Internal helpers shared by the constructs: the hardened pod shape, NetworkPolicy building
// blocks and Argo CD annotations. Not re-exported from index.ts: the public contract is the
// constructs and their props, these are implementation details.
import { createHash } from 'node:crypto';
import type { ApiObject } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import type { ContainerResources } from './container-resources';
import { PINNED_IMAGE_HINT, unpinnedImageReason } from './image-reference';
import type { NetworkPeer } from './network-peer';
import type { SecretKeyReference } from './secret-reference';

/** uid and gid every container runs as (the server image's `node` user is 1001). */
export const RUN_AS_ID = 1001;

/**
 * Pod-level security context for the Pod Security Standards `restricted` profile.
 * @see https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
 */
export function restrictedPodSecurityContext(): k8s.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_ID,
    runAsGroup: RUN_AS_ID,
    fsGroup: RUN_AS_ID,
    // Only chown volumes whose root does not already match: large PVCs otherwise slow every start.
    fsGroupChangePolicy: 'OnRootMismatch',
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Container-level security context: no privilege escalation, all capabilities dropped,
 * read-only root filesystem (writable paths are explicit emptyDir/PVC mounts).
 */
export function restrictedContainerSecurityContext(): k8s.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    runAsNonRoot: true,
    runAsUser: RUN_AS_ID,
    runAsGroup: RUN_AS_ID,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/** A pod spec without the fields {@link hardenedPodSpec} owns. */
export type UnhardenedPodSpec = Omit<k8s.PodSpec, 'automountServiceAccountToken' | 'enableServiceLinks' | 'securityContext'>;

/**
 * A pod spec with what every pod of the stack shares: no service account token, no service
 * environment variables (they leak every Service of the namespace into the process), and the
 * restricted pod security context. `spec` adds the containers, volumes and the rest; it cannot
 * replace the hardening (the type leaves those fields out, and they are applied after `spec` for
 * a caller whose spec is typed wider).
 * @see https://kubernetes.io/docs/tasks/configure-pod-container/configure-service-account/#opt-out-of-api-credential-automounting
 */
export function hardenedPodSpec(spec: UnhardenedPodSpec): k8s.PodSpec {
  return { ...spec, automountServiceAccountToken: false, enableServiceLinks: false, securityContext: restrictedPodSecurityContext() };
}

/**
 * A container with what every container of the stack shares: images pulled only when absent
 * (tags are pinned, see `checkImage`; a container may ask for another policy) and the restricted
 * container security context, which it cannot replace (as in {@link hardenedPodSpec}).
 */
export function hardenedContainer(container: Omit<k8s.Container, 'securityContext'>): k8s.Container {
  return { imagePullPolicy: 'IfNotPresent', ...container, securityContext: restrictedContainerSecurityContext() };
}

/** Metadata of a namespaced object. */
export function objectMeta(name: string, namespace: string, labels: Record<string, string>): k8s.ObjectMeta {
  return { name, namespace, labels };
}

/** Converts typed resources into the Kubernetes shape. */
export function toResourceRequirements(r: ContainerResources): k8s.ResourceRequirements {
  return {
    requests: {
      cpu: k8s.Quantity.fromString(r.cpuRequest),
      memory: k8s.Quantity.fromString(r.memoryRequest),
      'ephemeral-storage': k8s.Quantity.fromString(r.ephemeralStorageRequest),
    },
    limits: {
      cpu: k8s.Quantity.fromString(r.cpuLimit),
      memory: k8s.Quantity.fromString(r.memoryLimit),
      'ephemeral-storage': k8s.Quantity.fromString(r.ephemeralStorageLimit),
    },
  };
}

/** An emptyDir volume with a size limit (counts against ephemeral storage). */
export function emptyDirVolume(name: string, sizeLimit: string, medium?: string): k8s.Volume {
  return { name, emptyDir: { sizeLimit: k8s.Quantity.fromString(sizeLimit), ...(medium ? { medium } : {}) } };
}

/** `env` entry that reads a Secret key; `optional` lets the pod start when the key is absent. */
export function secretEnv(name: string, ref: SecretKeyReference, optional = false): k8s.EnvVar {
  return {
    name,
    valueFrom: { secretKeyRef: { name: ref.secretName, key: ref.key, ...(optional ? { optional: true } : {}) } },
  };
}

/** Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/). */
export function recommendedLabels(
  name: string,
  instance: string,
  component: string,
  partOf: string,
  version?: string,
): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': partOf,
    ...(version ? { 'app.kubernetes.io/version': version } : {}),
    'app.kubernetes.io/managed-by': 'cdk8s',
  };
}

/**
 * The immutable subset of {@link recommendedLabels} used in selectors: a Deployment's selector
 * cannot change after creation, so it must not contain the version.
 */
export function selectorLabels(name: string, instance: string, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': name,
    'app.kubernetes.io/instance': instance,
    'app.kubernetes.io/component': component,
  };
}

/** Translates a {@link NetworkPeer} into a NetworkPolicy peer. */
export function toPolicyPeer(peer: NetworkPeer): k8s.NetworkPolicyPeer {
  if (peer.cidr !== undefined) return { ipBlock: { cidr: peer.cidr } };
  return {
    ...(peer.podLabels !== undefined ? { podSelector: { matchLabels: { ...peer.podLabels } } } : { podSelector: {} }),
    ...(peer.namespace !== undefined
      ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': peer.namespace } } }
      : {}),
  };
}

/** Egress rule towards one peer on its TCP port. */
export function egressTo(peer: NetworkPeer): k8s.NetworkPolicyEgressRule {
  return { to: [toPolicyPeer(peer)], ports: [{ protocol: 'TCP', port: k8s.IntOrString.fromNumber(peer.port) }] };
}

/**
 * Ingress rule from peers on one TCP port, or no rule at all when there are no peers: a rule
 * with an empty `from` admits every source (NetworkPolicy spec, NetworkPolicyIngressRule.from).
 */
export function ingressFrom(peers: NetworkPeer[], port: number): k8s.NetworkPolicyIngressRule[] {
  if (peers.length === 0) return [];
  return [{ from: peers.map(toPolicyPeer), ports: [{ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) }] }];
}

/**
 * Egress to cluster DNS (CoreDNS/kube-dns in kube-system), UDP and TCP 53: TCP is needed for
 * responses larger than 512 bytes (RFC 7766 §5).
 */
export function dnsEgressRule(): k8s.NetworkPolicyEgressRule {
  return {
    to: [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      },
    ],
    ports: [
      { protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) },
      { protocol: 'TCP', port: k8s.IntOrString.fromNumber(53) },
    ],
  };
}

/** Argo CD annotation that orders a resource within a sync (lower waves first). */
export const SYNC_WAVE_ANNOTATION = 'argocd.argoproj.io/sync-wave';

/**
 * Sync waves used across the constructs, so that an Argo CD sync of an empty cluster creates
 * the namespace and configuration first, then the data tier, then the application.
 * @see https://argo-cd.readthedocs.io/en/stable/user-guide/sync-waves/
 */
export const SyncWaves = {
  namespace: -3,
  config: -2,
  data: -1,
  migrations: 0,
  app: 1,
  edge: 2,
} as const;

/** Adds the Argo CD sync-wave annotation to an object. */
export function setSyncWave(obj: ApiObject, wave: number): void {
  obj.metadata.addAnnotation(SYNC_WAVE_ANNOTATION, String(wave));
}

/** Throws when a count or size prop is not an integer of at least `min`. */
export function checkInteger(prop: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) throw new Error(`invalid ${prop}: ${value} (expected an integer >= ${min})`);
}

/** Throws when a resource quantity prop is not a Kubernetes quantity. */
export function checkQuantity(prop: string, value: string): void {
  if (!/^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$/.test(value)) {
    throw new Error(`invalid ${prop}: '${value}' (expected a kubernetes quantity such as 256Mi or 500m)`);
  }
}

/**
 * Throws when an image reference is not pinned: it needs a tag with a version number or a
 * digest (see {@link unpinnedImageReason}); rolling tags such as `latest` or `pg17` move.
 */
export function checkImage(prop: string, image: string): void {
  const reason = unpinnedImageReason(image);
  if (reason !== undefined) {
    throw new Error(`invalid ${prop}: '${image}' (${reason}; expected ${PINNED_IMAGE_HINT})`);
  }
}

/**
 * Short SHA-256 of configuration text, put into a pod-template annotation so that a change of a
 * ConfigMap the process reads only at start rolls the pods.
 */
export function contentHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 16);
}

/** Throws when a namespace or object name is not an RFC 1123 DNS label (max 63 characters). */
export function checkDnsLabel(prop: string, value: string): void {
  if (value.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(value)) {
    throw new Error(`invalid ${prop}: '${value}' (expected a dns label: lower-case letters, digits and -, at most 63)`);
  }
}

/**
 * PodDisruptionBudget spec allowing one voluntary eviction at a time. Pods that run but are not
 * ready may always be evicted, so a crash-looping replica never blocks a node drain.
 * @see https://kubernetes.io/docs/tasks/run-application/configure-pdb/#unhealthy-pod-eviction-policy
 */
export function disruptionBudgetSpec(selector: { [key: string]: string }): k8s.PodDisruptionBudgetSpec {
  return {
    maxUnavailable: k8s.IntOrString.fromNumber(1),
    unhealthyPodEvictionPolicy: 'AlwaysAllow',
    selector: { matchLabels: { ...selector } },
  };
}
