/**
 * FHIR R4 AuditEvent over the event log: create (one resource, or a batch/transaction Bundle),
 * read and search. Every AuditEvent is validated against the R4 structure definitions and the
 * required bindings (validate.ts), mapped onto the event fields (mapping.ts) and appended through
 * the same event schema and ingest pipeline as any event, so it gets a receipt like any event.
 */
import type { Db } from '../db/client';
import { AppError, formatPath } from '../errors';
import type { EventLimits } from '../events/limits';
import { eventInputSchemaFor, type EventInput, type EventRecord, type Receipt } from '../events/schema';
import type { EventService } from '../events/service';
import { toRecord } from '../events/repository';
import { toAuditEvent, toEventBody, type AuditEventResource, type IdentifierView } from './mapping';
import { parseSearch, searchPage, type AuditEventSearch } from './search';
import { validateFhir, type FhirIssue } from './validate';

/** A FHIR-level failure: the HTTP status and the issues of its OperationOutcome. */
export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly issues: FhirIssue[],
  ) {
    super(issues.map((i) => `${i.expression}: ${i.message}`).join('; '));
  }
}

/** One entry of a batch/transaction response. */
export interface BundleEntryResult {
  ok: boolean;
  status: string;
  resource?: AuditEventResource;
  issues?: FhirIssue[];
  receipt?: Receipt;
}

/**
 * The nesting an AuditEvent needs inside `details.fhir`: R4 datatypes nest deeper than the
 * default `EVENT_MAX_DEPTH` (agent → who → identifier → type → coding is 9 levels below
 * `details`). FHIR input is bounded by its structure definitions, so the depth limit is raised
 * for it alone; every other limit (bytes, strings, keys) applies as configured.
 */
export const FHIR_MIN_DEPTH = 16;

/** AuditEvent create, read and search for one deployment. */
export class FhirService {
  private readonly schema: ReturnType<typeof eventInputSchemaFor>;

  constructor(
    private readonly db: Db,
    private readonly events: Pick<EventService, 'create' | 'bulkCreate' | 'getById'>,
    limits: EventLimits,
  ) {
    this.schema = eventInputSchemaFor({ ...limits, maxDepth: Math.max(limits.maxDepth, FHIR_MIN_DEPTH) });
  }

  /** Validates an AuditEvent and maps it to an event input, or names what is wrong. */
  prepare(resource: unknown, at = ''): { ok: true; input: EventInput; resource: AuditEventResource } | { ok: false; issues: FhirIssue[] } {
    const prefix = (e: string) => (at ? `${at}.${e.replace(/^AuditEvent\.?/, '')}`.replace(/\.$/, '') : e);
    const type = (resource as { resourceType?: unknown } | null)?.resourceType;
    if (typeof resource === 'object' && resource !== null && type !== 'AuditEvent') {
      return { ok: false, issues: [{ severity: 'error', code: 'invalid', expression: prefix('resourceType'), message: `expected an AuditEvent, got ${JSON.stringify(type)}` }] };
    }
    const issues = validateFhir(resource);
    if (issues.length > 0) return { ok: false, issues: issues.map((i) => ({ ...i, expression: at ? prefix(i.expression) : i.expression })) };
    const parsed = this.schema.safeParse(toEventBody(resource as AuditEventResource));
    if (!parsed.success) {
      // The event's own limits (size, string length): name the AuditEvent, and the event field.
      return {
        ok: false,
        issues: parsed.error.issues.slice(0, 20).map((i) => ({
          severity: 'error' as const,
          code: 'too-long' as const,
          expression: prefix('AuditEvent'),
          message: `${formatPath(i.path)}: ${i.message}`,
        })),
      };
    }
    return { ok: true, input: parsed.data, resource: resource as AuditEventResource };
  }

  /** Appends one AuditEvent; resolves after COMMIT with the stored resource and the receipt. */
  async create(org: string, body: unknown): Promise<{ resource: AuditEventResource; receipt: Receipt }> {
    const p = this.prepare(body);
    if (!p.ok) throw new FhirError(400, p.issues);
    const receipt = await this.events.create(org, p.input);
    return { resource: this.stored(p.input, receipt), receipt };
  }

  /** The resource as stored (what a read returns), with the full receipt in `meta`. */
  private stored(input: EventInput, r: Receipt): AuditEventResource {
    const record: EventRecord = { id: r.id, organizationId: '', recordedAt: r.recordedAt, leafIndex: r.leafIndex, leafHash: r.leafHash, erasedFields: [], details: input.details };
    return toAuditEvent(record, { treeSize: r.treeSize, rootHash: r.rootHash, checkpoint: r.checkpoint });
  }

  /**
   * A `batch` (each entry on its own) or `transaction` (every entry valid, or nothing appended)
   * Bundle of `POST AuditEvent` entries. Valid entries are appended in one bulk call (one group
   * commit), in order.
   */
  async bundle(org: string, bundle: unknown): Promise<{ type: 'batch-response' | 'transaction-response'; entries: BundleEntryResult[] }> {
    const issues = validateFhir(bundle);
    const b = bundle as { resourceType?: unknown; type?: unknown; entry?: unknown[] } | null;
    if (b?.resourceType !== 'Bundle') throw new FhirError(400, [{ severity: 'error', code: 'invalid', expression: 'resourceType', message: 'POST /fhir takes a Bundle' }]);
    if (b.type !== 'batch' && b.type !== 'transaction') {
      throw new FhirError(400, [{ severity: 'error', code: 'invalid', expression: 'Bundle.type', message: 'only batch and transaction Bundles are processed' }]);
    }
    // Structure problems outside the entries' resources fail the whole Bundle.
    const outside = issues.filter((i) => !/^Bundle\.entry\[\d+\]\.resource/.test(i.expression));
    if (outside.length > 0) throw new FhirError(400, outside);
    const entries = Array.isArray(b.entry) ? b.entry : [];
    const prepared = entries.map((raw, i) => {
      const e = raw as { request?: { method?: unknown; url?: unknown }; resource?: unknown };
      const at = `Bundle.entry[${i}]`;
      if (e.request?.method !== 'POST' || typeof e.request.url !== 'string' || !/^(?:.*\/)?AuditEvent(?:\?.*)?$/.test(e.request.url)) {
        return { ok: false as const, issues: [{ severity: 'error' as const, code: 'not-supported' as const, expression: `${at}.request`, message: 'only POST AuditEvent entries are supported' }] };
      }
      if (e.resource === undefined) return { ok: false as const, issues: [{ severity: 'error' as const, code: 'required' as const, expression: `${at}.resource`, message: 'a POST entry needs its resource' }] };
      return this.prepare(e.resource, `${at}.resource`);
    });
    if (b.type === 'transaction') {
      const bad = prepared.flatMap((p) => (p.ok ? [] : p.issues));
      if (bad.length > 0) throw new FhirError(400, bad);
    }
    const valid = prepared.flatMap((p, index) => (p.ok ? [{ index, p }] : []));
    const results = valid.length > 0 ? await this.events.bulkCreate(org, valid.map(({ p }) => ({ ok: true as const, input: p.input }))) : [];
    const out: BundleEntryResult[] = prepared.map((p) => (p.ok ? { ok: false, status: '500 Internal Server Error' } : { ok: false, status: '400 Bad Request', issues: p.issues }));
    results.forEach((r, k) => {
      const { index, p } = valid[k]!;
      if (r.ok) out[index] = { ok: true, status: '201 Created', resource: this.stored(p.input, r.receipt), receipt: r.receipt };
      else out[index] = { ok: false, status: r.error.code === 'BAD_REQUEST' ? '400 Bad Request' : '503 Service Unavailable', issues: [{ severity: 'error', code: 'invalid', expression: `Bundle.entry[${index}].resource`, message: r.error.message }] };
    });
    if (b.type === 'transaction' && out.some((e) => !e.ok)) {
      throw new FhirError(500, [{ severity: 'error', code: 'invalid', expression: 'Bundle', message: 'part of the transaction could not be appended; the entries answered 201 in other requests are in the log' }]);
    }
    return { type: b.type === 'batch' ? 'batch-response' : 'transaction-response', entries: out };
  }

  /** Any event of the organization as an AuditEvent. */
  async read(org: string, id: string, view?: IdentifierView): Promise<AuditEventResource> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw new AppError('NOT_FOUND', `no AuditEvent ${id}`);
    try {
      const { event } = await this.events.getById(org, id, false);
      return toAuditEvent(event, undefined, view);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') throw new AppError('NOT_FOUND', `no AuditEvent ${id}`);
      throw err;
    }
  }

  /** Parses search parameters (throws SearchParameterError naming the parameter). */
  parseSearch(query: Record<string, unknown>): AuditEventSearch {
    return parseSearch(query);
  }

  /** One page of a search. */
  async search(org: string, s: AuditEventSearch, view?: IdentifierView): Promise<{ resources: AuditEventResource[]; next: string | null }> {
    const { rows, next } = await searchPage(this.db, org, s);
    return { resources: rows.map((r) => toAuditEvent(toRecord(r), undefined, view)), next };
  }
}
