// Whether a container image reference is pinned, shared by the constructs (which refuse an
// unpinned image prop) and the `no-latest-tag` policy rule (which checks every synthesized pod),
// so both give the same answer. Not re-exported from index.ts.

/** A digest pin: `@sha256:` and 64 hex digits (OCI image spec, "Digests"). */
const SHA256_DIGEST = /@sha256:[0-9a-f]{64}$/;
/** A version number: digits, a dot, digits (`1.2.3`, `v0.14.0`, `0.8.6-pg17`, `7.2.7-alpine`). */
const VERSION_NUMBER = /[0-9]+\.[0-9]+/;

/**
 * Why `image` is not pinned, or `undefined` when it is. A reference is pinned by an `@sha256`
 * digest, or by a tag containing a version number. Every other tag is rolling: `latest`,
 * `stable`, `lts`, `alpine`, a bare major such as `17`, or `pg17` (which moves with every
 * pgvector and PostgreSQL minor release), and a missing tag means `latest`.
 *
 * @see https://kubernetes.io/docs/concepts/containers/images/#image-names
 */
export function unpinnedImageReason(image: string): string | undefined {
  if (image.includes('@')) return SHA256_DIGEST.test(image) ? undefined : 'digest is not sha256 with 64 hex digits';
  // The tag follows the last ':' after the last '/': a registry port (`host:5000/app`) is no tag.
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const colon = lastSegment.lastIndexOf(':');
  const tag = colon < 0 ? '' : lastSegment.slice(colon + 1);
  if (tag === '') return 'tag missing';
  if (!VERSION_NUMBER.test(tag)) return `tag ${tag} has no version number`;
  return undefined;
}

/** What a pinned reference looks like, for error messages. */
export const PINNED_IMAGE_HINT = 'a tag with a version number such as 1.2.3, or an @sha256 digest';
