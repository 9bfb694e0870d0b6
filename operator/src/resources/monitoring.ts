// A prometheus-operator ServiceMonitor for the members' /metrics (spec.metrics.serviceMonitor.enabled).
import { names, selectorLabels } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref } from './common.js';
import { LABEL_SERVICE } from './services.js';

export const SERVICEMONITOR_API = 'monitoring.coreos.com/v1';

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
      endpoints: [{ port: 'http', path: '/metrics', ...(sm.interval ? { interval: sm.interval } : {}) }],
    },
  };
}
