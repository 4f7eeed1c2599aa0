/**
 * Version of the audit server image these constructs deploy by default. It moves in lock-step
 * with the workspace packages (a test checks it against `server/package.json`), so a default
 * synth never points at a floating tag such as `latest`.
 */
export const AUDIT_SERVER_VERSION = '0.1.0';

/** Value of the `app.kubernetes.io/part-of` label on every object of the stack. */
export const PART_OF = 'smedrec-audit';
