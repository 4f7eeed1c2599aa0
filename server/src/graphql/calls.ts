/**
 * How many operations a GraphQL request calls, for the rate limit: the distinct response keys of
 * the root selection of the operation it runs (fragments and inline fragments at the root
 * expanded; `__typename` and introspection fields are not calls). Root fields with the same
 * response key merge into one execution (GraphQL spec §6.3.2 CollectFields), so they count once;
 * `@skip`/`@include` are not evaluated, which can only over-count. A request that cannot be parsed
 * or names no runnable operation counts once (it is refused later, with the error it deserves).
 */
import { Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import type { Request } from 'express';
import { boundedParse } from './limits';

/** The response keys of `operationName`'s root selection (or of the only operation). */
export function rootCallsOf(document: DocumentNode, operationName?: string | null): number {
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  const operation = operationName ? operations.find((o) => o.name?.value === operationName) : operations.length === 1 ? operations[0] : undefined;
  if (!operation) return 1;
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((f) => [f.name.value, f]),
  );
  const keys = new Set<string>();
  const expanded = new Set<string>();
  const collect = (set: SelectionSetNode): void => {
    for (const s of set.selections) {
      if (s.kind === Kind.FIELD) {
        if (!s.name.value.startsWith('__')) keys.add(s.alias?.value ?? s.name.value);
      } else if (s.kind === Kind.INLINE_FRAGMENT) collect(s.selectionSet);
      else if (!expanded.has(s.name.value)) {
        expanded.add(s.name.value);
        const fragment = fragments.get(s.name.value);
        if (fragment) collect(fragment.selectionSet);
      }
    }
  };
  collect(operation.selectionSet);
  return Math.max(1, keys.size);
}

/** The calls of a /graphql request whose body has been read as text (POST) or whose query string holds it (GET). */
export function graphqlCallsOf(req: Request): number {
  try {
    let query: unknown;
    let operationName: unknown;
    if (req.method === 'GET') {
      ({ query, operationName } = req.query as Record<string, unknown>);
    } else if (typeof req.body === 'string' && req.body.length > 0) {
      ({ query, operationName } = JSON.parse(req.body) as Record<string, unknown>);
    }
    if (typeof query !== 'string') return 1;
    return rootCallsOf(boundedParse(query), typeof operationName === 'string' ? operationName : null);
  } catch {
    return 1;
  }
}
