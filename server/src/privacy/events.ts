/**
 * The events the privacy and retention services append to the log themselves (`privacy.*`,
 * `legal.hold.*`, `retention.*`). They pass the same schema as producers' events.
 */
import { DEFAULT_EVENT_LIMITS } from '../events/limits';
import { eventInputSchemaFor, type EventInput } from '../events/schema';

const schema = eventInputSchemaFor(DEFAULT_EVENT_LIMITS);

/** Who asked: the principal fields of the events appended for them. */
export interface Requester {
  principalId: string;
  principalType: string;
  /** The request id, when there is one. */
  correlationId?: string;
}

/** The requester of work the server does on its own (retention runs). */
export const SYSTEM_REQUESTER: Requester = { principalId: 'system:retention', principalType: 'system' };

/** Builds and checks an internal event. */
export function internalEvent(body: Record<string, unknown>): EventInput {
  return schema.parse(body);
}
