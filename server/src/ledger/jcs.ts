/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): one byte sequence per JSON value, so a commitment
 * to a value can be recomputed by anyone from the value alone.
 *
 * - Objects: members sorted by key, comparing keys as arrays of UTF-16 code units (§3.2.3); this
 *   is exactly JavaScript's default `Array.prototype.sort` order for strings.
 * - Numbers: the ECMAScript Number-to-String algorithm (§3.2.2.3), which is `String(n)`
 *   (`-0` → `"0"`, `1e21` → `"1e+21"`); NaN and ±Infinity are not JSON and are rejected.
 * - Strings: `JSON.stringify` escaping (§3.2.2.2): `\"`, `\\`, `\b \f \n \r \t`, other control
 *   characters as `\u00xx` (lower-case hex), everything else literal. Lone surrogates cannot be
 *   encoded as UTF-8 and are rejected (I-JSON, RFC 7493 §2.1, which RFC 8785 §3.1 requires).
 * - No whitespace (§3.2.1).
 *
 * Input is a JavaScript value (what `JSON.parse` returns), not text. Only JSON-shaped values are
 * accepted: `null`, booleans, finite numbers, strings, arrays and plain objects. Object members
 * whose value is `undefined` are omitted, as `JSON.stringify` does; everything else that is not
 * JSON (an `undefined` array element, functions, symbols, bigints, `Date`, `Map`, class instances,
 * cycles) throws a `TypeError` naming the path of the offending value (`$.a[2].b`).
 *
 * The walk is iterative (an explicit stack), so deeply nested input cannot overflow the call stack.
 */

/** Work item of the iterative serializer: emit text, serialize a value, or leave a container. */
type Task =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'value'; readonly value: unknown; readonly path: string }
  | { readonly kind: 'leave'; readonly container: object };

/** Serializes a JSON value in the RFC 8785 canonical form (returns a string; encode it as UTF-8). */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  const stack: Task[] = [{ kind: 'value', value, path: '$' }];
  const ancestors = new Set<object>();

  for (let task = stack.pop(); task !== undefined; task = stack.pop()) {
    if (task.kind === 'text') {
      out.push(task.text);
      continue;
    }
    if (task.kind === 'leave') {
      ancestors.delete(task.container);
      continue;
    }
    const { value: v, path } = task;
    switch (typeof v) {
      case 'string':
        out.push(serializeString(v, path));
        continue;
      case 'number':
        if (!Number.isFinite(v))
          throw new TypeError(`JCS: ${path} is ${String(v)}, which JSON cannot represent`);
        out.push(String(v)); // ECMAScript Number::toString; String(-0) === '0'
        continue;
      case 'boolean':
        out.push(v ? 'true' : 'false');
        continue;
      case 'undefined':
        throw new TypeError(`JCS: ${path} is undefined, which JSON cannot represent`);
      case 'bigint':
      case 'symbol':
      case 'function':
        throw new TypeError(`JCS: ${path} is a ${typeof v}, which JSON cannot represent`);
      case 'object':
        break;
    }
    if (v === null) {
      out.push('null');
      continue;
    }
    if (ancestors.has(v)) throw new TypeError(`JCS: ${path} is a circular reference`);

    if (Array.isArray(v)) {
      ancestors.add(v);
      // Pushed in reverse so they pop in order: '[' v0 ',' v1 … ']' then leave.
      stack.push({ kind: 'leave', container: v }, { kind: 'text', text: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        const element: unknown = v[i];
        const elementPath = `${path}[${i}]`;
        if (element === undefined) {
          throw new TypeError(`JCS: ${elementPath} is undefined (or a hole), which JSON cannot represent`);
        }
        stack.push({ kind: 'value', value: element, path: elementPath });
        if (i > 0) stack.push({ kind: 'text', text: ',' });
      }
      out.push('[');
      continue;
    }

    // A plain object's prototype is null or *an* Object.prototype: objects parsed in another
    // realm (worker, vm context) have their own, so compare shapes rather than identity.
    const proto: unknown = Object.getPrototypeOf(v);
    const plain =
      proto === null ||
      (Object.getPrototypeOf(proto) === null && Object.prototype.toString.call(v) === '[object Object]');
    if (!plain) {
      const ctor = (v as { constructor?: { name?: unknown } }).constructor?.name;
      throw new TypeError(
        `JCS: ${path} is a non-plain object (${typeof ctor === 'string' ? ctor : 'unknown class'}), which JSON cannot represent`,
      );
    }
    if (Object.getOwnPropertySymbols(v).some((s) => Object.prototype.propertyIsEnumerable.call(v, s))) {
      throw new TypeError(`JCS: ${path} has a symbol-keyed property, which JSON cannot represent`);
    }
    const record = v as Record<string, unknown>;
    // §3.2.3: sort by UTF-16 code units (the default sort order of JavaScript strings).
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort();
    ancestors.add(v);
    stack.push({ kind: 'leave', container: v }, { kind: 'text', text: '}' });
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const memberPath = `${path}${memberAccessor(key)}`;
      stack.push({ kind: 'value', value: record[key], path: memberPath });
      stack.push({ kind: 'text', text: `${serializeString(key, memberPath)}:` });
      if (i > 0) stack.push({ kind: 'text', text: ',' });
    }
    out.push('{');
  }
  return out.join('');
}

/** In `u` mode a well-formed pair is one code point, so only an unpaired surrogate is in category Cs. */
const LONE_SURROGATE = /\p{Cs}/u;

/** `JSON.stringify` string escaping is exactly RFC 8785 §3.2.2.2 once lone surrogates are excluded. */
function serializeString(s: string, path: string): string {
  if (LONE_SURROGATE.test(s))
    throw new TypeError(`JCS: ${path} contains a lone surrogate, which UTF-8 cannot encode`);
  return JSON.stringify(s);
}

/** Path segment for error messages: `.name` for identifier-like keys, `["…"]` otherwise. */
function memberAccessor(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
