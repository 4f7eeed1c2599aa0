/**
 * Requests and limits of one container, as Kubernetes quantity strings. Every container the
 * constructs create has all six, including ephemeral storage, so the scheduler can place pods
 * and the kubelet evicts a runaway `/tmp` before it fills the node.
 *
 * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/
 */
export interface ContainerResources {
  /** CPU request, e.g. `250m`. */
  readonly cpuRequest: string;
  /** CPU limit, e.g. `1`. */
  readonly cpuLimit: string;
  /** Memory request, e.g. `256Mi`. */
  readonly memoryRequest: string;
  /** Memory limit, e.g. `512Mi`. */
  readonly memoryLimit: string;
  /** Ephemeral storage request (container writable layer, logs and emptyDir), e.g. `64Mi`. */
  readonly ephemeralStorageRequest: string;
  /** Ephemeral storage limit, e.g. `512Mi`. */
  readonly ephemeralStorageLimit: string;
}
