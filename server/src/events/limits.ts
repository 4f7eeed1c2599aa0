/**
 * Configurable size limits on one event, checked after the schema (pure). Every violation is
 * reported with its field path so a 400 can name all of them at once.
 */

/** The limits, from configuration. */
export interface EventLimits {
  maxBytes: number;
  maxDepth: number;
  maxStringLength: number;
  maxKeys: number;
}

/** One violated limit. */
export interface LimitIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Walks the (already schema-valid) event once. Depth counts `details` itself as depth 1.
 * NUL characters are rejected because PostgreSQL text and jsonb cannot store them.
 */
export function checkEventLimits(event: Record<string, unknown>, limits: EventLimits): LimitIssue[] {
  const issues: LimitIssue[] = [];
  const bytes = Buffer.byteLength(JSON.stringify(event), 'utf8');
  if (bytes > limits.maxBytes) {
    issues.push({ path: [], message: `event is ${bytes} bytes; the limit is ${limits.maxBytes}` });
  }
  const stack: Array<{ value: unknown; path: (string | number)[]; depth: number }> = [
    { value: event, path: [], depth: 0 },
  ];
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.length > limits.maxStringLength) {
        issues.push({ path, message: `string is ${value.length} characters; the limit is ${limits.maxStringLength}` });
      }
      if (value.includes('\u0000')) issues.push({ path, message: 'NUL characters are not allowed' });
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    const inDetails = path[0] === 'details';
    if (inDetails && depth > limits.maxDepth) {
      issues.push({ path, message: `nesting depth ${depth} exceeds the limit of ${limits.maxDepth}` });
      continue;
    }
    const entries: Array<[string | number, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value as Record<string, unknown>);
    if (!Array.isArray(value)) {
      if (entries.length > limits.maxKeys) {
        issues.push({ path, message: `object has ${entries.length} keys; the limit is ${limits.maxKeys}` });
      }
      for (const [k] of entries) {
        if (String(k).includes('\u0000')) issues.push({ path: [...path, k], message: 'NUL characters are not allowed in keys' });
      }
    }
    for (const [k, v] of entries) stack.push({ value: v, path: [...path, k], depth: depth + 1 });
  }
  return issues;
}
