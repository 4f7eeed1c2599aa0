/**
 * The access decision of every procedure of a router, read from the metadata `permitted()` and
 * `publicProcedure` attach (trpc.ts). A procedure built without one has no decision: the role
 * matrix test and the README table both list it as such, and the test fails.
 */
import type { AnyTRPCRouter } from '@trpc/server';
import type { Access } from '../auth/permissions';
import type { ProcedureMeta } from './trpc';

/** One procedure and what it requires. */
export interface ProcedureAccess {
  path: string;
  type: 'query' | 'mutation' | 'subscription';
  /** null: built without an approved base (a defect). */
  access: Access | null;
}

/** Every procedure of `router`, in path order, with its declared access. */
export function procedureAccess(router: AnyTRPCRouter): ProcedureAccess[] {
  const procedures = router._def.procedures as Record<string, { _def: { type: ProcedureAccess['type']; meta?: Partial<ProcedureMeta> } }>;
  return Object.entries(procedures)
    .map(([path, p]) => ({ path, type: p._def.type, access: p._def.meta?.access ?? null }))
    .sort((a, b) => a.path.localeCompare(b.path));
}
