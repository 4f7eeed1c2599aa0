import { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { setSyncWave, SyncWaves } from './workload-defaults';

/** Props of {@link ServerAutoscaler}. */
export interface ServerAutoscalerProps {
  /** Name, namespace and labels. */
  readonly metadata: k8s.ObjectMeta;
  /** The Deployment it scales. */
  readonly deploymentName: string;
  /** Lower bound of replicas. */
  readonly minReplicas: number;
  /** Upper bound of replicas. */
  readonly maxReplicas: number;
  /** Target average CPU utilization, percent of the request. */
  readonly cpuUtilizationPercent: number;
  /** Target average memory utilization, percent of the request. */
  readonly memoryUtilizationPercent: number;
}

/**
 * An autoscaling/v2 HorizontalPodAutoscaler on CPU and memory utilization that scales up by at
 * most 50 % a minute after 60 s of stable signal and down by at most 10 % a minute after five
 * minutes (the seed document's behaviour), so load spikes do not thrash. Internal to the library.
 *
 * @see https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#configurable-scaling-behavior
 */
export class ServerAutoscaler extends k8s.KubeHorizontalPodAutoscalerV2 {
  constructor(scope: Construct, id: string, props: ServerAutoscalerProps) {
    const utilization = (name: string, averageUtilization: number): k8s.MetricSpecV2 => ({
      type: 'Resource',
      resource: { name, target: { type: 'Utilization', averageUtilization } },
    });
    super(scope, id, {
      metadata: props.metadata,
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: props.deploymentName },
        minReplicas: props.minReplicas,
        maxReplicas: props.maxReplicas,
        metrics: [utilization('cpu', props.cpuUtilizationPercent), utilization('memory', props.memoryUtilizationPercent)],
        behavior: {
          scaleUp: { stabilizationWindowSeconds: 60, policies: [{ type: 'Percent', value: 50, periodSeconds: 60 }] },
          scaleDown: { stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 10, periodSeconds: 60 }] },
        },
      },
    });
    setSyncWave(this, SyncWaves.edge);
  }
}
