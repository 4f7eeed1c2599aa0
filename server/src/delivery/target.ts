/**
 * What a destination's url, secret and ca must be for its kind (docs/delivery.md), as field
 * issues: the operations' input schemas check them while parsing, and the service checks them
 * again (for an update the kind is only known from the stored destination), so every refusal is a
 * 400 that names the field — never a bare message, which the API contract (README "Errors") rules out.
 */
import { X509Certificate } from 'node:crypto';
import type { FieldIssue } from '../errors';
import { unsafeTextReason } from '../util/safe-input';
import type { DestinationKind } from './service';

/** Why `url` cannot be a destination of `kind`, or null. */
export function urlProblem(kind: DestinationKind, url: string): string | null {
  const unsafe = unsafeTextReason(url);
  if (unsafe) return unsafe;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  // RFC 5425 §4.1: syslog travels over TLS only; the webhook and HEC senders speak HTTPS only.
  if (kind === 'syslog') return u.protocol === 'syslog+tls:' && u.hostname !== '' ? null : 'a syslog destination url is syslog+tls://host:port (RFC 5425: syslog over TLS)';
  return u.protocol === 'https:' ? null : `a ${kind} destination url must be https`;
}

/** Why `secret` cannot be the secret of a destination of `kind`, or null (undefined: none given). */
export function secretProblem(kind: DestinationKind, secret: string | undefined): string | null {
  if (secret === undefined || secret === '') {
    if (kind === 'webhook') return 'a webhook destination needs secret (the HMAC signing secret)';
    if (kind === 'splunk_hec') return 'a splunk_hec destination needs secret (the HEC token)';
    return null;
  }
  // The HEC token travels in `Authorization: Splunk <token>`: an HTTP field value (RFC 9110 §5.5)
  // that a control character or a space would break at send time, failing every batch.
  if (kind === 'splunk_hec' && !/^[\x21-\x7e]+$/.test(secret)) return 'a HEC token is printable ASCII without spaces';
  return null;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Why `ca` is not a list of PEM certificates, or null. Node's TLS ignores a block it cannot read,
 * so a broken one would otherwise surface only as every delivery failing verification.
 */
export function caProblem(ca: string): string | null {
  const blocks = ca.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return 'PEM certificates (-----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----)';
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      return `certificate ${i + 1} is not a readable X.509 certificate`;
    }
  }
  return null;
}

/** The issues of a destination target, each at its field's path. */
export function targetIssues(kind: DestinationKind, target: { url?: string | undefined; secret?: string | undefined; checkSecret: boolean }): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const url = target.url === undefined ? null : urlProblem(kind, target.url);
  if (url) issues.push({ path: 'url', message: url });
  const secret = target.checkSecret ? secretProblem(kind, target.secret) : null;
  if (secret) issues.push({ path: 'secret', message: secret });
  return issues;
}
