/**
 * A key of a Kubernetes Secret that is referenced, never inlined: the constructs only ever emit
 * `valueFrom.secretKeyRef`, so manifests can be committed to Git without leaking credentials.
 *
 * @see https://kubernetes.io/docs/concepts/configuration/secret/#using-secrets-as-environment-variables
 */
export interface SecretKeyReference {
  /** Name of the Secret, in the namespace of the pod that reads it. */
  readonly secretName: string;
  /** Key inside the Secret's `data`. */
  readonly key: string;
}
