// The StegoCluster API (stego.io/v1alpha1): plain data, no client calls. The CRD's OpenAPI schema is
// written beside it (schema.ts) and schema.test.ts proves that both name the same fields.

export const GROUP = 'stego.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'StegoCluster';
export const PLURAL = 'stegoclusters';
export const SINGULAR = 'stegocluster';
export const SHORT_NAMES = ['stego'];

export type RetentionPolicy = 'Retain' | 'Delete';
export type FrontDoorMode = 'gateway' | 'httpRoute' | 'ingress' | 'none';
export type GatewayServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';
export type Quantity = string | number;

export interface ResourceRequirements {
  requests?: Record<string, Quantity>;
  limits?: Record<string, Quantity>;
}

export interface StorageSpec {
  /** PVC size per member, a Kubernetes quantity. Immutable (StatefulSet claim templates are). */
  size: string;
  storageClassName?: string;
  /** What happens to the PVCs when the StegoCluster is deleted. */
  onDelete: RetentionPolicy;
  /** What happens to a removed member's PVC on scale-down. */
  onScaleDown: RetentionPolicy;
}

export interface RaftSpec {
  tickMs: number;
  heartbeatMs: number;
  /** The node draws each election timeout from [min, max); it randomises over [base, 2·base), so max = 2·min. */
  electionTimeoutMinMs: number;
  electionTimeoutMaxMs: number;
}

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

export interface GatewaySpec {
  /** Set by the user or, when left out, by the operator from its installation's default. */
  image: string;
  imagePullPolicy: PullPolicy;
  replicas: number;
  serviceType: GatewayServiceType;
  /** Only with serviceType NodePort or LoadBalancer. */
  nodePort?: number;
  resources?: ResourceRequirements;
}

export interface ParentReference {
  name: string;
  namespace?: string;
  sectionName?: string;
}

export interface HttpRouteSpec {
  parentRefs: ParentReference[];
  hostnames?: string[];
}

export interface IngressTls {
  secretName: string;
}

export interface IngressSpec {
  className?: string;
  host?: string;
  annotations?: Record<string, string>;
  tls?: IngressTls;
}

export interface FrontDoorSpec {
  mode: FrontDoorMode;
  gateway: GatewaySpec;
  httpRoute?: HttpRouteSpec;
  ingress?: IngressSpec;
}

export interface ServiceMonitorSpec {
  enabled: boolean;
  interval?: string;
}

export interface MetricsSpec {
  serviceMonitor: ServiceMonitorSpec;
}

export interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export interface SchedulingSpec {
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  /** Passed through as the pods' affinity (core/v1 Affinity). */
  affinity?: Record<string, unknown>;
  /** Replaces the default spread (one member per node and per zone where possible). */
  topologySpreadConstraints?: Record<string, unknown>[];
}

export interface PodDisruptionBudgetSpec {
  enabled: boolean;
  /** Members that may be voluntarily evicted at once; keep it below half of the replicas. */
  maxUnavailable: number;
}

export interface ApiTokensSpec {
  /** A Secret in the StegoCluster's namespace holding the node's API tokens file. */
  secretName: string;
  key: string;
}

export interface NetworkPolicySpec {
  enabled: boolean;
}

export interface StegoClusterSpec {
  replicas: number;
  /** Set by the user or, when left out, by the operator from its installation's default. */
  image: string;
  imagePullPolicy: PullPolicy;
  resources?: ResourceRequirements;
  storage: StorageSpec;
  raft: RaftSpec;
  frontDoor: FrontDoorSpec;
  metrics: MetricsSpec;
  scheduling?: SchedulingSpec;
  podDisruptionBudget: PodDisruptionBudgetSpec;
  networkPolicy: NetworkPolicySpec;
  apiTokens?: ApiTokensSpec;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration: number;
}

export type MemberRole = 'Leader' | 'Follower' | 'Candidate' | 'Learner' | 'Unknown';
export type Membership = 'voter' | 'learner';

export interface MemberStatus {
  id: string;
  pod: string;
  role: MemberRole;
  healthy: boolean;
  membership: Membership;
  appliedIndex?: number;
}

export type Phase = 'Creating' | 'Healthy' | 'Scaling' | 'Degraded' | 'QuorumLost' | 'Failed';

export interface StegoClusterStatus {
  observedGeneration?: number;
  phase?: Phase;
  phaseReason?: string;
  /** Raft members (voters and learners) the cluster runs now; follows spec.replicas one change at a time. */
  replicas?: number;
  readyReplicas?: number;
  leader?: string;
  term?: number;
  members?: MemberStatus[];
  conditions?: Condition[];
  /** Label selector of the member pods, for the scale subresource (HPA, kubectl scale). */
  selector?: string;
  /** Set once the initial members have formed a cluster; from then on a fresh pod joins as a learner. */
  bootstrapped?: boolean;
  /** UID of each member's PVC when it was last seen healthy: a different UID means its data is gone. */
  volumes?: Record<string, string>;
}

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  creationTimestamp?: string;
}

export interface StegoCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: ObjectMeta;
  spec: StegoClusterSpec;
  status?: StegoClusterStatus;
}

/** What a user writes: every field with a default may be left out. */
export type StegoClusterInput = Omit<StegoCluster, 'spec'> & { spec?: DeepPartial<StegoClusterSpec> };

export type DeepPartial<T> = T extends (infer U)[]
  ? DeepPartial<U>[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;
