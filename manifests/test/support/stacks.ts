import * as os from 'node:os';
import * as path from 'node:path';
import { appObjects, buildEnvironment, ENVIRONMENTS } from '../../src/environments';
import type { EnvironmentSettings } from '../../src/environments';
import type { KubeObject } from '../../src/validate';

/** Settings of a named environment from ENVIRONMENTS. */
export function environment(name: string): EnvironmentSettings {
  const env = ENVIRONMENTS.find((e) => e.name === name);
  if (!env) throw new Error(`no environment ${name}`);
  return env;
}

/**
 * Fresh JSON of every object of an environment (monitoring included), safe to mutate;
 * `overrides` change its settings (another data tier, say).
 */
export function environmentObjects(name: string, overrides: Partial<EnvironmentSettings> = {}): KubeObject[] {
  const stack = buildEnvironment({ ...environment(name), ...overrides }, path.join(os.tmpdir(), 'never-written'));
  const objects = [...appObjects(stack.app), ...(stack.monitoringApp ? appObjects(stack.monitoringApp) : [])];
  return JSON.parse(JSON.stringify(objects)) as KubeObject[];
}

/** The object of `kind` named `name` (throws when absent, so tests fail loudly). */
export function find(objects: KubeObject[], kind: string, name: string): any {
  const found = objects.find((o) => o.kind === kind && (o.metadata as { name?: string }).name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** Objects of one kind. */
export function ofKind(objects: KubeObject[], kind: string): any[] {
  return objects.filter((o) => o.kind === kind);
}
