/**
 * Renders the README's configuration table from {@link configSchema}, so the documentation can
 * never drift from what the server reads (a test compares them; `npm run docs:config` rewrites it).
 */
import type { z } from 'zod';
import { configSchema, FILE_VARIABLES } from './config';

function defaultOf(schema: z.ZodType): string {
  const result = schema.safeParse(undefined);
  if (!result.success || result.data === undefined) return '—';
  const v = result.data;
  if (Array.isArray(v)) return v.length === 0 ? '(empty)' : v.join(',');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** The Markdown table: variable, default, description. */
export function renderConfigTable(): string {
  const fromFile = new Set<string>(FILE_VARIABLES);
  const rows = Object.entries(configSchema.shape).map(([name, schema]) => {
    const description =
      ((schema as z.ZodType).description ?? '') +
      (fromFile.has(name) ? `; or \`${name}_FILE\`: a file holding the value (Docker/Kubernetes secrets), not both` : '');
    return `| \`${name}\` | \`${defaultOf(schema as z.ZodType)}\` | ${description.replace(/\|/g, '\\|')} |`;
  });
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

/** Markers around the generated table in README.md. */
export const CONFIG_TABLE_MARKERS = ['<!-- config-table:start -->', '<!-- config-table:end -->'] as const;

/** README text with the table between the markers replaced. */
export function withConfigTable(readme: string): string {
  const [start, end] = CONFIG_TABLE_MARKERS;
  const i = readme.indexOf(start);
  const j = readme.indexOf(end);
  if (i < 0 || j < i) throw new Error('README.md lacks the config-table markers');
  return readme.slice(0, i + start.length) + '\n' + renderConfigTable() + '\n' + readme.slice(j);
}
