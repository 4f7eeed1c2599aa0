/**
 * Renders the README's roles and permissions table from auth/permissions.ts, with the tRPC
 * procedures and REST routes that require each permission, so the documentation cannot drift
 * from what the server enforces (a test compares them; `npm run docs:config` rewrites it).
 */
import { createOperations, type AnyOperation } from '../api/operations';
import { PERMISSION_NAMES, PERMISSIONS, ROLE_DESCRIPTIONS, ROLES, can, type Access } from '../auth/permissions';
import { DEFAULT_EVENT_LIMITS } from '../events/limits';
import { procedureAccess } from '../trpc/access';
import { createAppRouter } from '../trpc/routers';
import { EXPORT_ROUTE } from './export';
import { REPORTS_ROUTE } from './reports';
import { SUBJECT_EXPORT_ROUTE } from './subject-export';

/** Who needs what: tRPC procedures and REST routes (under /api/v1) grouped by access. */
function operationsByAccess(): Map<Access | null, string[]> {
  const operations = createOperations({ event: DEFAULT_EVENT_LIMITS });
  const by = new Map<Access | null, string[]>();
  const add = (access: Access | null, name: string) => by.set(access, [...(by.get(access) ?? []), name]);
  for (const p of procedureAccess(createAppRouter(operations))) add(p.access, `\`${p.path}\``);
  const rest = [...(Object.values(operations) as AnyOperation[]).map((o) => ({ ...o.rest, access: o.permission })), EXPORT_ROUTE, REPORTS_ROUTE, SUBJECT_EXPORT_ROUTE];
  for (const r of rest) add(r.access, `\`${r.method.toUpperCase()} ${r.path}\``);
  return by;
}

/** The Markdown tables: roles with their purpose, then permission × role with the operations. */
export function renderRolesTable(): string {
  const by = operationsByAccess();
  const roles = ['| Role | For |', '| --- | --- |', ...ROLES.map((r) => `| \`${r}\` | ${ROLE_DESCRIPTIONS[r]} |`)];
  const head = `| Permission | Allows | ${ROLES.map((r) => `\`${r}\``).join(' | ')} | tRPC procedures and REST routes (under \`/api/v1\`) |`;
  const rows = PERMISSION_NAMES.map(
    (p) => `| \`${p}\` | ${PERMISSIONS[p]} | ${ROLES.map((r) => (can(r, p) ? '✓' : '')).join(' | ')} | ${(by.get(p) ?? []).join(', ')} |`,
  );
  return [...roles, '', head, `| --- | --- | ${ROLES.map(() => ':-:').join(' | ')} | --- |`, ...rows].join('\n');
}

/** Markers around the generated tables in README.md. */
export const ROLES_TABLE_MARKERS = ['<!-- roles-table:start -->', '<!-- roles-table:end -->'] as const;

/** README text with the tables between the markers replaced. */
export function withRolesTable(readme: string): string {
  const [start, end] = ROLES_TABLE_MARKERS;
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error('README.md lacks the roles-table markers');
  return readme.slice(0, i + start.length) + '\n' + renderRolesTable() + '\n' + readme.slice(j);
}
