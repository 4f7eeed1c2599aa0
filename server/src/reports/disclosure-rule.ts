/**
 * Which events an accounting of disclosures (HIPAA §164.528) lists, per organization. An event is
 * a disclosure when its action is one of `actions` or starts with one of `actionPrefixes`, or —
 * with `eventsWithRecipient` — when it names a recipient (`details.recipient`). It is then listed
 * unless its status is not `success` (nothing left the organization) or its purpose
 * (`details.purpose` or `details.purposeOfUse`) is one of `excludedPurposes`: the disclosures
 * §164.528(a)(1) exempts from the accounting (docs/reports.md has the list and the codes).
 */
import { z } from 'zod';
import { safeText } from '../util/safe-input';

/**
 * Purposes exempt from the accounting by default, §164.528(a)(1)(i)–(ix): our codes and the HL7
 * v3 PurposeOfUse codes producers send for the same purposes (FHIR `purposeOfEvent`).
 */
export const DEFAULT_EXCLUDED_PURPOSES = [
  // (i) treatment, payment, health care operations (§164.506)
  'treatment',
  'payment',
  'operations',
  'TREAT',
  'ETREAT',
  'HPAYMT',
  'HOPERAT',
  // (ii) to the individual about themselves (§164.502)
  'individual',
  'PATRQT',
  // (iii) incident to an otherwise permitted use or disclosure
  'incidental',
  // (iv) pursuant to an authorization (§164.508)
  'authorization',
  // (v) facility directory, persons involved in care, notification (§164.510)
  'directory',
  'notification',
  // (vi) national security or intelligence (§164.512(k)(2))
  'national-security',
  // (vii) correctional institutions, law enforcement custodial situations (§164.512(k)(5))
  'correctional',
  // (viii) part of a limited data set (§164.514(e))
  'limited-data-set',
] as const;

const code = safeText(128);

/** The rule as stored and as the API takes it. */
export const disclosureRuleSchema = z.strictObject({
  actionPrefixes: z.array(code).max(50).default(['disclosure.']).describe('an action starting with one of these is a disclosure'),
  actions: z.array(code).max(200).default([]).describe('these exact actions are disclosures'),
  eventsWithRecipient: z.boolean().default(true).describe('an event naming a recipient (details.recipient) is a disclosure'),
  excludedPurposes: z
    .array(code)
    .max(200)
    .default([...DEFAULT_EXCLUDED_PURPOSES])
    .describe('disclosures for these purposes (details.purpose / details.purposeOfUse) are not listed: §164.528(a)(1)'),
});
/** A disclosure rule (defaults applied). */
export type DisclosureRule = z.output<typeof disclosureRuleSchema>;

/** The rule of an organization that never set one. */
export const DEFAULT_DISCLOSURE_RULE: DisclosureRule = disclosureRuleSchema.parse({});

/** What an event holds that the rule looks at. */
export interface DisclosureCandidate {
  action: string | null;
  status: string | null;
  details: unknown;
}

/** Why an event is or is not listed. */
export type DisclosureDecision = 'listed' | 'not-a-disclosure' | 'not-successful' | 'excluded-purpose';

/** The recipient named by an event's details (a string, or an object with a display name and/or id). */
export function recipientOf(details: unknown): string | null {
  const r = objectOf(details)?.recipient;
  if (typeof r === 'string') return r === '' ? null : r;
  const o = objectOf(r);
  if (!o) return null;
  const name = [o.name, o.display].find((v): v is string => typeof v === 'string' && v !== '');
  const id = [o.id, o.reference, o.identifier].find((v): v is string => typeof v === 'string' && v !== '');
  if (name && id) return `${name} (${id})`;
  return name ?? id ?? null;
}

/** The purposes named by an event's details (`purpose`, `purposeOfUse`: a string or a list of them). */
export function purposesOf(details: unknown): string[] {
  const o = objectOf(details);
  if (!o) return [];
  return [o.purpose, o.purposeOfUse].flatMap((v) => (typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []));
}

/** Decides whether an event is listed in the accounting. */
export function decide(rule: DisclosureRule, e: DisclosureCandidate): DisclosureDecision {
  const action = e.action ?? '';
  const byAction = rule.actions.includes(action) || rule.actionPrefixes.some((p) => action.startsWith(p));
  const byRecipient = rule.eventsWithRecipient && recipientOf(e.details) !== null;
  if (!byAction && !byRecipient) return 'not-a-disclosure';
  if (e.status !== 'success') return 'not-successful';
  const excluded = new Set(rule.excludedPurposes);
  if (purposesOf(e.details).some((p) => excluded.has(p))) return 'excluded-purpose';
  return 'listed';
}

function objectOf(v: unknown): Record<string, unknown> | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}
