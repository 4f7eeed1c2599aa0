/**
 * Continuous self-audit (worker role): on a schedule, every organization's recent leaves are
 * re-verified exactly as an outside auditor would — the export bundle of the window, fed to the
 * pure {@link BundleVerifier} with the keys this deployment trusts — and, beyond what a bundle can
 * show, every stored tree node of the window is compared with the one recomputed from the leaves,
 * the head row with the latest signed checkpoint, and the log with the last checkpoint this
 * process verified and the last one published to the witness directory (so a wholesale rollback,
 * rows, nodes and checkpoints together, is still caught).
 *
 * A finding increments `audit_ledger_verification_failures_total`, logs an error, appends one
 * `ledger_alerts` row per distinct finding and raises the `ledger_integrity` security alert; `/ready` is not affected (tampering is an alert, not
 * an outage). A clean run sets `audit_ledger_last_verification_success_timestamp_seconds`.
 */
import type { Database } from '../db/client';
import { exportBundle } from '../export/bundle-export';
import { BundleVerifier, planRoot, rootAt, type NodeId, type Verifier } from '../ledger';
import type { Logger } from '../observability/logger';
import type { Metrics } from '../observability/metrics';
import * as ledgerRepo from '../tlog/repository';
import * as repo from './repository';
import { latestWitnessed } from './witness';

/** One problem found. `leafIndex`/`treeSize` name the first bad position. */
export interface SelfAuditFinding {
  kind: 'leaf' | 'checkpoint' | 'bundle' | 'node' | 'head' | 'witness';
  leafIndex: number | null;
  treeSize: number | null;
  reason: string;
}

/** Result for one organization. */
export interface SelfAuditResult {
  organizationId: string;
  ok: boolean;
  /** Leaf range re-verified (checkpoint-aligned). */
  from: number;
  to: number;
  events: number;
  /** Findings, most telling first (the verifier's first failure leads). */
  findings: SelfAuditFinding[];
}

/** Tuning and trust of the self-audit. */
export interface SelfAuditOptions {
  /** Checkpoint origin prefix (`AUDIT_LOG_ORIGIN`). */
  origin: string;
  /** Keys whose checkpoints are genuine: the active signer and configured retired keys, never the table. */
  verifiers: Verifier[];
  /** Re-verify this many most recent leaves per run (0 = the whole log). */
  windowLeaves: number;
  /** Directory witness to compare with, if configured. */
  witnessDir: string | null;
  /**
   * Told of every distinct finding recorded (the `ledger_integrity` security alert, docs/alerts.md);
   * a failure here is logged, never fails the run.
   */
  onFinding?: (org: string, finding: SelfAuditFinding, findings: number) => Promise<void>;
}

const NODE_BATCH = 2000;

/** Runs the self-audit once or on a schedule. */
export class SelfAuditor {
  /** Last checkpoint verified per organization in this process: the log must still contain it. */
  private readonly pinned = new Map<string, { size: number; root: Buffer }>();
  /** Last alert written per organization, so a standing problem is not re-recorded every run. */
  private readonly lastAlert = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SelfAuditResult[]> | null = null;

  constructor(
    private readonly database: Database,
    private readonly options: SelfAuditOptions,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
  ) {}

  /** Audits every organization, records findings, updates metrics. Never runs twice at once. */
  runOnce(): Promise<SelfAuditResult[]> {
    this.running ??= this.runAll().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async runAll(): Promise<SelfAuditResult[]> {
    const results: SelfAuditResult[] = [];
    for (const org of await repo.organizationsWithLedger(this.database.db)) {
      let result: SelfAuditResult;
      try {
        result = await this.auditOrganization(org);
      } catch (err) {
        // A read that fails on a tampered database (a missing node) is itself a finding.
        result = { organizationId: org, ok: false, from: 0, to: 0, events: 0, findings: [{ kind: 'bundle', leafIndex: null, treeSize: null, reason: `self-audit could not complete: ${(err as Error).message}` }] };
      }
      results.push(result);
      if (!result.ok) await this.alert(result);
    }
    if (results.every((r) => r.ok)) {
      this.metrics.ledgerLastVerificationSuccess.setToCurrentTime();
    }
    return results;
  }

  private async alert(result: SelfAuditResult): Promise<void> {
    this.metrics.ledgerVerificationFailures.inc();
    const first = result.findings[0]!;
    this.logger.error(
      { org: result.organizationId, kind: first.kind, leafIndex: first.leafIndex, treeSize: first.treeSize, findings: result.findings.length },
      `ledger self-audit: ${first.reason}`,
    );
    const key = `${first.kind}|${first.leafIndex}|${first.treeSize}|${first.reason}`;
    if (this.lastAlert.get(result.organizationId) === key) return;
    const [latest] = await repo.recentAlerts(this.database.db, result.organizationId, 1);
    if (latest && `${latest.kind}|${latest.leafIndex}|${latest.treeSize}|${latest.reason}` === key) {
      this.lastAlert.set(result.organizationId, key);
      return;
    }
    await repo.insertAlert(this.database.db, { organizationId: result.organizationId, kind: first.kind, leafIndex: first.leafIndex, treeSize: first.treeSize, reason: first.reason });
    this.lastAlert.set(result.organizationId, key);
    await this.options.onFinding?.(result.organizationId, first, result.findings.length).catch((err: unknown) =>
      this.logger.error({ org: result.organizationId, err: (err as Error).message }, 'ledger self-audit: raising the security alert failed'),
    );
  }

  /** Audits one organization's recent window; the checkpoint it verified is pinned for the next run. */
  async auditOrganization(org: string): Promise<SelfAuditResult> {
    const { result, latest } = await auditLog(this.database, org, this.options, this.pinned.get(org));
    if (result.ok && latest) this.pinned.set(org, latest);
    return result;
  }

  /**
   * Runs every `intervalMs`; the first run waits `initialDelayMs` (default: the interval, at most a
   * minute), so start-up and migrations are not slowed down by a full re-verification.
   */
  start(intervalMs: number, initialDelayMs = Math.min(intervalMs, 60_000)): void {
    const tick = () => {
      this.runOnce().catch((err: unknown) => this.logger.error({ err }, 'ledger self-audit failed to run'));
    };
    const first = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, intervalMs);
      this.timer.unref();
    }, initialDelayMs);
    first.unref();
    this.timer = first;
  }

  /** Stops the schedule and waits for a run in progress. */
  async stop(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      clearInterval(this.timer);
    }
    this.timer = null;
    await this.running?.catch(() => undefined);
  }
}

/**
 * Re-verifies one organization's log, or its most recent `windowLeaves` leaves, as an outside
 * auditor would (the exporter and the pure {@link BundleVerifier}, trusting only
 * `options.verifiers`), plus the stored nodes, the head row, and the checkpoints seen before
 * (`pinned`, the witness directory). The self-audit runs it on a schedule; `audit-admin
 * verify-ledger` runs it over the whole log.
 * @returns the result, and the latest verified checkpoint (to pin for the next run).
 */
export async function auditLog(
  database: Database,
  org: string,
  options: SelfAuditOptions,
  pinned?: { size: number; root: Buffer },
): Promise<{ result: SelfAuditResult; latest: { size: number; root: Buffer } | null }> {
  const db = database.db;
  const origin = `${options.origin}/${org}`;
  const findings: SelfAuditFinding[] = [];
  const head = await ledgerRepo.readHead(db, org);
  if (!head) return { result: { organizationId: org, ok: true, from: 0, to: 0, events: 0, findings }, latest: null };
  const start = options.windowLeaves === 0 ? 0 : Math.max(0, head.size - options.windowLeaves);

  // 1. The window as an auditor sees it, through the same exporter and the pure verifier.
  const computed: Array<NodeId & { hash: Buffer }> = [];
  const nodeFindings: SelfAuditFinding[] = [];
  const verifier = new BundleVerifier({
    verifiers: options.verifiers,
    maxListed: 20,
    onNode: (level, index, hash) => computed.push({ level, index, hash }),
  });
  let from = start;
  let to = start;
  for await (const record of exportBundle(db, org, origin, { start })) {
    if (record.type === 'header') {
      from = record.start;
      to = record.end;
    }
    verifier.push(record);
    if (computed.length >= NODE_BATCH) await compareNodes(database, org, computed.splice(0), nodeFindings);
  }
  await compareNodes(database, org, computed.splice(0), nodeFindings);
  const report = verifier.finish();
  for (const f of report.failures) {
    findings.push({ kind: f.kind, leafIndex: f.leafIndex ?? null, treeSize: f.treeSize ?? null, reason: f.reason });
  }
  findings.push(...nodeFindings.slice(0, 20));

  // 2. The head row must be exactly the latest signed checkpoint (sizes are compared by the verifier).
  const latest = await ledgerRepo.latestCheckpoint(db, org);
  if (latest && latest.treeSize === head.size && !latest.rootHash.equals(head.rootHash)) {
    findings.push({ kind: 'head', leafIndex: null, treeSize: head.size, reason: `the head root differs from the signed checkpoint at size ${head.size}` });
  }

  // 3. Checkpoints seen before (this process, the witness directory) must still be in the log.
  const seen: Array<{ size: number; root: Buffer; source: string }> = [];
  if (pinned) seen.push({ ...pinned, source: 'the last self-audit' });
  if (options.witnessDir) {
    try {
      const w = await latestWitnessed(options.witnessDir, org, options.verifiers);
      if (w) seen.push({ size: w.checkpoint.size, root: w.checkpoint.rootHash, source: 'the witness directory' });
    } catch (err) {
      findings.push({ kind: 'witness', leafIndex: null, treeSize: null, reason: `witnessed checkpoint does not verify: ${(err as Error).message}` });
    }
  }
  for (const s of seen) {
    if (s.size > head.size) {
      findings.push({ kind: 'witness', leafIndex: null, treeSize: s.size, reason: `a checkpoint at size ${s.size} from ${s.source} is beyond the log head ${head.size}: the log was rolled back` });
      continue;
    }
    let root: Buffer;
    try {
      root = rootAt(s.size, await ledgerRepo.readNodes(db, org, planRoot(s.size)));
    } catch (err) {
      findings.push({ kind: 'witness', leafIndex: null, treeSize: s.size, reason: `cannot rebuild the root at size ${s.size} from ${s.source}: ${(err as Error).message}` });
      continue;
    }
    if (!root.equals(s.root)) {
      findings.push({ kind: 'witness', leafIndex: null, treeSize: s.size, reason: `the log's root at size ${s.size} differs from the checkpoint of ${s.source}: history was rewritten` });
    }
  }

  const latestVerified = report.latest ? { size: report.latest.treeSize, root: Buffer.from(report.latest.rootHash, 'base64') } : null;
  return { result: { organizationId: org, ok: findings.length === 0, from, to, events: report.events, findings }, latest: latestVerified };
}

/** Compares recomputed subtree hashes with the stored ones; the first mismatch per batch is a finding. */
async function compareNodes(database: Database, org: string, nodes: Array<NodeId & { hash: Buffer }>, out: SelfAuditFinding[]): Promise<void> {
  if (nodes.length === 0) return;
  const stored = await repo.storedNodes(database.db, org, nodes);
  for (const n of nodes) {
    const s = stored.get(`${n.level}/${n.index}`);
    if (s && s.equals(n.hash)) continue;
    const first = n.index * 2 ** n.level;
    out.push({
      kind: 'node',
      leafIndex: first,
      treeSize: null,
      reason: `tree node (level ${n.level}, index ${n.index}) covering leaves [${first}, ${first + 2 ** n.level}) ${s ? 'differs from the one rebuilt from the leaves' : 'is missing'}`,
    });
    return;
  }
}
