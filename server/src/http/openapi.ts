/**
 * The OpenAPI 3.1 document of the REST API, generated from the schemas the server parses with
 * (JSON Schema 2020-12, which OpenAPI 3.1 uses as its schema dialect): request bodies from the
 * operations' input schemas, path and query parameters from the string schemas derived from them
 * (api/rest-input.ts). Each operation carries an example input; a test sends every example.
 */
import { z } from 'zod';
import type { AnyOperation, Operations } from '../api/operations';
import { restParams, type RestParam } from '../api/rest-input';
import { exportBundleInputSchema } from '../export/schema';
import { reportInputSchema } from '../reports/schema';
import { paramsOf } from './rest';

type JsonSchema = Record<string, unknown>;

function schemaOf(s: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
  delete json.$schema;
  return json;
}

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message', 'issues', 'requestId'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
        requestId: { type: 'string' },
      },
    },
  },
};

/** The string form of an example value of a parameter (OpenAPI `style: form`, lists unexploded). */
function exampleOf(p: RestParam, example: unknown): string | undefined {
  let v = example;
  for (const key of p.target) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.join(',');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** An `x-exactly-one-of` rule of the input schema (parameters that exclude each other). */
function oneOfOf(op: AnyOperation): JsonSchema {
  const rule = schemaOf(op.input, 'input')['x-exactly-one-of'];
  return Array.isArray(rule) ? { 'x-exactly-one-of': rule } : {};
}

/** OpenAPI parameter objects of a GET/DELETE operation. */
export function parametersOf(params: RestParam[], example: unknown): JsonSchema[] {
  return params.map((p) => {
    const ex = exampleOf(p, example);
    return {
      name: p.name,
      in: p.in,
      required: p.required,
      schema: schemaOf(p.schema, 'input'),
      ...(p.list ? { style: 'form', explode: false } : {}),
      ...(ex === undefined ? {} : { example: ex }),
    };
  });
}

/** Builds the document; `serverUrl` is where /api/v1 is served. */
export function openApiDocument(operations: Operations, serverUrl = '/api/v1'): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [id, op] of Object.entries(operations) as Array<[string, AnyOperation]>) {
    const params = paramsOf(op);
    const path = op.rest.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const status = String(op.rest.status ?? 200);
    paths[path] ??= {};
    paths[path][op.rest.method] = {
      operationId: id,
      summary: op.summary,
      'x-permission': op.permission,
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      parameters: params ? parametersOf(params, op.example) : [],
      ...(params ? oneOfOf(op) : {}),
      ...(params
        ? {}
        : { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.input, 'input'), example: op.example } } } }),
      responses: {
        [status]: { description: 'success', content: { 'application/json': { schema: schemaOf(op.output, 'output') } } },
        '400': { description: 'invalid input; `issues` names every offending field', content: { 'application/json': { schema: errorSchema } } },
        '401': { description: 'missing or invalid API key', content: { 'application/json': { schema: errorSchema } } },
        '403': { description: 'the key’s role lacks the permission', content: { 'application/json': { schema: errorSchema } } },
        ...(params ? {} : { '413': { description: 'body larger than HTTP_BODY_LIMIT_BYTES', content: { 'application/json': { schema: errorSchema } } } }),
        '429': { description: 'rate limited', content: { 'application/json': { schema: errorSchema } } },
        '503': { description: 'the database is unavailable or the server is shutting down; the message says whether anything may have been stored (then retry with the same idempotencyKey)', content: { 'application/json': { schema: errorSchema } } },
      },
    };
  }
  // The streaming export (http/export.ts) is not in the operation table: it answers NDJSON.
  paths['/ledger/export'] = {
    get: {
      operationId: 'ledgerExportBundle',
      summary: 'Stream an export bundle (docs/verification.md §3): committed events, checkpoints, consistency proofs, keys',
      'x-permission': 'audit.events:read',
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      parameters: parametersOf(restParams(exportBundleInputSchema, []), { start: 0, end: 1 }),
      responses: {
        '200': { description: 'one JSON record per line', content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
        '400': { description: 'invalid range; `issues` names the field', content: { 'application/json': { schema: errorSchema } } },
        '401': { description: 'missing or invalid API key', content: { 'application/json': { schema: errorSchema } } },
        '403': { description: 'the key’s role lacks the permission', content: { 'application/json': { schema: errorSchema } } },
      },
    },
  };
  // The reports (http/reports.ts) stream JSON, CSV or PDF: outside the operation table too.
  paths['/reports'] = {
    post: {
      operationId: 'reportsCreate',
      summary: 'A compliance report (patient-access, user-activity, accounting-of-disclosures, integrity) as JSON, CSV or PDF, computed against the latest signed checkpoint',
      'x-permission': 'audit.reports:create',
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      parameters: [],
      requestBody: {
        required: true,
        content: { 'application/json': { schema: schemaOf(reportInputSchema, 'input'), example: { kind: 'patient-access', patientId: 'patient-42', format: 'json' } } },
      },
      responses: {
        '200': {
          description: 'the report (docs/reports.md); headers x-report-checkpoint-tree-size and x-report-checkpoint-root-hash name the checkpoint',
          content: {
            'application/json': { schema: { type: 'object' } },
            'text/csv': { schema: { type: 'string' } },
            'application/pdf': { schema: { type: 'string', format: 'binary' } },
          },
        },
        '400': { description: 'invalid input; `issues` names every offending field', content: { 'application/json': { schema: errorSchema } } },
        '401': { description: 'missing or invalid API key', content: { 'application/json': { schema: errorSchema } } },
        '403': { description: 'the key’s role lacks the permission', content: { 'application/json': { schema: errorSchema } } },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: 'SMEDREC Audit API',
      version: '1.0.0',
      description: 'Verifiable audit log: every write returns a signed checkpoint and an RFC 9162 inclusion proof.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer' },
        apiKeyHeader: { type: 'apiKey', in: 'header', name: 'x-api-key' },
      },
    },
    paths,
  };
}
