import { checkPolicies } from './policy';
import { validateSchema } from './schema';
import type { Violation } from './types';
import { POLICY_RULES } from './types';

/** Thrown when manifests break a rule; the message lists every violation. */
export class ManifestValidationError extends Error {
  /** The violations found. */
  public readonly violations: Violation[];

  constructor(label: string, violations: Violation[]) {
    super(`${label}: ${violations.length} manifest violation(s)\n${ManifestValidator.format(violations)}`);
    this.name = 'ManifestValidationError';
    this.violations = violations;
  }
}

/**
 * Offline validation of synthesized manifests: each object against the Kubernetes OpenAPI
 * schema (kubernetes-models) or a strict structural schema for the custom resources we emit,
 * then the policy rules across the whole set.
 */
export class ManifestValidator {
  /** Rule names and what each checks. */
  public static readonly RULES: { [rule: string]: string } = { ...POLICY_RULES };

  /**
   * Validates one deployable set of objects (everything applied together, e.g. one
   * environment), typically `chart.toJson()`.
   */
  public static validate(objects: { [key: string]: unknown }[]): Violation[] {
    return [...objects.flatMap(validateSchema), ...checkPolicies(objects)];
  }

  /** One line per violation: `[rule] Kind namespace/name: message`. */
  public static format(violations: Violation[]): string {
    return violations.map((v) => `[${v.rule}] ${v.object}: ${v.message}`).join('\n');
  }

  /** Throws {@link ManifestValidationError} unless `objects` pass every check. */
  public static assertValid(label: string, objects: { [key: string]: unknown }[]): void {
    const violations = ManifestValidator.validate(objects);
    if (violations.length > 0) throw new ManifestValidationError(label, violations);
  }

  private constructor() {}
}
