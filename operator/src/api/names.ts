// Names and labels of everything a StegoCluster owns, in one place (like CloudNativePG's cluster_funcs.go),
// so builders, controllers and tests never spell a name twice.
import type { ObjectMeta } from './types.js';

export const LABEL_CLUSTER = 'stego.io/cluster';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_INSTANCE = 'app.kubernetes.io/instance';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
/** Kept current by the operator from each pod's /cluster/status; the leader Service selects `leader`. */
export const LABEL_ROLE = 'stego.io/role';
export const ANNOTATION_SPEC_HASH = 'stego.io/desired-hash';

export const MANAGED_BY = 'stego-operator';
export const FIELD_MANAGER = 'stego-operator';
export const FINALIZER = 'stego.io/cleanup';

/** Set by the StatefulSet controller on each of its pods; the member Services select on it. */
export const LABEL_POD_NAME = 'statefulset.kubernetes.io/pod-name';

export const ROLE_LEADER = 'leader';
export const ROLE_FOLLOWER = 'follower';
export const ROLE_LEARNER = 'learner';
export const ROLE_UNKNOWN = 'unknown';

export const HTTP_PORT = 8080;
export const RAFT_PORT = 7080;
export const GATEWAY_PORT = 8080;
export const DATA_DIR = '/var/lib/stego';
export const API_TOKENS_DIR = '/etc/stego/api-tokens';
export const BOOTSTRAP_DIR = '/etc/stego/bootstrap';

export type Component = 'node' | 'gateway';

export interface ClusterRef {
  name: string;
  namespace: string;
}

export function refOf(meta: Pick<ObjectMeta, 'name' | 'namespace'>): ClusterRef {
  return { name: meta.name, namespace: meta.namespace };
}

export const names = {
  statefulSet: (c: ClusterRef): string => c.name,
  headlessService: (c: ClusterRef): string => `${c.name}-peers`,
  clientService: (c: ClusterRef): string => c.name,
  leaderService: (c: ClusterRef): string => `${c.name}-leader`,
  /** One ClusterIP Service per member: a virtual address that outlives the pod's IP (the gateway's upstreams). */
  memberService: (c: ClusterRef, ordinal: number): string => `${c.name}-member-${ordinal}`,
  credentialsSecret: (c: ClusterRef): string => `${c.name}-credentials`,
  bootstrapConfigMap: (c: ClusterRef): string => `${c.name}-bootstrap`,
  pdb: (c: ClusterRef): string => c.name,
  networkPolicy: (c: ClusterRef): string => c.name,
  gatewayNetworkPolicy: (c: ClusterRef): string => `${c.name}-gateway`,
  gateway: (c: ClusterRef): string => `${c.name}-gateway`,
  gatewayConfigMap: (c: ClusterRef): string => `${c.name}-gateway`,
  httpRoute: (c: ClusterRef): string => c.name,
  ingress: (c: ClusterRef): string => c.name,
  serviceMonitor: (c: ClusterRef): string => c.name,
  dataVolume: 'data',
  /** Pod name = StatefulSet pod name = Raft node id. */
  pod: (c: ClusterRef, ordinal: number): string => `${c.name}-${ordinal}`,
  pvc: (c: ClusterRef, ordinal: number): string => `data-${c.name}-${ordinal}`,
};

/** The ordinal of a member pod name, or null when the name is not one of this cluster's pods. */
export function ordinalOf(c: ClusterRef, podName: string): number | null {
  const prefix = `${c.name}-`;
  if (!podName.startsWith(prefix)) return null;
  const rest = podName.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : null;
}

/** Stable DNS name of a member through the headless Service (resolves before the pod is ready). */
export function podHost(c: ClusterRef, ordinal: number, clusterDomain: string): string {
  return `${names.pod(c, ordinal)}.${names.headlessService(c)}.${c.namespace}.svc.${clusterDomain}`;
}

export function raftAddress(c: ClusterRef, ordinal: number, clusterDomain: string): string {
  return `${podHost(c, ordinal, clusterDomain)}:${RAFT_PORT}`;
}

/** Labels every owned object carries; the watchers select on LABEL_MANAGED_BY and map back by LABEL_CLUSTER. */
export function commonLabels(c: ClusterRef, component: Component): Record<string, string> {
  return {
    [LABEL_NAME]: 'stegocluster',
    [LABEL_INSTANCE]: c.name,
    [LABEL_COMPONENT]: component,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_CLUSTER]: c.name,
  };
}

/** The member pods' selector (StatefulSet, Services, PDB and the scale subresource). */
export function selectorLabels(c: ClusterRef, component: Component = 'node'): Record<string, string> {
  return { [LABEL_CLUSTER]: c.name, [LABEL_COMPONENT]: component };
}

export function selectorString(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
