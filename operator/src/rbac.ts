// The operator's permissions, one table: rendered into the chart's RBAC template (tools/render-crds.ts) and
// checked by tests (no wildcards; the chart's copy is this table). Each rule says what needs it.
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** Why the operator needs it (rendered as a comment). */
  why: string;
}

const OWN = ['get', 'list', 'watch', 'create', 'patch', 'delete'];

export const CLUSTER_RULES: PolicyRule[] = [
  { apiGroups: ['stego.io'], resources: ['stegoclusters'], verbs: ['get', 'list', 'watch'], why: 'the resources it reconciles' },
  { apiGroups: ['stego.io'], resources: ['stegoclusters/status'], verbs: ['get', 'patch', 'update'], why: 'status, conditions, observedGeneration' },
  { apiGroups: ['stego.io'], resources: ['stegoclusters/finalizers'], verbs: ['update'], why: 'blockOwnerDeletion on owned objects (OwnerReferencesPermissionEnforcement)' },
  { apiGroups: ['apps'], resources: ['statefulsets', 'deployments'], verbs: OWN, why: 'member StatefulSet, nginx gateway Deployment' },
  { apiGroups: [''], resources: ['services', 'configmaps'], verbs: OWN, why: 'member and gateway Services, bootstrap and nginx ConfigMaps' },
  { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'create'], why: 'the generated credentials Secret: created once, read for the admin token; never listed' },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch', 'patch', 'delete'], why: 'stego.io/role labels; replacing pods one at a time' },
  { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch'], why: 'telling a replaced volume (lost data) from a restart' },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'], why: 'Events on StegoClusters' },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: OWN, why: 'the quorum-keeping PodDisruptionBudget' },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies', 'ingresses'], verbs: OWN, why: 'member NetworkPolicy, ingress front door' },
  { apiGroups: ['gateway.networking.k8s.io'], resources: ['httproutes'], verbs: OWN, why: 'httpRoute front door' },
  { apiGroups: ['monitoring.coreos.com'], resources: ['servicemonitors'], verbs: OWN, why: 'spec.metrics.serviceMonitor' },
];

/** In the operator's own namespace only: its leader-election Lease. */
export const NAMESPACE_RULES: PolicyRule[] = [
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'], why: 'leader election between operator replicas' },
];

export function hasWildcard(rules: PolicyRule[]): boolean {
  return rules.some((r) => [...r.apiGroups, ...r.resources, ...r.verbs].some((s) => s.includes('*')));
}
