/**
 * The GraphQL schema, generated from the operation table (api/operations.ts): every `query`
 * operation is a field of `Query`, every `mutation` one of `Mutation`, named by its operation id.
 * Argument and result types come from the JSON Schema of the operation's zod input and output
 * (the same document the OpenAPI description is built from), so no type is written twice. The
 * resolver of every field is {@link resolveOperation}: the operation's own permission, input
 * parser, service call and output parser, exactly as REST and tRPC run them.
 */
import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLError,
  GraphQLFloat,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLScalarType,
  GraphQLSchema,
  GraphQLString,
  Kind,
  printSchema,
  type GraphQLFieldConfigArgumentMap,
  type GraphQLFieldConfigMap,
  type GraphQLInputFieldConfigMap,
  type GraphQLInputType,
  type GraphQLOutputType,
  type ValueNode,
} from 'graphql';
import { z } from 'zod';
import type { ApiContext } from '../api/context';
import type { AnyOperation, OperationId, Operations } from '../api/operations';
import { can, deniedMessage } from '../auth/permissions';
import { databaseUnavailable, isDatabaseUnavailable } from '../db/errors';
import { AppError, validationError, type AppErrorCode, type FieldIssue } from '../errors';

/** A JSON Schema node, as zod's `toJSONSchema` writes it. */
interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  description?: string;
  default?: unknown;
  $ref?: string;
}

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** Any JSON value (event `details`, committed field values, session context maps). */
export const JsonScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'Any JSON value; validated by the operation that receives it',
  serialize: (v) => v,
  parseValue: (v) => v,
  parseLiteral: (ast, variables) => literalValue(ast, variables ?? undefined),
});

/** An integer that may exceed 32 bits (leaf indexes, tree sizes, counts): exact up to 2^53 − 1. */
export const SafeIntScalar = new GraphQLScalarType({
  name: 'SafeInt',
  description: 'An integer between −(2^53 − 1) and 2^53 − 1 (leaf indexes, tree sizes and counts can exceed 32 bits)',
  serialize: (v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new GraphQLError('SafeInt cannot represent a non-integer value');
    return v;
  },
  parseValue: (v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new GraphQLError('SafeInt must be an integer between −(2^53 − 1) and 2^53 − 1');
    return v;
  },
  parseLiteral: (ast) => {
    const n = ast.kind === Kind.INT ? Number(ast.value) : NaN;
    if (!Number.isSafeInteger(n)) throw new GraphQLError('SafeInt must be an integer between −(2^53 − 1) and 2^53 − 1');
    return n;
  },
});

/** The value of a literal (iterative nesting is bounded before parsing: see limits.ts). */
function literalValue(ast: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.ENUM:
      return ast.value;
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literalValue(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalValue(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
  }
}

/** `eventsGetById` + `inclusionProof` → `EventsGetByIdInclusionProof`. */
function typeName(parts: string[]): string {
  return parts.map((p) => p.replace(/[^_0-9A-Za-z]/g, '')).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('');
}

/** Builds named types once: structurally equal objects and enums share the first name given. */
class TypeBuilder {
  private readonly outputs = new Map<string, GraphQLOutputType>();
  private readonly inputs = new Map<string, GraphQLInputType>();
  private readonly enums = new Map<string, GraphQLEnumType>();
  private readonly names = new Set<string>(['Query', 'Mutation', 'JSON', 'SafeInt']);

  private unique(name: string): string {
    let n = name;
    for (let i = 2; this.names.has(n); i++) n = `${name}${i}`;
    this.names.add(n);
    return n;
  }

  private scalar(s: JsonSchema, name: string[]): GraphQLOutputType & GraphQLInputType {
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    if (s.enum && s.enum.length > 0 && s.enum.every((v) => typeof v === 'string' && NAME.test(v) && !['true', 'false', 'null'].includes(v))) {
      const values = s.enum as string[];
      const key = values.join('|');
      let e = this.enums.get(key);
      if (!e) {
        e = new GraphQLEnumType({ name: this.unique(typeName(name)), values: Object.fromEntries(values.map((v) => [v, { value: v }])) });
        this.enums.set(key, e);
      }
      return e;
    }
    switch (type) {
      case 'string':
        return GraphQLString;
      case 'boolean':
        return GraphQLBoolean;
      case 'number':
        return GraphQLFloat;
      case 'integer': {
        const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : -Infinity);
        const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : Infinity);
        return lo >= INT32_MIN && hi <= INT32_MAX ? GraphQLInt : SafeIntScalar;
      }
      case 'object':
      case 'array':
      case 'null':
      case undefined:
      default:
        return JsonScalar;
    }
  }

  /** The schema without `null` alternatives, and whether null was one of them. */
  private static unwrapNull(s: JsonSchema): { schema: JsonSchema; nullable: boolean } {
    const alternatives = s.anyOf ?? s.oneOf;
    if (alternatives) {
      const rest = alternatives.filter((a) => a.type !== 'null');
      if (rest.length === 1) return { schema: { ...rest[0]!, description: s.description ?? rest[0]!.description }, nullable: rest.length < alternatives.length };
      return { schema: { ...s, anyOf: rest, oneOf: undefined }, nullable: rest.length < alternatives.length };
    }
    if (Array.isArray(s.type) && s.type.includes('null')) {
      const rest = s.type.filter((t) => t !== 'null');
      return { schema: { ...s, type: rest.length === 1 ? rest[0] : rest }, nullable: true };
    }
    return { schema: s, nullable: false };
  }

  private static isObject(s: JsonSchema): boolean {
    return s.type === 'object' && s.properties !== undefined && Object.keys(s.properties).length > 0 && Object.keys(s.properties).every((k) => NAME.test(k));
  }

  /** The (nullable) output type of `s`. */
  output(s: JsonSchema, name: string[]): GraphQLOutputType {
    const { schema } = TypeBuilder.unwrapNull(s);
    if (schema.$ref) return JsonScalar;
    if (schema.anyOf) {
      // A union of objects (a bulk item's outcome) is one object with every branch's fields.
      if (schema.anyOf.every((a) => TypeBuilder.isObject(a))) return this.output(mergeObjects(schema.anyOf), name);
      const kinds = new Set(schema.anyOf.map((a) => this.scalar(a, name)));
      return kinds.size === 1 ? [...kinds][0]! : JsonScalar;
    }
    if (schema.type === 'array' && schema.items) return new GraphQLList(this.required(this.output(schema.items, [...name, 'Item']), schema.items));
    if (!TypeBuilder.isObject(schema)) return this.scalar(schema, name);
    const key = JSON.stringify(schema);
    const known = this.outputs.get(key);
    if (known) return known;
    const required = new Set(schema.required ?? []);
    const props = Object.entries(schema.properties!);
    const type: GraphQLObjectType = new GraphQLObjectType({
      name: this.unique(typeName(name)),
      description: schema.description,
      fields: () => {
        const fields: GraphQLFieldConfigMap<unknown, unknown> = {};
        for (const [field, fs] of props) {
          const t = this.output(fs, [...name, field]);
          fields[field] = { type: required.has(field) && !TypeBuilder.unwrapNull(fs).nullable ? new GraphQLNonNull(t) : t, description: fs.description };
        }
        return fields;
      },
    });
    this.outputs.set(key, type);
    return type;
  }

  /** The (nullable) input type of `s`. */
  input(s: JsonSchema, name: string[]): GraphQLInputType {
    const { schema } = TypeBuilder.unwrapNull(s);
    if (schema.$ref) return JsonScalar;
    if (schema.anyOf) {
      const kinds = new Set(schema.anyOf.map((a) => (TypeBuilder.isObject(a) || a.type === 'array' ? JsonScalar : this.scalar(a, name))));
      return kinds.size === 1 ? [...kinds][0]! : JsonScalar;
    }
    if (schema.type === 'array' && schema.items) return new GraphQLList(new GraphQLNonNull(this.input(schema.items, [...name, 'Item'])));
    if (!TypeBuilder.isObject(schema)) return this.scalar(schema, name);
    const key = JSON.stringify(schema);
    const known = this.inputs.get(key);
    if (known) return known;
    const type = new GraphQLInputObjectType({
      name: this.unique(typeName([...name, 'Input'])),
      description: schema.description,
      fields: () => this.inputFields(schema, name),
    });
    this.inputs.set(key, type);
    return type;
  }

  /** Fields of an input object (or the arguments of an operation): required unless optional or defaulted. */
  inputFields(schema: JsonSchema, name: string[]): GraphQLInputFieldConfigMap & GraphQLFieldConfigArgumentMap {
    const required = new Set(schema.required ?? []);
    const fields: GraphQLInputFieldConfigMap = {};
    for (const [field, fs] of Object.entries(schema.properties ?? {})) {
      const t = this.input(fs, [...name, field]);
      const optional = !required.has(field) || fs.default !== undefined || TypeBuilder.unwrapNull(fs).nullable;
      fields[field] = { type: optional ? t : new GraphQLNonNull(t), description: describe(fs) };
    }
    return fields;
  }

  private required(t: GraphQLOutputType, s: JsonSchema): GraphQLOutputType {
    return TypeBuilder.unwrapNull(s).nullable || t instanceof GraphQLNonNull ? t : new GraphQLNonNull(t);
  }
}

/** A field's description, with the default the operation applies when it is omitted. */
function describe(s: JsonSchema): string | undefined {
  const parts = [s.description, s.default !== undefined ? `default: ${JSON.stringify(s.default)}` : undefined].filter(Boolean);
  return parts.length > 0 ? parts.join('; ') : undefined;
}

/** One object schema holding the fields of every branch; a field is required only if every branch requires it. */
function mergeObjects(branches: JsonSchema[]): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const b of branches) {
    for (const [k, v] of Object.entries(b.properties!)) {
      const { const: _c, ...rest } = v;
      properties[k] ??= rest;
    }
  }
  const required = Object.keys(properties).filter((k) => branches.every((b) => b.required?.includes(k)));
  return { type: 'object', properties, required, additionalProperties: false };
}

/** The JSON Schema of a zod schema as the given side (input: what a client sends; output: what it receives). */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema;
}

/** A GraphQL error carrying the operation's error code (and field issues for a 400). */
export function graphQLErrorOf(code: AppErrorCode, message: string, issues: FieldIssue[] = []): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...(issues.length > 0 ? { issues } : {}) } });
}

/**
 * Runs one operation for a GraphQL field: authentication, the operation's permission, its input
 * schema (arguments given as null count as omitted), the service call and its output schema.
 */
export async function resolveOperation(op: AnyOperation, ctx: ApiContext, args: Record<string, unknown>): Promise<unknown> {
  if (!ctx.principal) throw graphQLErrorOf('UNAUTHORIZED', 'a valid API key is required');
  if (!can(ctx.principal.role, op.permission)) throw graphQLErrorOf('FORBIDDEN', deniedMessage(ctx.principal.role, op.permission));
  const raw = Object.fromEntries(Object.entries(args).filter(([, v]) => v !== null && v !== undefined));
  const parsed = op.input.safeParse(raw);
  if (!parsed.success) {
    const err = validationError(parsed.error.issues);
    throw graphQLErrorOf(err.code, err.message, err.issues);
  }
  try {
    const out = await (op.run as (c: ApiContext & { principal: NonNullable<ApiContext['principal']> }, i: unknown) => Promise<unknown>)(
      { ...ctx, principal: ctx.principal },
      parsed.data,
    );
    return op.output.parse(out);
  } catch (err) {
    if (err instanceof AppError) throw graphQLErrorOf(err.code, err.message, err.issues);
    if (isDatabaseUnavailable(err)) throw graphQLErrorOf('UNAVAILABLE', databaseUnavailable().message);
    throw err;
  }
}

/** The schema for an operation table. */
export function buildGraphQLSchema(operations: Operations): GraphQLSchema {
  const types = new TypeBuilder();
  const query: GraphQLFieldConfigMap<unknown, ApiContext> = {};
  const mutation: GraphQLFieldConfigMap<unknown, ApiContext> = {};
  for (const [id, op] of Object.entries(operations) as Array<[OperationId, AnyOperation]>) {
    const input = jsonSchemaOf(op.input, 'input');
    const output = jsonSchemaOf(op.output, 'output');
    if (input.type !== 'object') throw new Error(`${id}: a GraphQL field needs an object input`);
    const outType = types.output(output, [id]);
    (op.kind === 'query' ? query : mutation)[id] = {
      description: `${op.summary}. Requires ${op.permission}.`,
      args: types.inputFields(input, [id]),
      type: new GraphQLNonNull(outType),
      resolve: (_root, args: Record<string, unknown>, ctx) => resolveOperation(op, ctx, args),
    };
  }
  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: query }),
    mutation: Object.keys(mutation).length > 0 ? new GraphQLObjectType({ name: 'Mutation', fields: mutation }) : undefined,
  });
}

/** Where the schema is committed as SDL (relative to the repository root). */
export const SDL_PATH = 'docs/schema.graphql';

/** The SDL of the schema for the default configuration's limits, as committed at {@link SDL_PATH}. */
export function schemaSdl(operations: Operations): string {
  return `# Generated from server/src/api/operations.ts by \`npm run docs:graphql\`; a test fails when it drifts.\n\n${printSchema(buildGraphQLSchema(operations))}\n`;
}
