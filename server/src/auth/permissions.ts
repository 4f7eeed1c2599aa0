/**
 * Roles and what they may do: the one table that maps roles to permissions. Every tRPC procedure
 * and REST route declares one permission (or that it is public); a caller is allowed when the
 * role of its credential (API key, session membership or OIDC claim) holds that permission. The
 * README renders this table (`npm run docs:config`; a test catches drift).
 */

/** Every role, most powerful first. */
export const ROLES = ['owner', 'admin', 'auditor', 'compliance_officer', 'developer', 'member', 'producer'] as const;
/** A role of an organization member or an API key. */
export type Role = (typeof ROLES)[number];

/**
 * Roles an API key may be created with. `owner` and `member` describe people: an organization's
 * owner is a person who signs in, and a key of a plain member would be a credential without a job.
 */
export const API_KEY_ROLES = ['admin', 'auditor', 'compliance_officer', 'developer', 'producer'] as const satisfies readonly Role[];
/** A role an API key can hold. */
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

/** What each role is for (the README shows it). */
export const ROLE_DESCRIPTIONS: Record<Role, string> = {
  owner: 'the organization’s accountable person: everything, including granting and removing owners',
  admin: 'runs the organization: everything except granting or removing the owner role',
  auditor: 'reads and exports the log and its proofs, patients and principals as pseudonyms (internal or external audit)',
  compliance_officer: 'reads and exports the log, sees who is a member, handles patient rights and legal holds (privacy office)',
  developer: 'integrates producers: ledger data, self-audit findings, producer keys; never event contents',
  member: 'signed-in person without a function yet: verification data only',
  producer: 'a system that appends events and fetches proofs of them; never reads others’ events',
};

/** Permissions (`resource:action`) and what they allow. */
export const PERMISSIONS = {
  'audit.events:create': 'append events (single and bulk)',
  'audit.events:read': 'query, count and fetch events of the organization (holds PHI)',
  'audit.events:export': 'export bundles and ledger leaves with committed values (holds PHI)',
  'audit.ledger:read': 'checkpoints, inclusion and consistency proofs, signing keys',
  'audit.alerts:read': 'findings of the continuous self-audit (ledger integrity)',
  'audit.reports:create': 'generate compliance reports: patient access, user activity, accounting of disclosures, integrity (hold PHI)',
  'audit.reports:configure': 'set which events the accounting of disclosures lists (the disclosure rule)',
  'audit.securityAlerts:read': 'security alerts (who failed to sign in, read too fast, exported in bulk …), their counts and the detector settings',
  'audit.securityAlerts:manage': 'acknowledge, resolve and dismiss security alerts; change detector thresholds and time zone',
  'audit.analytics:read': 'behaviour analytics: similar events, principal baselines, anomalies (reveals event contents)',
  'audit.analytics:manage': 'set the organization’s anomaly threshold',
  'admin.producerKeys:read': 'list producer public keys',
  'admin.producerKeys:manage': 'register producer public keys',
  'admin.apiKeys:read': 'list API keys (never their secrets)',
  'admin.apiKeys:manage': 'create and revoke API keys',
  'admin.members:read': 'list members of the organization and their roles',
  'admin.members:manage': 'add and remove members, change roles',
  'admin.destinations:read': 'list SIEM and webhook destinations, their delivery state and dead letters (never their secrets)',
  'admin.destinations:manage': 'create, change, rotate the secret of, delete destinations; replay dead letters',
  'account.self:read': 'who am I: the caller’s own identity, organization and role',
  'privacy.subjects:erase': 'erase a data subject’s personal data from every event naming it; list erasure requests',
  'privacy.subjects:export': 'export every event about a data subject with proofs (subject access, portability)',
  'privacy.pseudonyms:resolve': 'see patient and principal ids as they are (others see pseudonyms) and resolve a pseudonym (audited)',
  'privacy.holds:read': 'list legal holds',
  'privacy.holds:manage': 'place and release legal holds',
  'privacy.retention:read': 'read retention policies and the archives written',
  'privacy.retention:manage': 'set retention policies (archive and erase after so many days)',
} as const;
/** A permission checked by procedures and REST routes. */
export type Permission = keyof typeof PERMISSIONS;
/** Every permission, in table order. */
export const PERMISSION_NAMES = Object.keys(PERMISSIONS) as Permission[];

const ALL = PERMISSION_NAMES;
const READ_LOG: Permission[] = ['audit.events:read', 'audit.events:export', 'audit.analytics:read', 'audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read'];
/** What the privacy office does (docs/privacy.md): patient rights, holds, and identifiers in the clear. */
const PRIVACY_OFFICE: Permission[] = ['privacy.subjects:erase', 'privacy.subjects:export', 'privacy.pseudonyms:resolve', 'privacy.holds:read', 'privacy.holds:manage', 'privacy.retention:read', 'privacy.retention:manage'];

/**
 * The table. API keys that predate the seven roles were `admin`, `producer` or `auditor` and keep
 * exactly what they could do (a test compares every operation with the former grants).
 */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  owner: ALL,
  admin: ALL,
  auditor: [...READ_LOG, 'audit.reports:create', 'audit.securityAlerts:read', 'account.self:read', 'privacy.holds:read', 'privacy.retention:read'],
  compliance_officer: [...READ_LOG, 'audit.reports:create', 'audit.reports:configure', 'audit.securityAlerts:read', 'audit.securityAlerts:manage', 'admin.members:read', 'account.self:read', ...PRIVACY_OFFICE],
  developer: ['audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read', 'admin.producerKeys:manage', 'admin.apiKeys:read', 'account.self:read'],
  member: ['audit.ledger:read', 'account.self:read'],
  producer: ['audit.events:create', 'audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read', 'account.self:read'],
};

const GRANTS = new Map<Role, ReadonlySet<Permission>>(ROLES.map((r) => [r, new Set(ROLE_PERMISSIONS[r])]));

/** Whether `role` holds `permission`. */
export function can(role: Role, permission: Permission): boolean {
  return GRANTS.get(role)?.has(permission) ?? false;
}

/** Whether `value` names a role. */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** What a route or procedure needs: a permission, or nothing (`public`: health, sign-in). */
export type Access = Permission | 'public';

/** The message of a 403 (names the role and the missing permission, nothing else). */
export function deniedMessage(role: Role, permission: Permission): string {
  return `role ${role} lacks ${permission}`;
}
