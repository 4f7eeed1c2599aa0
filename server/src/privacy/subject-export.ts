/**
 * Subject access and portability (docs/privacy.md §5): every event about a subject, each with its
 * leaf index, its committed form and an inclusion proof against the organization's latest signed
 * checkpoint, which leads the export. Read in pages with one batched node read per page, so memory
 * stays flat for any number of events; rendered as NDJSON, JSON or CSV (RFC 4180) by the
 * formatters below, chunk by chunk.
 *
 * Each event's `receipt` has the shape `audit-verify receipt` reads, so the subject can check
 * offline, with nothing but the public key, that the event is in the log the checkpoint signs.
 */
import { z } from 'zod';
import type { Db } from '../db/client';
import { toRecord, valuesOf } from '../events/repository';
import type { EventRecord } from '../events/schema';
import { planInclusion, proveInclusion, type NodeId } from '../ledger';
import * as ledgerRepo from '../tlog/repository';
import { safeText } from '../util/safe-input';
import * as repo from './repository';
import { IDENTIFIER_FIELDS } from './repository';

/** The checkpoint every proof of the export is against. */
export interface SubjectCheckpoint {
  type: 'checkpoint';
  origin: string;
  treeSize: number;
  rootHash: string;
  note: string;
}

/** One event about the subject. */
export interface SubjectEvent {
  type: 'event';
  event: EventRecord;
  /** Committed form: commitment, salt and value per field (erased fields without salt and value). */
  fields: Record<string, { commitment: string; salt: string | null; value?: unknown }>;
  /** What `audit-verify receipt` checks: the leaf's inclusion in the checkpoint's tree. */
  receipt: {
    id: string;
    leafIndex: number;
    leafHash: string;
    checkpoint: string;
    inclusionProof: { leafIndex: number; treeSize: number; hashes: string[] };
  };
}

/** The last record: how many events were written (a truncated export is detected). */
export interface SubjectEnd {
  type: 'end';
  events: number;
}

/** A record of a subject export. */
export type SubjectExportRecord = SubjectCheckpoint | SubjectEvent | SubjectEnd;

/** The subject export of `org`, record by record. */
export async function* subjectExport(
  db: Db,
  org: string,
  origin: string,
  field: repo.IdentifierField,
  subject: string,
  pageSize = 500,
): AsyncGenerator<SubjectExportRecord, void, undefined> {
  const latest = await ledgerRepo.latestCheckpoint(db, org);
  const size = latest?.treeSize ?? 0;
  const note = latest?.note ?? '';
  yield {
    type: 'checkpoint',
    origin,
    treeSize: size,
    rootHash: latest ? latest.rootHash.toString('base64') : '',
    note,
  };
  let after = -1;
  let count = 0;
  for (;;) {
    const rows = await repo.subjectEventPage(db, org, field, subject, after, size, pageSize);
    if (rows.length === 0) break;
    // Every node of every proof of the page, in one read.
    const plans = rows.map((r) => planInclusion(r.leafIndex, size));
    const ids: NodeId[] = [];
    const seen = new Map<string, number>();
    const slot = (id: NodeId) => {
      const k = `${id.level}/${id.index}`;
      let i = seen.get(k);
      if (i === undefined) {
        i = ids.push(id) - 1;
        seen.set(k, i);
      }
      return i;
    };
    const slots = plans.map((plan, i) => ({
      leaf: slot({ level: 0, index: rows[i]!.leafIndex }),
      path: plan.map(slot),
    }));
    const hashes = await ledgerRepo.readNodes(db, org, ids);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const s = slots[i]!;
      const values = valuesOf(row) as Record<string, unknown>;
      const fields: SubjectEvent['fields'] = {};
      for (const [name, commitment] of Object.entries(row.commitments)) {
        const salt = row.salts[name] ?? null;
        fields[name] =
          salt === null ? { commitment, salt } : { commitment, salt, value: values[name] ?? null };
      }
      const proof = proveInclusion(
        row.leafIndex,
        size,
        s.path.map((j) => hashes[j]!),
      );
      yield {
        type: 'event',
        event: toRecord(row),
        fields,
        receipt: {
          id: row.id,
          leafIndex: row.leafIndex,
          leafHash: hashes[s.leaf]!.toString('base64'),
          checkpoint: note,
          inclusionProof: {
            leafIndex: row.leafIndex,
            treeSize: size,
            hashes: proof.map((h) => h.toString('base64')),
          },
        },
      };
      count++;
    }
    after = rows[rows.length - 1]!.leafIndex;
    if (rows.length < pageSize) break;
  }
  yield { type: 'end', events: count };
}

/** The CSV columns, in order (docs/privacy.md §5). */
export const SUBJECT_CSV_COLUMNS = [
  'leafIndex',
  'id',
  'recordedAt',
  'timestamp',
  'action',
  'status',
  'principalId',
  'principalType',
  'targetResourceType',
  'targetResourceId',
  'patientId',
  'outcomeDescription',
  'dataClassification',
  'correlationId',
  'retentionPolicy',
  'eventVersion',
  'sessionContext',
  'details',
  'erasedFields',
  'leafHash',
  'treeSize',
  'inclusionProof',
  'checkpoint',
] as const;

/** One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF (quotes doubled). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** The text of one record in `format`; `first` says whether it is the first event (JSON commas). */
export function formatSubjectRecord(
  record: SubjectExportRecord,
  format: 'json' | 'ndjson' | 'csv',
  state: { events: number },
): string {
  if (format === 'ndjson') return JSON.stringify(record) + '\n';
  if (format === 'json') {
    if (record.type === 'checkpoint')
      return `{"checkpoint":${JSON.stringify({ ...record, type: undefined })},"events":[`;
    if (record.type === 'event')
      return (state.events++ === 0 ? '\n' : ',\n') + JSON.stringify({ ...record, type: undefined });
    return `\n],"count":${record.events}}\n`;
  }
  if (record.type === 'checkpoint') return SUBJECT_CSV_COLUMNS.join(',') + '\r\n';
  if (record.type === 'end') return '';
  const e = record.event as unknown as Record<string, unknown>;
  const proofColumns: Record<string, string> = {
    erasedFields: record.event.erasedFields.join(' '),
    treeSize: String(record.receipt.inclusionProof.treeSize),
    inclusionProof: record.receipt.inclusionProof.hashes.join(' '),
    checkpoint: record.receipt.checkpoint,
  };
  const cells = SUBJECT_CSV_COLUMNS.map((c) => proofColumns[c] ?? csvCell(e[c]));
  return cells.map(csvField).join(',') + '\r\n';
}

const subjectText = safeText(256);

/** Input of the subject export: exactly one identifier, and the format. */
export const subjectExportInputSchema = z
  .strictObject({
    patientId: subjectText.optional(),
    principalId: subjectText.optional(),
    targetResourceId: subjectText.optional(),
    correlationId: subjectText.optional(),
    format: z.enum(['json', 'ndjson', 'csv']).default('json'),
  })
  .refine((v) => IDENTIFIER_FIELDS.filter((f) => v[f] !== undefined).length === 1, {
    message:
      'give exactly one of patientId, principalId, targetResourceId, correlationId (a pseudonym is accepted)',
    path: ['patientId'],
  });
/** Parsed subject export input. */
export type SubjectExportInput = z.infer<typeof subjectExportInputSchema>;
