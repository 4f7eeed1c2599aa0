/**
 * In-process callers of the event service hand it parsed input, exactly as the API adapters do:
 * the event schema (for the default limits) is the only parser.
 */
import { DEFAULT_EVENT_LIMITS } from '../../src/events/limits';
import { eventInputSchemaFor, parseBulkItem, type BulkItem } from '../../src/events/schema';

const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

/** Raw events parsed into bulk items. */
export function bulkItems(raws: unknown[]): BulkItem[] {
  return raws.map((raw) => parseBulkItem(schema, raw));
}
