/**
 * The report service: computes a report as a stream of records (schema.ts) against the latest
 * signed checkpoint of the organization's log, reading the events in bounded keyset pages so
 * memory stays flat whatever the range. Every event row carries its leaf index, and the header the
 * checkpoint (origin, tree size, root hash, signed note): anyone holding the verifier key can later
 * prove each listed event is in that log with `GET /ledger/proofs/inclusion?leafIndex=…&treeSize=…`.
 */
import type { Db } from '../db/client';
import { exportBundle } from '../export/bundle-export';
import { leafRangeOfTimes } from '../export/repository';
import { BundleVerifier, type BundleRecord, type Verifier } from '../ledger';
import type { PseudonymView } from '../privacy/service';
import * as ledgerRepo from '../tlog/repository';
import { decide, DEFAULT_DISCLOSURE_RULE, disclosureRuleSchema, purposesOf, recipientOf, type DisclosureRule } from './disclosure-rule';
import * as repo from './repository';
import {
  SIX_YEARS_MS,
  type ReportCheckpoint,
  type ReportColumn,
  type ReportHeader,
  type ReportInput,
  type ReportKind,
  type ReportRow,
  type ReportSummary,
} from './schema';

/** Rows read per query. */
const PAGE_SIZE = 1000;

/**
 * What the caller may see (docs/privacy.md "Pseudonyms"): identifiers as they are, or pseudonyms
 * (`pseu_…`) for callers without `privacy.pseudonyms:resolve`. `flush` remembers the pseudonyms
 * shown so far, so they can be resolved; the report calls it after every page.
 */
export type ReportView = Pick<PseudonymView, 'apply' | 'pseudonym' | 'flush'>;

/** The view of a caller who sees identifiers. */
export const IDENTITY_VIEW: ReportView = { apply: (r) => r, pseudonym: (v) => v, flush: () => Promise.resolve() };

/** A report ready to stream: the header is computed, the rows are read as they are consumed. */
export interface OpenReport {
  header: ReportHeader;
  /** Rows then the summary (the last record). Consume once. */
  body: AsyncGenerator<ReportRow | ReportSummary, void, undefined>;
}

/** The stored disclosure rule as the API shows it. */
export interface DisclosureRuleView {
  rule: DisclosureRule;
  /** False when the organization never set one (the default applies). */
  custom: boolean;
  updatedAt: string | null;
  updatedBy: string | null;
}

const TITLES: Record<ReportKind, string> = {
  'patient-access': 'Patient access report',
  'user-activity': 'User activity report',
  'accounting-of-disclosures': 'Accounting of disclosures (HIPAA §164.528)',
  integrity: 'Log integrity report',
};

const col = (key: string, title: string, width: number): ReportColumn => ({ key, title, width });

/** The table of each kind. `leafIndex` first: every event row names its place in the log. */
export const REPORT_COLUMNS: Record<ReportKind, ReportColumn[]> = {
  'patient-access': [
    col('leafIndex', 'Leaf', 5),
    col('recordedAt', 'Recorded (UTC)', 14),
    col('principalId', 'Who', 12),
    col('principalType', 'As', 9),
    col('action', 'Action', 11),
    col('target', 'What', 13),
    col('status', 'Outcome', 7),
    col('outcomeDescription', 'Detail', 12),
    col('eventId', 'Event id', 17),
  ],
  'user-activity': [
    col('leafIndex', 'Leaf', 5),
    col('recordedAt', 'Recorded (UTC)', 14),
    col('action', 'Action', 12),
    col('target', 'What', 14),
    col('patientId', 'Patient', 11),
    col('status', 'Outcome', 7),
    col('outcomeDescription', 'Detail', 14),
    col('eventId', 'Event id', 17),
  ],
  'accounting-of-disclosures': [
    col('leafIndex', 'Leaf', 5),
    col('date', 'Date of disclosure', 14),
    col('recipient', 'Recipient', 15),
    col('description', 'Description', 18),
    col('purpose', 'Purpose', 12),
    col('principalId', 'Disclosed by', 11),
    col('eventId', 'Event id', 17),
  ],
  integrity: [
    col('record', 'Record', 8),
    col('position', 'Leaf / size', 8),
    col('id', 'Event id / root hash', 26),
    col('recordedAt', 'Recorded / signed (UTC)', 14),
    col('erased', 'Erased fields', 14),
    col('result', 'Result', 7),
  ],
};

/** Computes compliance reports. */
export class ReportService {
  constructor(
    private readonly db: Db,
    /** `<AUDIT_LOG_ORIGIN>/<org>`. */
    private readonly originOf: (org: string) => string,
    /** Keys the integrity report trusts (from configuration, never the signing_keys table). */
    private readonly verifiers: Verifier[],
  ) {}

  /** The organization's disclosure rule (the default when it never set one). */
  async disclosureRule(org: string): Promise<DisclosureRuleView> {
    const stored = await repo.readDisclosureRule(this.db, org);
    if (!stored) return { rule: DEFAULT_DISCLOSURE_RULE, custom: false, updatedAt: null, updatedBy: null };
    // A rule stored by an older version is read with today's defaults for fields it lacks.
    return { rule: disclosureRuleSchema.parse(stored.rule), custom: true, updatedAt: stored.updatedAt.toISOString(), updatedBy: stored.updatedBy };
  }

  /** Replaces the organization's disclosure rule. */
  async setDisclosureRule(org: string, rule: DisclosureRule, by: string): Promise<DisclosureRuleView> {
    const at = await repo.writeDisclosureRule(this.db, org, rule, by);
    return { rule, custom: true, updatedAt: at.toISOString(), updatedBy: by };
  }

  /**
   * Opens a report: reads the latest signed checkpoint (every listed event is below its tree
   * size) and builds the header; the rows are read when the body is consumed.
   * @param view how identifiers (patients, principals) are shown to this caller
   */
  async open(org: string, input: ReportInput, view: ReportView = IDENTITY_VIEW, now: Date = new Date()): Promise<OpenReport> {
    const cp = await ledgerRepo.latestCheckpoint(this.db, org);
    const checkpoint: ReportCheckpoint | null = cp
      ? { origin: this.originOf(org), treeSize: cp.treeSize, rootHash: cp.rootHash.toString('base64'), note: cp.note, signedAt: cp.createdAt.toISOString() }
      : null;
    let from = input.from ? new Date(input.from) : null;
    const to = input.to ? new Date(input.to) : input.kind === 'accounting-of-disclosures' ? now : null;
    if (input.kind === 'accounting-of-disclosures' && from === null) from = new Date(to!.getTime() - SIX_YEARS_MS);
    const rule = input.kind === 'accounting-of-disclosures' ? (await this.disclosureRule(org)).rule : DEFAULT_DISCLOSURE_RULE;
    const header: ReportHeader = {
      type: 'header',
      kind: input.kind,
      title: TITLES[input.kind],
      organization: { id: org, name: await repo.organizationName(this.db, org) },
      generatedAt: now.toISOString(),
      range: { from: from?.toISOString() ?? null, to: to?.toISOString() ?? null },
      ...(input.kind === 'patient-access' || input.kind === 'accounting-of-disclosures'
        ? { subject: { patientId: view.pseudonym(input.patientId) } }
        : input.kind === 'user-activity'
          ? { subject: { principalId: view.pseudonym(input.principalId) } }
          : {}),
      checkpoint,
      columns: REPORT_COLUMNS[input.kind],
      notes: notesOf(input.kind, rule),
    };
    const treeSize = checkpoint?.treeSize ?? 0;
    let body: OpenReport['body'];
    switch (input.kind) {
      case 'patient-access':
        body = this.eventRows(org, { patientId: input.patientId }, treeSize, from, to, view, (r) => patientAccessRow(shown(r, view)));
        break;
      case 'user-activity':
        body = this.eventRows(org, { principalId: input.principalId }, treeSize, from, to, view, (r) => userActivityRow(shown(r, view)));
        break;
      case 'accounting-of-disclosures':
        body = this.disclosureRows(org, input.patientId, treeSize, from, to, rule, view);
        break;
      case 'integrity':
        body = this.integrityRows(org, input, checkpoint);
        break;
    }
    return { header, body };
  }

  private async *eventRows(
    org: string,
    subject: repo.ReportSubject,
    treeSize: number,
    from: Date | null,
    to: Date | null,
    view: ReportView,
    toRow: (r: repo.ReportEventRow) => ReportRow,
  ): AsyncGenerator<ReportRow | ReportSummary, void, undefined> {
    let rows = 0;
    if (treeSize > 0) {
      for await (const r of repo.scanReportEvents(this.db, { org, subject, treeSize, from, to, limit: PAGE_SIZE, withDetails: false })) {
        rows++;
        yield toRow(r);
        if (rows % PAGE_SIZE === 0) await view.flush();
      }
    }
    await view.flush();
    yield { type: 'summary', rows, counts: { events: rows } };
  }

  private async *disclosureRows(
    org: string,
    patientId: string,
    treeSize: number,
    from: Date | null,
    to: Date | null,
    rule: DisclosureRule,
    view: ReportView,
  ): AsyncGenerator<ReportRow | ReportSummary, void, undefined> {
    const counts = { eventsOfPatient: 0, listed: 0, excludedPurpose: 0, notSuccessful: 0 };
    if (treeSize > 0) {
      for await (const r of repo.scanReportEvents(this.db, { org, subject: { patientId }, treeSize, from, to, limit: PAGE_SIZE, withDetails: true })) {
        counts.eventsOfPatient++;
        const decision = decide(rule, r);
        if (decision === 'excluded-purpose') counts.excludedPurpose++;
        if (decision === 'not-successful') counts.notSuccessful++;
        if (decision !== 'listed') continue;
        counts.listed++;
        const details = (typeof r.details === 'object' && r.details !== null ? r.details : {}) as Record<string, unknown>;
        const description = r.outcomeDescription ?? (typeof details.description === 'string' ? details.description : (r.action ?? ''));
        yield {
          type: 'row',
          leafIndex: r.leafIndex,
          date: repo.formatEventTimestamp(r.timestamp) || r.recordedAt.toISOString(),
          recordedAt: r.recordedAt.toISOString(),
          recipient: recipientOf(r.details) ?? '',
          description,
          purpose: purposesOf(r.details).join(', '),
          principalId: shown(r, view).shownPrincipalId ?? '',
          action: r.action ?? '',
          eventId: r.id,
        };
        if (counts.listed % PAGE_SIZE === 0) await view.flush();
      }
    }
    await view.flush();
    yield { type: 'summary', rows: counts.listed, counts };
  }

  private async *integrityRows(
    org: string,
    input: Extract<ReportInput, { kind: 'integrity' }>,
    checkpoint: ReportCheckpoint | null,
  ): AsyncGenerator<ReportRow | ReportSummary, void, undefined> {
    if (checkpoint === null) {
      yield { type: 'summary', rows: 0, counts: { events: 0, checkpoints: 0, erasedFields: 0, failures: 0 }, ok: true, failures: [] };
      return;
    }
    const verifier = new BundleVerifier({ verifiers: this.verifiers, maxListed: 100 });
    // The leaf range: given, or the leaves recorded in [from, to); never past the report's checkpoint.
    let start = input.start ?? 0;
    let end = input.end ?? checkpoint.treeSize;
    if (input.start === undefined && input.end === undefined && (input.from || input.to)) {
      const r = await leafRangeOfTimes(this.db, org, input.from ? new Date(input.from) : null, input.to ? new Date(input.to) : null);
      start = r?.start ?? 0;
      end = r?.end ?? 0;
    }
    end = Math.min(end, checkpoint.treeSize);
    const range = { start: Math.min(start, end), end };
    let rows = 0;
    for await (const record of exportBundle(this.db, org, checkpoint.origin, range)) {
      const before = verifier.failuresSoFar;
      verifier.push(record);
      const row = integrityRow(record, verifier.failuresSoFar > before);
      if (row) {
        rows++;
        yield row;
      }
    }
    const report = verifier.finish();
    yield {
      type: 'summary',
      rows,
      counts: {
        start: report.start ?? 0,
        end: report.end ?? 0,
        events: report.events,
        fieldsVerified: report.fieldsVerified,
        erasedFields: report.erasedFields,
        checkpoints: report.checkpointsVerified,
        consistencyProofs: report.consistencyProofsVerified,
        failures: report.failureCount,
      },
      ok: report.ok,
      failures: report.failures.map((f) => ({ kind: f.kind, leafIndex: f.leafIndex ?? null, treeSize: f.treeSize ?? null, reason: f.reason })),
    };
  }
}

/** The identifying fields of a row as the caller may see them. */
interface ShownRow extends repo.ReportEventRow {
  shownPatientId: string | undefined;
  shownPrincipalId: string | undefined;
  shownTargetResourceId: string | undefined;
}

function shown(r: repo.ReportEventRow, view: ReportView): ShownRow {
  const v = view.apply({
    patientId: r.patientId ?? undefined,
    principalId: r.principalId ?? undefined,
    targetResourceType: r.targetResourceType ?? undefined,
    targetResourceId: r.targetResourceId ?? undefined,
    action: r.action ?? undefined,
  });
  return { ...r, shownPatientId: v.patientId, shownPrincipalId: v.principalId, shownTargetResourceId: v.targetResourceId };
}

function target(r: ShownRow): string {
  const id = r.shownTargetResourceId;
  if (r.targetResourceType && id) return `${r.targetResourceType}/${id}`;
  return r.targetResourceType ?? id ?? '';
}

function patientAccessRow(r: ShownRow): ReportRow {
  return {
    type: 'row',
    leafIndex: r.leafIndex,
    recordedAt: r.recordedAt.toISOString(),
    timestamp: repo.formatEventTimestamp(r.timestamp),
    principalId: r.shownPrincipalId ?? '',
    principalType: r.principalType ?? '',
    action: r.action ?? '',
    target: target(r),
    status: r.status ?? '',
    outcomeDescription: r.outcomeDescription ?? '',
    eventId: r.id,
  };
}

function userActivityRow(r: ShownRow): ReportRow {
  return {
    type: 'row',
    leafIndex: r.leafIndex,
    recordedAt: r.recordedAt.toISOString(),
    timestamp: repo.formatEventTimestamp(r.timestamp),
    action: r.action ?? '',
    target: target(r),
    patientId: r.shownPatientId ?? '',
    status: r.status ?? '',
    outcomeDescription: r.outcomeDescription ?? '',
    eventId: r.id,
  };
}

/** An integrity row for an event or checkpoint record of the bundle (null for the others). */
function integrityRow(record: BundleRecord, failed: boolean): ReportRow | null {
  const result = failed ? 'FAILED' : 'ok';
  if (record.type === 'event') {
    const erased = Object.entries(record.fields)
      .filter(([, f]) => f.salt === null)
      .map(([name]) => name)
      .sort();
    return { type: 'row', record: 'event', position: record.leafIndex, id: record.id, recordedAt: record.recordedAt, erased: erased.join(' '), result };
  }
  if (record.type === 'checkpoint') {
    const root = record.note.split('\n')[2] ?? '';
    return { type: 'row', record: 'checkpoint', position: record.treeSize, id: root, recordedAt: record.createdAt, erased: '', result };
  }
  return null;
}

/** What a report counts, in words (shown under the title). */
function notesOf(kind: ReportKind, rule: DisclosureRule): string[] {
  const verify = 'Each event is identified by its leaf index: its inclusion in the log at the checkpoint above can be proven with GET /api/v1/ledger/proofs/inclusion?leafIndex=<leaf>&treeSize=<size>.';
  switch (kind) {
    case 'patient-access':
      return ['Every event recorded for this patient (patientId) in the range, in the order recorded.', verify];
    case 'user-activity':
      return ['Every event recorded with this principal (principalId) in the range, in the order recorded.', verify];
    case 'accounting-of-disclosures':
      return [
        `Disclosures: successful events whose action ${[...rule.actions.map((a) => `is ${a}`), ...rule.actionPrefixes.map((p) => `starts with ${p}`)].join(' or ') || 'matches no configured action'}` +
          (rule.eventsWithRecipient ? ', or that name a recipient (details.recipient).' : '.'),
        `Not listed, per 45 CFR §164.528(a)(1): disclosures whose purpose is one of ${rule.excludedPurposes.join(', ') || '(none configured)'}.`,
        verify,
      ];
    case 'integrity':
      return [
        'The range re-verified as an outside auditor would (the audit-verify bundle check): every field value against its commitment, every leaf, every checkpoint signature against the configured verifier keys, the consistency between checkpoints.',
        'Erased fields (GDPR erasure: value and salt removed, commitment kept) are listed, not failures.',
      ];
  }
}
