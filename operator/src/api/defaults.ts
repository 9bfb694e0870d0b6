// Defaults, used twice: as the CRD schema's `default:` values (schema.ts) and by the operator for objects
// read before the API server defaulted them. One table, so they cannot disagree.
import type { DeepPartial, PullPolicy, StegoClusterSpec } from './types.js';

/**
 * Images are not schema defaults: they belong to the operator's installation (chart values node.image and
 * gateway.image → STEGO_NODE_IMAGE, STEGO_GATEWAY_IMAGE), like CloudNativePG's default image, so a cluster
 * without its own registry (kind, the local Kubernetes) sets them once for every StegoCluster.
 */
export interface ImageDefaults {
  node: string;
  nodePullPolicy: PullPolicy;
  gateway: string;
  gatewayPullPolicy: PullPolicy;
}

export const IMAGE_DEFAULTS: ImageDefaults = {
  node: 'ghcr.io/stegocluster/stego-node:0.1.0',
  nodePullPolicy: 'IfNotPresent',
  gateway: 'nginxinc/nginx-unprivileged:1.29-alpine',
  gatewayPullPolicy: 'IfNotPresent',
};

/** What the CRD's schema defaults (the API server fills these in). */
export const SPEC_DEFAULTS = {
  replicas: 3,
  storage: { size: '1Gi', onDelete: 'Retain', onScaleDown: 'Delete' },
  raft: { tickMs: 5, heartbeatMs: 50, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300 },
  frontDoor: { mode: 'gateway', gateway: { replicas: 2, serviceType: 'ClusterIP' } },
  metrics: { serviceMonitor: { enabled: false } },
  podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
  networkPolicy: { enabled: true },
  logLevel: 'info',
} as const;

export const API_TOKENS_DEFAULT_KEY = 'tokens';

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge: values present in `given` win; objects merge key by key; arrays are replaced. */
function merge(defaults: unknown, given: unknown): unknown {
  if (given === undefined || given === null) return structuredClone(defaults);
  if (!isPlainObject(defaults) || !isPlainObject(given)) return structuredClone(given);
  const out: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(defaults), ...Object.keys(given)])) {
    out[key] = merge(defaults[key], given[key]);
  }
  return out;
}

/** The spec as the API server stores it: schema defaults filled, images left as the user wrote them. */
export function schemaDefaults(spec: DeepPartial<StegoClusterSpec> | undefined): DeepPartial<StegoClusterSpec> {
  const out = merge(SPEC_DEFAULTS, spec ?? {}) as StegoClusterSpec;
  if (out.apiTokens && out.apiTokens.key === undefined) out.apiTokens.key = API_TOKENS_DEFAULT_KEY;
  return out;
}

/** The spec the operator builds from: schema defaults, then the installation's images where none is set. */
export function withDefaults(spec: DeepPartial<StegoClusterSpec> | undefined, images: ImageDefaults = IMAGE_DEFAULTS): StegoClusterSpec {
  const out = schemaDefaults(spec) as StegoClusterSpec;
  out.image ??= images.node;
  out.imagePullPolicy ??= images.nodePullPolicy;
  out.frontDoor.gateway.image ??= images.gateway;
  out.frontDoor.gateway.imagePullPolicy ??= images.gatewayPullPolicy;
  return out;
}
