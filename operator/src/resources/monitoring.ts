// A prometheus-operator ServiceMonitor for the members' /metrics (spec.metrics.serviceMonitor.enabled).
import { LABEL_CLUSTER, names, selectorLabels } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref } from './common.js';
import { LABEL_SERVICE } from './services.js';

export const SERVICEMONITOR_API = 'monitoring.coreos.com/v1';

/** A Kubernetes label as Prometheus's Kubernetes service discovery names it (`__meta_kubernetes_pod_label_<name>`). */
function podLabelMeta(label: string): string {
  return `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, '_')}`;
}

/**
 * The target labels the dashboards and rules select on (docs/observability.md, label contract):
 * `stegocluster` from the member's pod label, `instance` the pod's name rather than its IP:port (stable
 * across restarts, and what an operator types). `namespace` the Prometheus Operator sets itself.
 */
export const NODE_RELABELINGS = [
  { sourceLabels: [podLabelMeta(LABEL_CLUSTER)], targetLabel: 'stegocluster', action: 'replace' },
  { sourceLabels: ['__meta_kubernetes_pod_name'], targetLabel: 'instance', action: 'replace' },
];

export function serviceMonitor(cr: StegoCluster): { apiVersion: string; kind: 'ServiceMonitor'; metadata: ReturnType<typeof ownedMeta>; spec: Record<string, unknown> } | null {
  const sm = cr.spec.metrics.serviceMonitor;
  if (!sm.enabled) return null;
  const c = ref(cr);
  return {
    apiVersion: SERVICEMONITOR_API,
    kind: 'ServiceMonitor',
    metadata: ownedMeta(cr, names.serviceMonitor(c), 'node'),
    spec: {
      // the headless Service lists every member, ready or not
      selector: { matchLabels: { ...selectorLabels(c), [LABEL_SERVICE]: 'peers' } },
      endpoints: [{ port: 'http', path: '/metrics', ...(sm.interval ? { interval: sm.interval } : {}), relabelings: NODE_RELABELINGS }],
    },
  };
}
