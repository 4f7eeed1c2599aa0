/**
 * The permission checks every route and procedure relies on, in process: `can` for each role and
 * permission against the table written out here, `isRole` for what is and is not a role name, and
 * the exact text of a 403.
 */
import { PERMISSION_NAMES, ROLES, can, deniedMessage, isRole, type Permission, type Role } from '../../src/auth/permissions';

// What each role below admin holds, written out so a change to the table is a visible change here.
const EXPECTED: Record<Exclude<Role, 'owner' | 'admin'>, Permission[]> = {
  auditor: [
    'audit.events:read', 'audit.events:export', 'audit.analytics:read', 'audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read',
    'audit.reports:create', 'audit.securityAlerts:read', 'account.self:read', 'privacy.holds:read', 'privacy.retention:read',
  ],
  compliance_officer: [
    'audit.events:read', 'audit.events:export', 'audit.analytics:read', 'audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read',
    'audit.reports:create', 'audit.reports:configure', 'audit.securityAlerts:read', 'audit.securityAlerts:manage', 'admin.members:read',
    'account.self:read', 'privacy.subjects:erase', 'privacy.subjects:export', 'privacy.pseudonyms:resolve', 'privacy.holds:read',
    'privacy.holds:manage', 'privacy.retention:read', 'privacy.retention:manage',
  ],
  developer: ['audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read', 'admin.producerKeys:manage', 'admin.apiKeys:read', 'account.self:read'],
  member: ['audit.ledger:read', 'account.self:read'],
  producer: ['audit.events:create', 'audit.ledger:read', 'audit.alerts:read', 'admin.producerKeys:read', 'account.self:read'],
};

describe('permission checks', () => {
  it('grants owners and admins every permission and each other role exactly its list', () => {
    for (const role of ROLES) {
      const held = PERMISSION_NAMES.filter((p) => can(role, p));
      if (role === 'owner' || role === 'admin') expect(held).toEqual(PERMISSION_NAMES);
      else expect(held.sort()).toEqual([...EXPECTED[role]].sort());
    }
  });

  it('grants nothing to a name that is not a role (a value from an old row or a forged claim)', () => {
    for (const p of PERMISSION_NAMES) {
      expect(can('superuser' as Role, p)).toBe(false);
      expect(can('' as Role, p)).toBe(false);
    }
  });

  it('recognizes exactly the seven role names, as strings only', () => {
    for (const r of ROLES) expect(isRole(r)).toBe(true);
    for (const v of ['Owner', 'admin ', 'root', '', 'producers']) expect(isRole(v)).toBe(false);
    for (const v of [undefined, null, 0, 1, ['admin'], { role: 'admin' }]) expect(isRole(v)).toBe(false);
  });

  it('names the role and the missing permission in a 403', () => {
    expect(deniedMessage('member', 'audit.events:read')).toBe('role member lacks audit.events:read');
    expect(deniedMessage('producer', 'admin.apiKeys:manage')).toBe('role producer lacks admin.apiKeys:manage');
  });
});
