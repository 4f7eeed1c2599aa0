import { ManifestValidator } from './manifest-validator';
import type { KubeObject, Violation } from './types';

export { ManifestValidationError, ManifestValidator } from './manifest-validator';
export { POLICY_RULES, describeObject } from './types';
export type { KubeObject, PolicyRuleName, Violation } from './types';
export { knownTypes, validateSchema } from './schema';
export { checkPolicies } from './policy';

/** Function form of {@link ManifestValidator.validate}. */
export function validateManifests(objects: readonly KubeObject[]): Violation[] {
  return ManifestValidator.validate([...objects]);
}

/** One line per violation: `[rule] Kind namespace/name: message`. */
export function formatViolations(violations: readonly Violation[]): string {
  return ManifestValidator.format([...violations]);
}

/** Function form of {@link ManifestValidator.assertValid}. */
export function assertValidManifests(label: string, objects: readonly KubeObject[]): void {
  ManifestValidator.assertValid(label, [...objects]);
}
