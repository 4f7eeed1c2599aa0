import { checkPolicies } from './policy';
import { validateSchema } from './schema';
import type { KubeObject, Violation } from './types';

export { POLICY_RULES, describeObject } from './types';
export type { KubeObject, PolicyRuleName, Violation } from './types';
export { knownTypes, validateSchema } from './schema';
export { checkPolicies } from './policy';

/**
 * Validates one deployable set of objects (everything applied together, e.g. one environment):
 * each object against its OpenAPI schema, then the policy rules across the set.
 */
export function validateManifests(objects: readonly KubeObject[]): Violation[] {
  return [...objects.flatMap(validateSchema), ...checkPolicies(objects)];
}

/** One line per violation: `[rule] Kind namespace/name: message`. */
export function formatViolations(violations: readonly Violation[]): string {
  return violations.map((v) => `[${v.rule}] ${v.object}: ${v.message}`).join('\n');
}

/** Thrown when manifests break a rule; the message lists every violation. */
export class ManifestValidationError extends Error {
  /** The violations found. */
  public readonly violations: readonly Violation[];

  constructor(label: string, violations: readonly Violation[]) {
    super(`${label}: ${violations.length} manifest violation(s)\n${formatViolations(violations)}`);
    this.name = 'ManifestValidationError';
    this.violations = violations;
  }
}

/** Throws {@link ManifestValidationError} unless `objects` pass every check. */
export function assertValidManifests(label: string, objects: readonly KubeObject[]): void {
  const violations = validateManifests(objects);
  if (violations.length > 0) throw new ManifestValidationError(label, violations);
}
