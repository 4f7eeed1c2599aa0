/**
 * REST parameters derived from an operation's input schema. Query and path parameters arrive as
 * strings, so each field of the input gets a string schema that converts it (integers, `true` /
 * `false`, comma-separated lists, a nested object flattened into its members); the converted
 * object is then parsed by the operation's own input schema. The REST adapter parses with these
 * schemas and the OpenAPI document is generated from them, so the two cannot disagree.
 */
import { z } from 'zod';

/** One REST parameter. */
export interface RestParam {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  /** Parses the string form into the value the input schema expects. */
  schema: z.ZodType;
  /** Where the value goes in the operation input (`['dateRange', 'from']`). */
  target: string[];
  /** `form` lists are comma-separated (OpenAPI `style: form, explode: false`). */
  list: boolean;
}

const INTEGER = /^-?\d{1,16}$/;
const DECIMAL = /^-?\d{1,16}(\.\d{1,16})?$/;

/** Longest raw list accepted before splitting, and most items kept: a list cannot flood a 400. */
const MAX_LIST_CHARS = 64 * 1024;

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema as z.ZodType & { def: { type: string; innerType?: z.ZodType } };
  while (
    (s.def.type === 'optional' || s.def.type === 'default' || s.def.type === 'nullable') &&
    s.def.innerType
  ) {
    s = s.def.innerType;
  }
  return s;
}

function describe(field: z.ZodType, extra: string): string {
  const json = z.toJSONSchema(field, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  const parts = [extra];
  if (typeof json.minimum === 'number') parts.push(`minimum ${json.minimum}`);
  if (typeof json.maximum === 'number') parts.push(`maximum ${json.maximum}`);
  if (json.default !== undefined) parts.push(`default ${JSON.stringify(json.default)}`);
  if (typeof json.description === 'string') parts.push(json.description);
  return parts.join('; ');
}

/** The string schema of one scalar field, or null when the field is a string already. */
function stringForm(field: z.ZodType): { schema: z.ZodType; list: boolean } | null {
  const base = unwrap(field) as z.ZodType & { def: { type: string; element?: z.ZodType } };
  const type = base.def.type;
  if (type === 'number') {
    const integer = (z.toJSONSchema(base, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>).type === 'integer';
    return {
      schema: integer
        ? z.string().regex(INTEGER, 'must be an integer').transform(Number).meta({ description: describe(field, 'integer') })
        : z.string().regex(DECIMAL, 'must be a number').transform(Number).meta({ description: describe(field, 'number') }),
      list: false,
    };
  }
  if (type === 'boolean') {
    return {
      schema: z
        .enum(['true', 'false'])
        .transform((v) => v === 'true')
        .meta({ description: describe(field, 'boolean') }),
      list: false,
    };
  }
  if (type === 'array') {
    const item = z.toJSONSchema(base.def.element!, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    const max = (z.toJSONSchema(base, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>)
      .maxItems;
    const limit = typeof max === 'number' ? max : 100;
    const kind = Array.isArray(item.enum) ? `each one of ${item.enum.join(', ')}` : 'values';
    return {
      schema: z
        .union([z.string(), z.array(z.string())])
        .transform((v, ctx) => {
          const text = Array.isArray(v) ? v.join(',') : v;
          // Reject before splitting: 5,000 commas must be one issue, not 5,000.
          const count = text.length > MAX_LIST_CHARS ? Infinity : text.split(',').length;
          if (count > limit) {
            ctx.addIssue({ code: 'custom', message: `at most ${limit} comma-separated values` });
            return z.NEVER;
          }
          return text.split(',');
        })
        .meta({ type: 'string', description: `comma-separated list of at most ${limit} ${kind}` }),
      list: true,
    };
  }
  return null;
}

/** The parameters of an operation whose input travels in the path and the query string. */
export function restParams(input: z.ZodType, pathParams: string[]): RestParam[] {
  const object = unwrap(input) as z.ZodType & { def: { type: string }; shape?: Record<string, z.ZodType> };
  if (object.def.type !== 'object' || !object.shape)
    throw new Error('a GET/DELETE operation needs an object input');
  const params: RestParam[] = [];
  const add = (name: string, field: z.ZodType, target: string[], parentOptional: boolean) => {
    const required = !parentOptional && !field.safeParse(undefined).success;
    const form = stringForm(field);
    params.push({
      name,
      in: pathParams.includes(name) ? 'path' : 'query',
      required: required || pathParams.includes(name),
      schema: form ? form.schema : unwrap(field),
      target,
      list: form?.list ?? false,
    });
  };
  for (const [name, field] of Object.entries(object.shape)) {
    const base = unwrap(field) as z.ZodType & { def: { type: string }; shape?: Record<string, z.ZodType> };
    if (base.def.type === 'object' && base.shape) {
      // A nested object (dateRange) is flattened: `?from=…&to=…`.
      const optional = field.safeParse(undefined).success;
      for (const [child, f] of Object.entries(base.shape)) add(child, f, [name, child], optional);
    } else add(name, field, [name], false);
  }
  return params;
}

/** The result of parsing a request's parameters into an operation input. */
export type RestParseResult =
  | { ok: true; input: unknown }
  | { ok: false; issues: Array<{ path: PropertyKey[]; message: string; code?: string; keys?: string[] }> };

/**
 * Converts path and query parameters to the operation input and parses it with the operation's
 * schema. Issue paths are given in parameter names (`from`, not `dateRange.from`).
 */
export function parseRestParams(
  params: RestParam[],
  input: z.ZodType,
  raw: Record<string, unknown>,
): RestParseResult {
  const issues: Array<{ path: PropertyKey[]; message: string; code?: string; keys?: string[] }> = [];
  const known = new Set(params.map((p) => p.name));
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length > 0)
    issues.push({ path: [], message: 'unknown parameter', code: 'unrecognized_keys', keys: unknown });
  const value: Record<string, unknown> = {};
  for (const p of params) {
    const v = raw[p.name];
    if (v === undefined) continue;
    const parsed = p.schema.safeParse(v);
    if (!parsed.success) {
      issues.push(...parsed.error.issues.map((i) => ({ path: [p.name, ...i.path], message: i.message })));
      continue;
    }
    let at = value;
    for (const key of p.target.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
    at[p.target.at(-1)!] = parsed.data;
  }
  if (issues.length > 0) return { ok: false, issues };
  const result = input.safeParse(value);
  if (result.success) return { ok: true, input: result.data };
  // Map input paths back to parameter names: ['dateRange', 'from'] → ['from'].
  return {
    ok: false,
    issues: result.error.issues.map((i) => {
      const p = params.find((q) => q.target.length > 1 && q.target.every((t, k) => i.path[k] === t));
      return p ? { ...i, path: [p.name, ...i.path.slice(p.target.length)] } : i;
    }),
  };
}
