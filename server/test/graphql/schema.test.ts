/**
 * The GraphQL schema is generated from the operation table: every operation is a field, the
 * committed SDL matches it, and the document limits measure what they claim.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse, validate, type GraphQLSchema } from 'graphql';
import { createOperations } from '../../src/api/operations';
import { loadConfig } from '../../src/config';
import { limitRules, textNesting } from '../../src/graphql/limits';
import { buildGraphQLSchema, schemaSdl, SDL_PATH } from '../../src/graphql/schema';

const config = loadConfig({}, { roleSecrets: false });
const operations = createOperations({
  event: { maxBytes: config.EVENT_MAX_BYTES, maxDepth: config.EVENT_MAX_DEPTH, maxStringLength: config.EVENT_MAX_STRING_LENGTH, maxKeys: config.EVENT_MAX_KEYS },
});
const schema: GraphQLSchema = buildGraphQLSchema(operations);

describe('GraphQL schema', () => {
  it('matches the committed SDL (run `npm run docs:graphql` after changing an operation)', () => {
    const committed = fs.readFileSync(path.resolve(__dirname, '../../..', SDL_PATH), 'utf8');
    expect(committed).toBe(schemaSdl(operations));
  });

  it('exposes every query operation on Query and every mutation on Mutation, named by its id', () => {
    const entries = Object.entries(operations);
    const queries = entries.filter(([, op]) => op.kind === 'query').map(([id]) => id).sort();
    const mutations = entries.filter(([, op]) => op.kind === 'mutation').map(([id]) => id).sort();
    expect(Object.keys(schema.getQueryType()!.getFields()).sort()).toEqual(queries);
    expect(Object.keys(schema.getMutationType()!.getFields()).sort()).toEqual(mutations);
  });

  it('makes required input fields non-null and defaulted ones optional', () => {
    const args = Object.fromEntries(schema.getQueryType()!.getFields().eventsGetById!.args.map((a) => [a.name, String(a.type)]));
    expect(args).toEqual({ id: 'String!', withProof: 'Boolean' });
    const leaves = Object.fromEntries(schema.getQueryType()!.getFields().ledgerLeaves!.args.map((a) => [a.name, String(a.type)]));
    expect(leaves).toEqual({ start: 'SafeInt!', end: 'SafeInt!' });
  });
});

describe('GraphQL document limits', () => {
  const check = (query: string, limits = { maxDepth: 3, maxComplexity: 40, maxAliases: 1 }) =>
    validate(schema, parse(query), limitRules(limits)).map((e) => e.message);

  it('measures depth through fragments and inline fragments', () => {
    expect(check('{ eventsGetById(id: "x") { event { id } } }')).toEqual([]);
    expect(check('query Q { eventsGetById(id: "x") { inclusionProof { hashes } ... on EventsGetById { event { id } } } }')).toEqual([]);
    expect(check('{ eventsGetById(id: "x") { ...F } } fragment F on EventsGetById { event { details } checkpoint { note } }')).toEqual([]);
    expect(check('{ ledgerKeys { keys { keyId } } }', { maxDepth: 2, maxComplexity: 100, maxAliases: 0 })).toEqual([
      'the operation is 3 levels deep; the limit is 2 (GRAPHQL_MAX_DEPTH)',
    ]);
  });

  it('counts 1 per field and 10 per operation, expanding each fragment where it is spread', () => {
    // ledgerKeys (1 + 10) + keys (1) + keyId (1) = 13
    expect(check('{ ledgerKeys { keys { keyId } } }', { maxDepth: 10, maxComplexity: 12, maxAliases: 0 })).toEqual([
      'the operation has complexity 13 (1 per field, 10 per operation called); the limit is 12 (GRAPHQL_MAX_COMPLEXITY)',
    ]);
    const spread = '{ a: ledgerKeys { ...K } b: ledgerKeys { ...K } } fragment K on LedgerKeys { keys { keyId name } }';
    // Each spread costs its fields again: 2 × (ledgerKeys 11 + keys 1 + keyId 1 + name 1) = 28.
    expect(check(spread, { maxDepth: 10, maxComplexity: 28, maxAliases: 5 })).toEqual([]);
    expect(check(spread, { maxDepth: 10, maxComplexity: 27, maxAliases: 5 })).toEqual([
      'the operation has complexity 28 (1 per field, 10 per operation called); the limit is 27 (GRAPHQL_MAX_COMPLEXITY)',
    ]);
  });

  it('measures a fragment cycle without looping (the specified rules report the cycle)', () => {
    const doc = parse('{ ledgerKeys { ...A } } fragment A on LedgerKeys { ...B } fragment B on LedgerKeys { ...A keys { keyId } }');
    const messages = validate(schema, doc).map((e) => e.message);
    expect(messages.join('\n')).toContain('Cannot spread fragment');
    expect(validate(schema, doc, limitRules({ maxDepth: 10, maxComplexity: 100, maxAliases: 0 }))).toEqual([]);
  });

  it('counts aliases across the document', () => {
    expect(check('{ a: ledgerKeys { keys { k: keyId } } }')).toEqual(['the document uses 2 aliases; the limit is 1 (GRAPHQL_MAX_ALIASES)']);
  });

  it('measures bracket nesting outside strings and comments', () => {
    expect(textNesting('{ a(b: "{{{{[[[[") { c } } # ((((((')).toBe(2);
    expect(textNesting('{ a(b: """ {{{ "" {{{ """) }')).toBe(2);
    expect(textNesting('[[[[[]]]]]')).toBe(5);
  });
});
