/**
 * Compliance reports: what a caller asks for (one zod schema per report kind, shared by REST and
 * tRPC) and the records a report is made of. A report is a stream: one `header` record (what was
 * asked, the organization, the range, and the signed checkpoint it was computed against), then
 * one `row` record per event (or, for `integrity`, per checkpoint and per failure), then one
 * `summary` record. Renderers (JSON, CSV, PDF) turn that stream into bytes without collecting it.
 */
import { z } from 'zod';
import { instantSchema, safeText } from '../util/safe-input';

/** The report kinds. */
export const REPORT_KINDS = ['patient-access', 'user-activity', 'accounting-of-disclosures', 'integrity'] as const;
/** A report kind. */
export type ReportKind = (typeof REPORT_KINDS)[number];

/** Output formats of the REST route (tRPC streams the records themselves). */
export const REPORT_FORMATS = ['json', 'csv', 'pdf'] as const;
/** An output format. */
export type ReportFormat = (typeof REPORT_FORMATS)[number];

/** Six years (HIPAA §164.528(a): an accounting covers up to six years before the request), in ms: 6 × 365 + 2 leap days. */
export const SIX_YEARS_MS = (6 * 365 + 2) * 24 * 60 * 60 * 1000;

const range = {
  from: instantSchema().optional().describe('first recordedAt included (RFC 3339); default: the start of the log'),
  to: instantSchema().optional().describe('recordedAt bound, excluded (RFC 3339); default: the checkpoint the report is computed against'),
};

const format = z.enum(REPORT_FORMATS).default('json').describe('json (default), csv (RFC 4180) or pdf');

/** `patient-access`: every access to one patient's data over a range. */
export const patientAccessInputSchema = z.strictObject({
  kind: z.literal('patient-access'),
  patientId: safeText(256),
  ...range,
  format,
});

/** `user-activity`: everything one principal did over a range. */
export const userActivityInputSchema = z.strictObject({
  kind: z.literal('user-activity'),
  principalId: safeText(256),
  ...range,
  format,
});

/** `accounting-of-disclosures` (HIPAA §164.528): disclosures of one patient's data, at most six years. */
export const disclosuresInputSchema = z.strictObject({
  kind: z.literal('accounting-of-disclosures'),
  patientId: safeText(256),
  from: instantSchema().optional().describe('first recordedAt included; default: six years before `to`; at most six years before `to`'),
  to: range.to,
  format,
});

/** `integrity`: verification of a leaf range (or a time range) of the log. */
export const integrityInputSchema = z.strictObject({
  kind: z.literal('integrity'),
  start: z.number().int().nonnegative().optional().describe('first leaf index (moved down to a signed checkpoint)'),
  end: z.number().int().nonnegative().optional().describe('one past the last leaf index (moved up to a signed checkpoint)'),
  ...range,
  format,
});

/** The input of `POST /api/v1/reports` and `reports.create`. */
export const reportInputSchema = z
  .discriminatedUnion('kind', [patientAccessInputSchema, userActivityInputSchema, disclosuresInputSchema, integrityInputSchema])
  .superRefine((v, ctx) => {
    if (v.from !== undefined && v.to !== undefined && Date.parse(v.from) >= Date.parse(v.to)) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'from must be before to' });
    }
    if (v.kind === 'accounting-of-disclosures' && v.from !== undefined) {
      const to = v.to === undefined ? Date.now() : Date.parse(v.to);
      if (to - Date.parse(v.from) > SIX_YEARS_MS) {
        ctx.addIssue({ code: 'custom', path: ['from'], message: 'an accounting of disclosures covers at most six years (HIPAA §164.528(a)(3))' });
      }
    }
    if (v.kind === 'integrity' && v.start !== undefined && v.end !== undefined && v.start > v.end) {
      ctx.addIssue({ code: 'custom', path: ['start'], message: 'start must not exceed end' });
    }
  });
/** A parsed report request. */
export type ReportInput = z.output<typeof reportInputSchema>;

/** The signed checkpoint a report was computed against: anyone can re-verify the listed leaves later. */
export const reportCheckpointSchema = z.object({
  origin: z.string(),
  treeSize: z.number().int().nonnegative(),
  rootHash: z.string().describe('standard base64'),
  note: z.string().describe('C2SP signed note (tlog-checkpoint)'),
  signedAt: z.string(),
});
/** A report's checkpoint. */
export type ReportCheckpoint = z.infer<typeof reportCheckpointSchema>;

/** One column of a report's table. */
export interface ReportColumn {
  key: string;
  title: string;
  /** Relative width in the PDF table. */
  width: number;
}

/** The first record of every report. */
export interface ReportHeader {
  type: 'header';
  kind: ReportKind;
  title: string;
  organization: { id: string; name: string };
  generatedAt: string;
  /** [from, to) on recordedAt (null: open). */
  range: { from: string | null; to: string | null };
  /** The patient or principal the report is about (absent for integrity). */
  subject?: { patientId: string } | { principalId: string };
  /** The checkpoint every listed event is covered by (null: the log has none yet, so nothing is listed). */
  checkpoint: ReportCheckpoint | null;
  columns: ReportColumn[];
  /** What counts (disclosure rule, exclusions), in words. */
  notes: string[];
}

/** A table row: column key → value ('' when absent or erased). Always holds `leafIndex` for event rows. */
export type ReportRow = { type: 'row' } & Record<string, string | number | null>;

/** The last record. */
export interface ReportSummary {
  type: 'summary';
  rows: number;
  /** Counters specific to the kind (events excluded by the disclosure rule, erased fields, failures…). */
  counts: Record<string, number>;
  /** Integrity only: whether everything verified. */
  ok?: boolean;
  /** Integrity only: the first failures, each named by leaf index or checkpoint size. */
  failures?: Array<{ kind: string; leafIndex: number | null; treeSize: number | null; reason: string }>;
}

/** Any record of a report stream. */
export type ReportRecord = ReportHeader | ReportRow | ReportSummary;
