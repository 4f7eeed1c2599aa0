/**
 * Bounds on a GraphQL document, checked before anything executes: the nesting of its text (so the
 * recursive-descent parser never runs out of stack), its token count, and, as validation rules,
 * the depth of its selections, its complexity (every field costs 1, every operation it calls
 * costs {@link OPERATION_COST}) and its aliases. Fragments are expanded for depth and complexity,
 * once each (memoized), so a fragment "bomb" is measured without being walked exponentially.
 */
import {
  GraphQLError,
  Kind,
  parse,
  type ASTVisitor,
  type DocumentNode,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/** Limits of one GraphQL request (from configuration). */
export interface GraphQLLimits {
  /** Deepest selection nesting (`{ a { b } }` is 2). */
  maxDepth: number;
  /** Highest complexity: 1 per field selected, plus {@link OPERATION_COST} per operation called. */
  maxComplexity: number;
  /** Most aliases in one document. */
  maxAliases: number;
}

/** What calling one operation (a root field: one service call) adds to the complexity. */
export const OPERATION_COST = 10;
/** Most tokens the parser reads (a 1000-event bulk append fits when its events are variables). */
export const MAX_TOKENS = 20_000;
/** Deepest bracket nesting of the document text, checked before parsing. */
export const MAX_TEXT_NESTING = 64;

/** The deepest nesting of `{`, `[` and `(` outside strings and comments (an iterative scan). */
export function textNesting(source: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '#') {
      while (i < source.length && source[i] !== '\n' && source[i] !== '\r') i++;
    } else if (c === '"') {
      if (source.startsWith('"""', i)) {
        const end = source.indexOf('"""', i + 3);
        i = end === -1 ? source.length : end + 2;
      } else {
        for (i++; i < source.length && source[i] !== '"' && source[i] !== '\n'; i++) if (source[i] === '\\') i++;
      }
    } else if (c === '{' || c === '[' || c === '(') {
      max = Math.max(max, ++depth);
    } else if (c === '}' || c === ']' || c === ')') {
      depth--;
    }
  }
  return max;
}

/** `graphql.parse` with the text-nesting and token bounds. */
export function boundedParse(source: string): DocumentNode {
  const nesting = textNesting(source);
  if (nesting > MAX_TEXT_NESTING) {
    throw new GraphQLError(`the document nests ${nesting} levels of brackets; the limit is ${MAX_TEXT_NESTING}`, {
      extensions: { code: 'BAD_REQUEST' },
    });
  }
  try {
    return parse(source, { maxTokens: MAX_TOKENS, noLocation: false });
  } catch (err) {
    if (err instanceof GraphQLError) {
      if (/token limit/i.test(err.message)) {
        throw new GraphQLError(`the document has more than ${MAX_TOKENS} tokens; send large inputs as variables`, {
          extensions: { code: 'BAD_REQUEST' },
        });
      }
      throw err;
    }
    throw new GraphQLError('the document cannot be parsed', { extensions: { code: 'BAD_REQUEST' } });
  }
}

/** Depth and complexity of a selection set, fragments expanded once each. */
class Measure {
  private readonly memo = new Map<string, { depth: number; cost: number }>();
  private readonly active = new Set<string>();

  constructor(private readonly fragments: Map<string, FragmentDefinitionNode>) {}

  of(set: SelectionSetNode, root: boolean): { depth: number; cost: number } {
    let depth = 0;
    let cost = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        const inner = sel.selectionSet ? this.of(sel.selectionSet, false) : { depth: 0, cost: 0 };
        depth = Math.max(depth, inner.depth + 1);
        cost += 1 + inner.cost + (root && !sel.name.value.startsWith('__') ? OPERATION_COST : 0);
      } else {
        const inner = sel.kind === Kind.INLINE_FRAGMENT ? this.of(sel.selectionSet, root) : this.fragment(sel.name.value, root);
        depth = Math.max(depth, inner.depth);
        cost += inner.cost;
      }
    }
    return { depth, cost };
  }

  private fragment(name: string, root: boolean): { depth: number; cost: number } {
    const key = `${root ? 'r' : 'n'}:${name}`;
    const known = this.memo.get(key);
    if (known) return known;
    const def = this.fragments.get(name);
    // An unknown or cyclic fragment is reported by the specified rules; it measures as nothing here.
    if (!def || this.active.has(key)) return { depth: 0, cost: 0 };
    this.active.add(key);
    const m = this.of(def.selectionSet, root);
    this.active.delete(key);
    this.memo.set(key, m);
    return m;
  }
}

/** Validation rules enforcing `limits`, each with an error that names the limit and the measured value. */
export function limitRules(limits: GraphQLLimits): ValidationRule[] {
  const measured = (context: ValidationContext): ASTVisitor => ({
    Document(doc) {
      const fragments = new Map(doc.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
      const measure = new Measure(fragments);
      let aliases = 0;
      for (const def of doc.definitions) {
        if (def.kind === Kind.OPERATION_DEFINITION) {
          const { depth, cost } = measure.of(def.selectionSet, true);
          const name = def.name ? `operation ${def.name.value}` : 'the operation';
          if (depth > limits.maxDepth) {
            context.reportError(
              new GraphQLError(`${name} is ${depth} levels deep; the limit is ${limits.maxDepth} (GRAPHQL_MAX_DEPTH)`, { nodes: [def], extensions: { code: 'BAD_REQUEST' } }),
            );
          }
          if (cost > limits.maxComplexity) {
            context.reportError(
              new GraphQLError(
                `${name} has complexity ${cost} (1 per field, ${OPERATION_COST} per operation called); the limit is ${limits.maxComplexity} (GRAPHQL_MAX_COMPLEXITY)`,
                { nodes: [def], extensions: { code: 'BAD_REQUEST' } },
              ),
            );
          }
        }
      }
      // Aliases are counted in the text as written (each fragment once).
      const stack: SelectionSetNode[] = doc.definitions.flatMap((d) => ('selectionSet' in d && d.selectionSet ? [d.selectionSet] : []));
      for (let set = stack.pop(); set; set = stack.pop()) {
        for (const sel of set.selections) {
          if (sel.kind === Kind.FIELD && sel.alias) aliases++;
          if ('selectionSet' in sel && sel.selectionSet) stack.push(sel.selectionSet);
        }
      }
      if (aliases > limits.maxAliases) {
        context.reportError(
          new GraphQLError(`the document uses ${aliases} aliases; the limit is ${limits.maxAliases} (GRAPHQL_MAX_ALIASES)`, { extensions: { code: 'BAD_REQUEST' } }),
        );
      }
      return false;
    },
  });
  return [measured];
}
