/** rootCallsOf: the operations a GraphQL document calls, as the rate limit counts them. */
import { parse } from 'graphql';
import { rootCallsOf } from '../../src/graphql/calls';

const calls = (doc: string, name?: string) => rootCallsOf(parse(doc), name);

describe('rootCallsOf', () => {
  it('counts each root field once, aliases as separate calls', () => {
    expect(calls('{ a }')).toBe(1);
    expect(calls('{ a b c }')).toBe(3);
    expect(calls('{ x: a y: a z: a }')).toBe(3);
  });
  it('merges root fields with the same response key (one execution)', () => {
    expect(calls('{ a a x: b x: b }')).toBe(2);
  });
  it('expands fragments and inline fragments at the root, each fragment once', () => {
    expect(calls('fragment F on Query { b c } { a ...F ...F ... on Query { d } }')).toBe(4);
    expect(calls('fragment F on Query { ...G x: a } fragment G on Query { ...F y: a } { ...F }')).toBe(2);
  });
  it('does not count __typename or introspection fields, and never less than one', () => {
    expect(calls('{ __typename a }')).toBe(1);
    expect(calls('{ __typename }')).toBe(1);
    expect(calls('{ __schema { types { name } } }')).toBe(1);
  });
  it('counts the named operation of a document with several, and one for an unknown or ambiguous choice', () => {
    const doc = 'query One { a } query Three { a b c }';
    expect(calls(doc, 'Three')).toBe(3);
    expect(calls(doc, 'One')).toBe(1);
    expect(calls(doc)).toBe(1);
    expect(calls(doc, 'Missing')).toBe(1);
  });
  it('counts nested selections not at all (they are fields of one call)', () => {
    expect(calls('{ a { b c { d } } }')).toBe(1);
  });
});
