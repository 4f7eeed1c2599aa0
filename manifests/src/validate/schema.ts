// Offline OpenAPI validation with the schemas bundled in kubernetes-models 4.x (ajv-compiled
// validators generated from the Kubernetes OpenAPI document). No API server is needed.
import { Namespace, ServiceAccount, ConfigMap, Secret, Service, PersistentVolumeClaim, Pod } from 'kubernetes-models/v1';
import { Deployment, StatefulSet, DaemonSet } from 'kubernetes-models/apps/v1';
import { Job, CronJob } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy, Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Role, RoleBinding, ClusterRole, ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { CRD_VALIDATORS } from './crd-schemas';
import type { KubeObject, Violation } from './types';
import { describeObject } from './types';

/** A kubernetes-models class: constructed from JSON, throws from `validate()`. */
type ModelClass = new (data: never) => { validate(): void };

const MODELS: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ['v1/Namespace', Namespace],
  ['v1/ServiceAccount', ServiceAccount],
  ['v1/ConfigMap', ConfigMap],
  ['v1/Secret', Secret],
  ['v1/Service', Service],
  ['v1/PersistentVolumeClaim', PersistentVolumeClaim],
  ['v1/Pod', Pod],
  ['apps/v1/Deployment', Deployment],
  ['apps/v1/StatefulSet', StatefulSet],
  ['apps/v1/DaemonSet', DaemonSet],
  ['batch/v1/Job', Job],
  ['batch/v1/CronJob', CronJob],
  ['autoscaling/v2/HorizontalPodAutoscaler', HorizontalPodAutoscaler],
  ['networking.k8s.io/v1/NetworkPolicy', NetworkPolicy],
  ['networking.k8s.io/v1/Ingress', Ingress],
  ['policy/v1/PodDisruptionBudget', PodDisruptionBudget],
  ['rbac.authorization.k8s.io/v1/Role', Role],
  ['rbac.authorization.k8s.io/v1/RoleBinding', RoleBinding],
  ['rbac.authorization.k8s.io/v1/ClusterRole', ClusterRole],
  ['rbac.authorization.k8s.io/v1/ClusterRoleBinding', ClusterRoleBinding],
]);

/** `apiVersion/kind` pairs the validator knows a schema for. */
export function knownTypes(): string[] {
  return [...MODELS.keys(), ...Object.keys(CRD_VALIDATORS)].sort();
}

/**
 * Validates one object against its OpenAPI schema. Unknown types are violations too: an
 * object we cannot check is not let through silently.
 */
export function validateSchema(obj: KubeObject): Violation[] {
  const object = describeObject(obj);
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const model = MODELS.get(key);
  if (model) {
    try {
      new model(obj as never).validate();
      return [];
    } catch (err) {
      // ajv reports paths as `data/spec/...`; show them relative to the object.
      const message = err instanceof Error ? err.message.replace(/\bdata\//g, '') : String(err);
      return [{ rule: 'schema', object, message }];
    }
  }
  const crd = CRD_VALIDATORS[key];
  if (crd) return crd(obj).map((message) => ({ rule: 'schema', object, message }));
  return [{ rule: 'schema', object, message: `no schema known for ${key}` }];
}
