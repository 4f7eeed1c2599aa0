/**
 * The security contexts of the Pod Security Standards `restricted` profile as every pod and
 * container of the library synthesizes them, written out by hand so that the tests compare with
 * the expected values, not with what the code under test computes.
 *
 * @see https://kubernetes.io/docs/concepts/security/pod-security-standards/#restricted
 */

/** Pod level: uid, gid and fsGroup 1001 (the image's `node` user), seccomp RuntimeDefault. */
export const RESTRICTED_POD_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: 1001,
  runAsGroup: 1001,
  fsGroup: 1001,
  fsGroupChangePolicy: 'OnRootMismatch',
  seccompProfile: { type: 'RuntimeDefault' },
};

/** Container level: no escalation or privilege, read-only root, every capability dropped. */
export const RESTRICTED_CONTAINER_CONTEXT = {
  allowPrivilegeEscalation: false,
  privileged: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  runAsUser: 1001,
  runAsGroup: 1001,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};
