/**
 * Configurable limits on one event and the pure check of its free-form `details`, used as a
 * refinement of the event schema (events/schema.ts), so the schema stays the only parser.
 */
import { unsafeTextReason } from '../util/safe-input';

/** The limits, from configuration (`EVENT_MAX_*`). */
export interface EventLimits {
  maxBytes: number;
  maxDepth: number;
  maxStringLength: number;
  maxKeys: number;
}

/** The configuration defaults (see config.ts). */
export const DEFAULT_EVENT_LIMITS: EventLimits = { maxBytes: 32 * 1024, maxDepth: 8, maxStringLength: 4096, maxKeys: 256 };

/** One violated rule, with its path relative to `details`. */
export interface LimitIssue {
  path: (string | number)[];
  message: string;
}

/** Issues collected for one `details` value at most (the walk stops there; a 400 lists fewer). */
const MAX_ISSUES = 100;

function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === null || proto === Object.prototype;
}

/**
 * Walks `details` once, iteratively (an explicit stack, so no input can overflow the call
 * stack): it must be a JSON object whose nesting (details itself = depth 1), key counts and
 * string lengths are within the limits, whose strings and keys are well-formed Unicode without
 * NUL (RFC 8785 §3.1; PostgreSQL `jsonb` cannot store U+0000), whose numbers are finite (JSON has
 * no NaN or Infinity, RFC 8259 §6) and which has no `__proto__` key (JavaScript consumers would
 * turn it into a prototype).
 */
export function detailsIssues(details: unknown, limits: EventLimits): LimitIssue[] {
  const issues: LimitIssue[] = [];
  if (details === null || typeof details !== 'object' || Array.isArray(details) || !isPlainObject(details)) {
    return [{ path: [], message: 'must be a JSON object' }];
  }
  const stack: Array<{ value: unknown; path: (string | number)[]; depth: number }> = [{ value: details, path: [], depth: 1 }];
  while (stack.length > 0 && issues.length < MAX_ISSUES) {
    const { value, path, depth } = stack.pop()!;
    switch (typeof value) {
      case 'string': {
        if (value.length > limits.maxStringLength) {
          issues.push({ path, message: `string is ${value.length} characters; the limit is ${limits.maxStringLength}` });
        }
        const reason = unsafeTextReason(value);
        if (reason) issues.push({ path, message: reason });
        continue;
      }
      case 'number':
        if (!Number.isFinite(value)) issues.push({ path, message: 'number is not finite' });
        continue;
      case 'boolean':
        continue;
      case 'object':
        break;
      case 'undefined':
      case 'bigint':
      case 'symbol':
      case 'function':
        issues.push({ path, message: 'is not a JSON value' });
        continue;
    }
    if (value === null) continue;
    if (!Array.isArray(value) && !isPlainObject(value)) {
      issues.push({ path, message: 'is not a JSON value' });
      continue;
    }
    if (depth > limits.maxDepth) {
      issues.push({ path, message: `nesting depth ${depth} exceeds the limit of ${limits.maxDepth}` });
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i] as unknown, path: [...path, i], depth: depth + 1 });
      continue;
    }
    const keys = Object.keys(value);
    if (keys.length > limits.maxKeys) {
      issues.push({ path, message: `object has ${keys.length} keys; the limit is ${limits.maxKeys}` });
      continue;
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const reason =
        key === '__proto__'
          ? 'the key "__proto__" is reserved'
          : key.length > limits.maxStringLength
            ? `key is ${key.length} characters; the limit is ${limits.maxStringLength}`
            : unsafeTextReason(key);
      if (reason) {
        // The key itself may be unprintable or huge: name its position instead of echoing it.
        issues.push({ path: key === '__proto__' ? [...path, key] : [...path, `(key ${i})`], message: reason });
        continue;
      }
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key], depth: depth + 1 });
    }
  }
  return issues;
}
