/**
 * FHIR R4 at `/fhir` (server/src/fhir; docs/fhir.md): `GET /metadata` (public), `POST /AuditEvent`,
 * `POST /` (batch or transaction Bundle), `GET /AuditEvent/:id`, `GET /AuditEvent?…`. Bodies in and
 * out are `application/fhir+json`; every error is an OperationOutcome with the matching HTTP status
 * whose issues name the FHIRPath of the problem. Permissions are those of the REST twins
 * (`audit.events:create` to append, `audit.events:read` to read and search); the tenant is the
 * credential's organization; reads are audited like REST reads.
 */
import express, { Router, type ErrorRequestHandler, type Request, type Response } from 'express';
import { recordRead } from '../api/accountability';
import type { Services } from '../api/context';
import type { RateLimiter } from '../cache/rate-limiter';
import { AppError, ERROR_STATUS, type AppErrorCode, type FieldIssue } from '../errors';
import { capabilityStatement } from '../fhir/capability';
import type { AuditEventResource } from '../fhir/mapping';
import { SearchParameterError } from '../fhir/search';
import { FhirError, type BundleEntryResult } from '../fhir/service';
import type { FhirIssue } from '../fhir/validate';
import { authenticate, declaredBodyLimit, rateLimit, requireAccess, requireCredential, stateOf, type Authenticator, type ErrorReply } from './middleware';

/** The media type of every FHIR answer. */
export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

const ISSUE_CODE: Record<AppErrorCode, string> = {
  BAD_REQUEST: 'invalid',
  UNAUTHORIZED: 'login',
  FORBIDDEN: 'forbidden',
  NOT_FOUND: 'not-found',
  CONFLICT: 'conflict',
  PAYLOAD_TOO_LARGE: 'too-costly',
  TOO_MANY_REQUESTS: 'throttled',
  UNAVAILABLE: 'transient',
  NOT_IMPLEMENTED: 'not-supported',
  INTERNAL: 'exception',
};

/** An OperationOutcome of issues. */
export function operationOutcome(issues: Array<{ severity?: string; code: string; expression?: string; message: string }>): Record<string, unknown> {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({
      severity: i.severity ?? 'error',
      code: i.code,
      details: { text: i.message },
      ...(i.expression && i.expression !== '(root)' ? { expression: [i.expression] } : {}),
    })),
  };
}

function send(res: Response, status: number, body: unknown): void {
  res.status(status).type(FHIR_JSON).send(JSON.stringify(body));
}

/** An AppError (or a middleware's refusal) as an OperationOutcome. */
function sendAppError(res: Response, code: AppErrorCode, message: string, issues: FieldIssue[] = []): void {
  const list = issues.length > 0 ? issues.map((i) => ({ code: ISSUE_CODE[code], expression: i.path, message: i.message })) : [{ code: ISSUE_CODE[code], message }];
  send(res, ERROR_STATUS[code].http, operationOutcome(list));
}

const fhirReply: ErrorReply = (_req, res, code, message, issues) => sendAppError(res, code, message, issues);

/** What the FHIR routes need from the app. */
export interface FhirRoutesDeps {
  auth: Authenticator;
  rateLimiter: RateLimiter | null;
  bodyLimitBytes: number;
}

/** The public base URL of the FHIR endpoint as the client reached it. */
function baseOf(req: Request): string {
  return `${req.protocol}://${req.get('host') ?? 'localhost'}${req.baseUrl}`;
}

function issuesOf(issues: FhirIssue[]) {
  return issues.map((i) => ({ severity: i.severity, code: i.code, expression: i.expression, message: i.message }));
}

/** Headers of an appended AuditEvent: where it is, and its receipt (base64 JSON, the REST receipt). */
function created(res: Response, req: Request, resource: AuditEventResource, receipt: object): void {
  const id = resource.id as string;
  res.setHeader('location', `${baseOf(req)}/AuditEvent/${id}/_history/1`);
  res.setHeader('etag', 'W/"1"');
  res.setHeader('x-audit-receipt', Buffer.from(JSON.stringify(receipt)).toString('base64'));
}

/** The query with pseudonyms in `patient`, `agent` and `entity` values (bare or as `Type/pseu_…`) resolved. */
async function resolvePseudonyms(privacy: Services['privacy'], org: string, query: Record<string, unknown>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { ...query };
  for (const name of ['patient', 'agent', 'entity']) {
    const raw = query[name];
    if (raw === undefined) continue;
    const values = (Array.isArray(raw) ? raw : [raw]).map(String);
    out[name] = await Promise.all(
      values.map(async (value) => {
        const parts = await Promise.all(
          value.split(',').map(async (v) => {
            const slash = v.lastIndexOf('/');
            const [prefix, id] = slash < 0 ? ['', v] : [v.slice(0, slash + 1), v.slice(slash + 1)];
            return prefix + ((await privacy.resolveFilter(org, [id]))?.[0] ?? id);
          }),
        );
        return parts.join(',');
      }),
    );
  }
  return out;
}

/** The `/fhir` router. */
export function fhirRouter(deps: FhirRoutesDeps): Router {
  const r = Router();
  const startedAt = new Date().toISOString();
  r.get('/metadata', requireAccess('public'), (req, res) => send(res, 200, capabilityStatement(startedAt, baseOf(req))));

  r.use(
    authenticate(deps.auth, fhirReply),
    requireCredential(fhirReply),
    rateLimit(deps.rateLimiter, fhirReply),
    declaredBodyLimit(deps.bodyLimitBytes, fhirReply),
    (req, res, next) => {
      // A body must be FHIR JSON (or plain JSON); anything else is refused before it is read.
      if (req.method === 'POST' && !req.is(['application/fhir+json', 'application/json'])) {
        return send(res, 415, operationOutcome([{ code: 'not-supported', message: 'send application/fhir+json' }]));
      }
      next();
    },
    express.json({ type: ['application/fhir+json', 'application/json'], limit: deps.bodyLimitBytes, strict: true }),
  );

  r.post('/AuditEvent', requireAccess('audit.events:create'), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const { resource, receipt } = await state.services.fhir.create(state.principal!.organizationId, req.body);
    created(res, req, resource, receipt);
    send(res, 201, resource);
  });

  r.post('/', requireAccess('audit.events:create'), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const { type, entries } = await state.services.fhir.bundle(state.principal!.organizationId, req.body);
    send(res, 200, {
      resourceType: 'Bundle',
      type,
      entry: entries.map((e: BundleEntryResult) => ({
        ...(e.resource ? { fullUrl: `${baseOf(req)}/AuditEvent/${e.resource.id as string}`, resource: e.resource } : {}),
        response: {
          status: e.status,
          ...(e.resource ? { location: `AuditEvent/${e.resource.id as string}/_history/1`, etag: 'W/"1"', lastModified: (e.resource.meta as { lastUpdated: string }).lastUpdated } : {}),
          ...(e.issues ? { outcome: operationOutcome(issuesOf(e.issues)) } : {}),
        },
      })),
    });
  });

  r.get('/AuditEvent/:id', requireAccess('audit.events:read'), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const principal = state.principal!;
    const id = String(req.params.id);
    const view = await state.services.privacy.viewFor(principal);
    const [resource] = await Promise.all([state.services.fhir.read(principal.organizationId, id, view), recordRead({ ...state, principal }, 'read', 'fhir.AuditEvent.read', { id })]);
    await view.flush();
    res.setHeader('etag', 'W/"1"');
    send(res, 200, resource);
  });

  r.get('/AuditEvent', requireAccess('audit.events:read'), async (req: Request, res: Response) => {
    const state = stateOf(req);
    const principal = state.principal!;
    const query = req.query as Record<string, unknown>;
    const view = await state.services.privacy.viewFor(principal);
    // Pseudonyms a caller was shown may be searched by (patient, agent, entity).
    const search = state.services.fhir.parseSearch(await resolvePseudonyms(state.services.privacy, principal.organizationId, query));
    const patients = search.params.filter(([n]) => n === 'patient').map(([, v]) => v);
    const [page] = await Promise.all([
      state.services.fhir.search(principal.organizationId, search, view),
      recordRead({ ...state, principal }, 'read', 'fhir.AuditEvent.search', { search: Object.fromEntries(search.params), ...(patients.length === 1 ? { patientId: patients[0] } : {}) }),
    ]);
    await view.flush();
    const base = baseOf(req);
    // Links repeat the parameters as the caller gave them (pseudonyms stay pseudonyms).
    const shown = state.services.fhir.parseSearch(query).params;
    const qs = (extra: Array<[string, string]>) => new URLSearchParams([...shown, ...extra]).toString();
    send(res, 200, {
      resourceType: 'Bundle',
      type: 'searchset',
      link: [
        { relation: 'self', url: `${base}/AuditEvent?${qs(search.cursor ? [['_cursor', String(query._cursor)]] : [])}` },
        ...(page.next ? [{ relation: 'next', url: `${base}/AuditEvent?${qs([['_cursor', page.next]])}` }] : []),
      ],
      entry: page.resources.map((resource) => ({ fullUrl: `${base}/AuditEvent/${resource.id as string}`, resource, search: { mode: 'match' } })),
    });
  });

  // Anything else under /fhir: not a route of this server.
  r.use((req, res) => send(res, 404, operationOutcome([{ code: 'not-supported', message: `no route ${req.method} ${req.baseUrl}${req.path}` }])));

  const errors: ErrorRequestHandler = (err, req, res, _next) => {
    if (err instanceof FhirError) return send(res, err.status, operationOutcome(issuesOf(err.issues)));
    if (err instanceof SearchParameterError) return send(res, 400, operationOutcome([{ code: 'not-supported', expression: err.parameter, message: err.message }]));
    if (err instanceof AppError) return sendAppError(res, err.code, err.message, err.issues);
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') return sendAppError(res, 'PAYLOAD_TOO_LARGE', `request body is over ${deps.bodyLimitBytes} bytes`);
    if (type === 'entity.parse.failed') return send(res, 400, operationOutcome([{ code: 'structure', message: 'request body is not valid JSON' }]));
    if (type !== undefined) return send(res, 400, operationOutcome([{ code: 'structure', message: 'malformed request' }]));
    stateOf(req).logger.error({ err }, 'internal error');
    return sendAppError(res, 'INTERNAL', 'internal error');
  };
  r.use(errors);
  return r;
}
