import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { disruptionBudgetSpec, setSyncWave } from './workload-defaults';

/** Props of {@link DisruptionBudget}. */
export interface DisruptionBudgetProps {
  /** Name, namespace and labels. */
  readonly metadata: k8s.ObjectMeta;
  /** Labels of the pods the budget covers. */
  readonly selector: { [key: string]: string };
  /** Argo CD sync wave (see `SyncWaves`): the wave of the workload it protects, or later. */
  readonly syncWave: number;
}

/**
 * A PodDisruptionBudget allowing one voluntary eviction at a time, for a Deployment or a
 * single-instance StatefulSet: node drains proceed, capacity never drops by more than one pod.
 * Internal to the library.
 *
 * @see https://kubernetes.io/docs/tasks/run-application/configure-pdb/
 */
export class DisruptionBudget extends k8s.KubePodDisruptionBudget {
  constructor(scope: Construct, id: string, props: DisruptionBudgetProps) {
    super(scope, id, { metadata: props.metadata, spec: disruptionBudgetSpec(props.selector) });
    setSyncWave(this, props.syncWave);
  }
}
