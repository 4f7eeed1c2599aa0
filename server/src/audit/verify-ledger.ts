/**
 * `audit-admin verify-ledger`: the whole log of every organization (or one) re-verified through
 * the self-audit's path (exporter → {@link BundleVerifier}, stored nodes, head row), trusting only
 * the verifier keys the operator gives — never the `signing_keys` table, which whoever rewrites
 * the log can rewrite too (docs/deploying.md "Backup and restore").
 */
import type { Database } from '../db/client';
import type { Verifier } from '../ledger';
import * as ledgerRepo from '../tlog/repository';
import { organizationsWithLedger } from './repository';
import { auditLog, type SelfAuditFinding } from './self-audit';

/** Result for one organization. */
export interface LedgerVerification {
  organizationId: string;
  ok: boolean;
  /** The log's head size. */
  size: number;
  /** Events re-verified. */
  events: number;
  /** When `ok` is false: the first finding, naming the first bad position (leaf or checkpoint). */
  failure?: SelfAuditFinding;
  /** How many findings in all. */
  findings: number;
}

/** What to verify and whom to trust. */
export interface VerifyLedgerOptions {
  /** Checkpoint origin prefix (`AUDIT_LOG_ORIGIN`). */
  origin: string;
  /** Keys from configuration or `--key`; at least one. */
  verifiers: Verifier[];
  /** Only this organization (default: every organization with a ledger). */
  organizationId?: string;
}

/** Verifies the whole log of each organization, one after the other (flat memory). */
export async function verifyLedgers(database: Database, options: VerifyLedgerOptions): Promise<LedgerVerification[]> {
  if (options.verifiers.length === 0) throw new RangeError('verify-ledger needs at least one trusted verifier key');
  const orgs = options.organizationId ? [options.organizationId] : await organizationsWithLedger(database.db);
  const results: LedgerVerification[] = [];
  for (const org of orgs) {
    const head = await ledgerRepo.readHead(database.db, org);
    if (!head) {
      const failure: SelfAuditFinding = { kind: 'head', leafIndex: null, treeSize: null, reason: `organization ${org} has no ledger` };
      results.push({ organizationId: org, ok: false, size: 0, events: 0, failure, findings: 1 });
      continue;
    }
    let findings: SelfAuditFinding[];
    let events = 0;
    try {
      const { result } = await auditLog(database, org, { origin: options.origin, verifiers: options.verifiers, windowLeaves: 0, witnessDir: null });
      findings = result.findings;
      events = result.events;
    } catch (err) {
      // A read that fails on a tampered database (a missing node) is itself a finding.
      findings = [{ kind: 'bundle', leafIndex: null, treeSize: null, reason: `verification could not complete: ${(err as Error).message}` }];
    }
    results.push({
      organizationId: org,
      ok: findings.length === 0,
      size: head.size,
      events,
      ...(findings[0] ? { failure: findings[0] } : {}),
      findings: findings.length,
    });
  }
  return results;
}
