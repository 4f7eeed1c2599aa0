/**
 * Roles and what they may do. Full identity and RBAC come later; API keys carry one role each,
 * and every endpoint except /health, /ready and /metrics requires one.
 */
export const ROLES = ['admin', 'producer', 'auditor'] as const;
/** A role an API key can hold. */
export type Role = (typeof ROLES)[number];

/** Permissions checked by procedures and REST routes. */
export type Permission =
  | 'audit.events:create'
  | 'audit.events:read'
  | 'audit.ledger:read'
  | 'admin.apiKeys:manage';

const GRANTS: Record<Role, ReadonlySet<Permission>> = {
  admin: new Set<Permission>(['audit.events:create', 'audit.events:read', 'audit.ledger:read', 'admin.apiKeys:manage']),
  // Producers write and may fetch proofs of what they wrote; they cannot read others' events.
  producer: new Set<Permission>(['audit.events:create', 'audit.ledger:read']),
  auditor: new Set<Permission>(['audit.events:read', 'audit.ledger:read']),
};

/** Whether `role` holds `permission`. */
export function can(role: Role, permission: Permission): boolean {
  return GRANTS[role].has(permission);
}
