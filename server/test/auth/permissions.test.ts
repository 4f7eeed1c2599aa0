/**
 * The role table: rendered into the README without drift, and API keys of the three roles that
 * existed before (admin, producer, auditor) keep exactly the operations they could call.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createOperations, type OperationId } from '../../src/api/operations';
import { API_KEY_ROLES, PERMISSION_NAMES, PERMISSIONS, ROLE_PERMISSIONS, ROLES, can } from '../../src/auth/permissions';
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { withRolesTable } from '../../src/http/access-docs';
import { procedureAccess } from '../../src/trpc/access';
import { createAppRouter } from '../../src/trpc/routers';

const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });

describe('roles and permissions', () => {
  it('the README shows the current role table (run `npm run docs:config` after changing it)', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../../README.md'), 'utf8');
    expect(readme).toBe(withRolesTable(readme));
  });

  it('grants only known permissions, and every permission is held by some role and needed by some operation', () => {
    for (const role of ROLES) for (const p of ROLE_PERMISSIONS[role]) expect(PERMISSIONS).toHaveProperty([p]);
    const needed = new Set([...Object.values(operations).map((o) => o.permission), ...procedureAccess(createAppRouter(operations)).map((p) => p.access)]);
    const unused = PERMISSION_NAMES.filter((p) => !needed.has(p));
    expect(unused).toEqual([]);
    for (const p of PERMISSION_NAMES) expect(ROLES.some((r) => can(r, p))).toBe(true);
  });

  it('owners and admins hold every permission; API keys cannot be owners or plain members', () => {
    for (const p of PERMISSION_NAMES) {
      expect(can('owner', p)).toBe(true);
      expect(can('admin', p)).toBe(true);
    }
    expect(API_KEY_ROLES).not.toContain('owner');
    expect(API_KEY_ROLES).not.toContain('member');
  });

  it('producers never read event contents; developers and members neither', () => {
    for (const role of ['producer', 'developer', 'member'] as const) {
      expect(can(role, 'audit.events:read')).toBe(false);
      expect(can(role, 'audit.events:export')).toBe(false);
    }
  });

  // What the three former roles could call, per operation (from the grants before the seven roles).
  const FORMER: Record<'admin' | 'producer' | 'auditor', OperationId[]> = {
    admin: [
      'eventsCreate', 'eventsBulkCreate', 'eventsQuery', 'eventsStats', 'eventsGetById', 'ledgerCheckpoint', 'ledgerInclusionProof',
      'ledgerConsistencyProof', 'ledgerLeaves', 'ledgerKeys', 'ledgerAlerts', 'producerKeysRegister', 'producerKeysList',
      'apiKeysCreate', 'apiKeysList', 'apiKeysRevoke',
    ],
    producer: ['eventsCreate', 'eventsBulkCreate', 'ledgerCheckpoint', 'ledgerInclusionProof', 'ledgerConsistencyProof', 'ledgerKeys', 'ledgerAlerts', 'producerKeysList'],
    auditor: [
      'eventsQuery', 'eventsStats', 'eventsGetById', 'ledgerCheckpoint', 'ledgerInclusionProof', 'ledgerConsistencyProof', 'ledgerLeaves',
      'ledgerKeys', 'ledgerAlerts', 'producerKeysList',
    ],
  };

  it.each(['admin', 'producer', 'auditor'] as const)('an existing %s key can call exactly what it could before', (role) => {
    for (const id of FORMER.admin) {
      expect({ id, allowed: can(role, operations[id].permission) }).toEqual({ id, allowed: FORMER[role].includes(id) });
    }
    // The streamed export (outside the table) needed what ledger.leaves needs.
    const exportBundle = procedureAccess(createAppRouter(operations)).find((p) => p.path === 'ledger.exportBundle')!;
    expect(can(role, exportBundle.access as never)).toBe(role !== 'producer');
  });
});
