/**
 * The OpenAPI 3.1 document of the REST API, generated from the operation table's zod schemas
 * (JSON Schema 2020-12, which OpenAPI 3.1 uses as its schema dialect).
 */
import { z } from 'zod';
import { operations, type AnyOperation } from '../api/operations';
import { exportBundleInputSchema } from '../export/schema';

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

function parametersOf(op: AnyOperation): JsonSchema[] {
  const params: JsonSchema[] = [];
  for (const m of op.rest.path.matchAll(/:([A-Za-z]+)/g)) {
    params.push({ name: m[1], in: 'path', required: true, schema: { type: 'string' } });
  }
  if (op.rest.method !== 'get') return params;
  const props = (schemaOf(op.docInput ?? op.input, 'input').properties ?? {}) as Record<string, JsonSchema>;
  for (const [name, schema] of Object.entries(props)) {
    if (params.some((p) => p.name === name)) continue;
    if (name === 'dateRange') {
      params.push({ name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } });
      params.push({ name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } });
      continue;
    }
    const array = schema.type === 'array';
    params.push({
      name,
      in: 'query',
      schema: array ? { type: 'string', description: 'comma-separated list' } : schema,
      ...(array ? { style: 'form', explode: false } : {}),
    });
  }
  return params;
}

/** Builds the document; `serverUrl` is where /api/v1 is served. */
export function openApiDocument(serverUrl = '/api/v1'): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [id, op] of Object.entries(operations) as Array<[string, AnyOperation]>) {
    const path = op.rest.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const status = String(op.rest.status ?? 200);
    paths[path] ??= {};
    paths[path][op.rest.method] = {
      operationId: id,
      summary: op.summary,
      'x-permission': op.permission,
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      parameters: parametersOf(op),
      ...(op.rest.method === 'post'
        ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(op.docInput ?? op.input, 'input') } } } }
        : {}),
      responses: {
        [status]: { description: 'success', content: { 'application/json': { schema: schemaOf(op.output, 'output') } } },
        '400': { description: 'invalid input; `issues` names every offending field', content: { 'application/json': { schema: errorSchema } } },
        '401': { description: 'missing or invalid API key', content: { 'application/json': { schema: errorSchema } } },
        '403': { description: 'the key’s role lacks the permission', content: { 'application/json': { schema: errorSchema } } },
        '429': { description: 'rate limited', content: { 'application/json': { schema: errorSchema } } },
      },
    };
  }
  // The streaming export (http/export.ts) is not in the operation table: it answers NDJSON.
  const exportParams = Object.entries((schemaOf(exportBundleInputSchema, 'input').properties ?? {}) as Record<string, JsonSchema>);
  paths['/ledger/export'] = {
    get: {
      operationId: 'ledgerExportBundle',
      summary: 'Stream an export bundle (docs/verification.md §3): committed events, checkpoints, consistency proofs, keys',
      'x-permission': 'audit.events:read',
      security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
      parameters: exportParams.map(([name, schema]) => ({ name, in: 'query', schema })),
      responses: {
        '200': { description: 'one JSON record per line', content: { 'application/x-ndjson': { schema: { type: 'string' } } } },
        '400': { description: 'invalid range; `issues` names the field', content: { 'application/json': { schema: errorSchema } } },
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
