/**
 * Schema building blocks for every text and instant that reaches the database or a commitment,
 * shared by all input schemas so no field can forget a rule:
 *
 * - Text must be well-formed Unicode (no lone surrogates): RFC 8785 §3.1 requires I-JSON
 *   (RFC 7493 §2.1), UTF-8 cannot encode a lone surrogate, and drivers would silently replace it.
 * - Text must not contain NUL (U+0000): PostgreSQL `text` and `jsonb` cannot store it.
 * - A text column value must not begin with U+FEFF: PGlite (the embedded default) decodes each
 *   column with a `TextDecoder` that drops a leading byte-order mark, so the value read back would
 *   differ from the committed one (found by the fuzz suite). Inside `details` (jsonb) it is fine.
 * - Instants must lie in 0001-01-01T00:00:00.000Z … 9999-12-31T23:59:59.999Z after offset
 *   normalization: RFC 3339 §5.6 has four-digit years, the leaf form (docs/ledger-spec.md) is
 *   RFC 3339 UTC, and PostgreSQL has no year 0000.
 */
import { z } from 'zod';

declare global {
  interface String {
    /** ES2024; present in Node 20. */
    isWellFormed(): boolean;
  }
}

/** Why a text is unsafe to store or canonicalize, or null when it is fine. */
export function unsafeTextReason(s: string): string | null {
  if (!s.isWellFormed()) return 'contains a lone surrogate (not well-formed Unicode, RFC 8785 §3.1)';
  if (s.includes('\u0000')) return 'contains a NUL character, which cannot be stored';
  return null;
}

/** A string that is well-formed Unicode and free of NUL. */
export function safeString() {
  return z.string().superRefine((s, ctx) => {
    const reason = unsafeTextReason(s);
    if (reason) ctx.addIssue({ code: 'custom', message: reason });
  });
}

/** Non-empty safe text of at most `max` UTF-16 code units, for a text column. */
export function safeText(max: number, min = 1) {
  return z
    .string()
    .min(min)
    .max(max)
    .superRefine((s, ctx) => {
      const reason = unsafeTextReason(s) ?? (s.startsWith('\ufeff') ? 'must not begin with U+FEFF (a byte-order mark)' : null);
      if (reason) ctx.addIssue({ code: 'custom', message: reason });
    });
}

/** Earliest storable instant (0001-01-01T00:00:00.000Z), in epoch milliseconds. */
export const MIN_INSTANT_MS = Date.parse('0001-01-01T00:00:00.000Z');
/** Latest storable instant (9999-12-31T23:59:59.999Z), in epoch milliseconds. */
export const MAX_INSTANT_MS = Date.parse('9999-12-31T23:59:59.999Z');

/** Whether `ms` is an instant the ledger and the database can both represent. */
export function isStorableInstant(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_INSTANT_MS && ms <= MAX_INSTANT_MS;
}

/**
 * An RFC 3339 date-time with offset whose UTC instant is storable (see {@link isStorableInstant}).
 * `9999-12-31T23:59:59-23:59` is a well-formed string of year 10000 once normalized: rejected here.
 */
export function instantSchema() {
  return z.iso.datetime({ offset: true }).superRefine((s, ctx) => {
    if (!isStorableInstant(Date.parse(s))) {
      ctx.addIssue({ code: 'custom', message: 'must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z once converted to UTC' });
    }
  });
}

/** One problem found by {@link jsonShapeIssue}. */
export interface ShapeIssue {
  path: Array<string | number>;
  message: string;
}

/**
 * Deepest nesting any API input may have before it reaches a schema. It protects recursive code
 * (validators, `JSON.stringify`) from exhausting the stack; the configurable, per-field limits
 * (e.g. `EVENT_MAX_DEPTH` for `details`, at most 64) are checked by the schemas below this.
 */
export const MAX_INPUT_DEPTH = 100;

/**
 * Checks the nesting depth of a raw parsed value iteratively (an explicit stack), so input nested
 * thousands of levels deep is refused with the path where it got too deep instead of overflowing
 * the call stack. The root container is depth 1.
 */
export function jsonShapeIssue(value: unknown, maxDepth = MAX_INPUT_DEPTH): ShapeIssue | null {
  // Paths are rebuilt only for the one offending node: each node keeps its key and its parent's
  // index into `nodes` (-1 = the root).
  const nodes: Array<{ key: string | number; parent: number }> = [];
  const stack: Array<{ value: unknown; depth: number; node: number }> = [{ value, depth: 1, node: -1 }];
  while (stack.length > 0) {
    const item = stack.pop()!;
    const v = item.value;
    if (v === null || typeof v !== 'object') continue;
    if (item.depth > maxDepth) {
      const path: Array<string | number> = [];
      for (let i = item.node; i >= 0; i = nodes[i]!.parent) path.unshift(nodes[i]!.key);
      return { path, message: `nesting deeper than ${maxDepth} levels` };
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    for (const [key, child] of entries) {
      if (child === null || typeof child !== 'object') continue;
      nodes.push({ key, parent: item.node });
      stack.push({ value: child, depth: item.depth + 1, node: nodes.length - 1 });
    }
  }
  return null;
}
