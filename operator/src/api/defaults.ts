// Defaults, used twice: as the CRD schema's `default:` values (schema.ts) and by the operator for objects
// read before the API server defaulted them. One table, so they cannot disagree.
import type { DeepPartial, StegoClusterSpec } from './types.js';

export const DEFAULT_NODE_IMAGE = 'ghcr.io/stegocluster/stego-node:0.1.0';
export const DEFAULT_GATEWAY_IMAGE = 'nginxinc/nginx-unprivileged:1.29-alpine';

export const SPEC_DEFAULTS = {
  replicas: 3,
  image: DEFAULT_NODE_IMAGE,
  imagePullPolicy: 'IfNotPresent',
  storage: { size: '1Gi', onDelete: 'Retain', onScaleDown: 'Delete' },
  raft: { tickMs: 5, heartbeatMs: 50, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300 },
  frontDoor: { mode: 'gateway', gateway: { image: DEFAULT_GATEWAY_IMAGE, replicas: 2, serviceType: 'ClusterIP' } },
  metrics: { serviceMonitor: { enabled: false } },
  podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
  networkPolicy: { enabled: true },
  logLevel: 'info',
} as const satisfies Omit<StegoClusterSpec, 'resources' | 'scheduling' | 'apiTokens'>;

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

/** The spec with every default filled in, as the API server would store it. */
export function withDefaults(spec: DeepPartial<StegoClusterSpec> | undefined): StegoClusterSpec {
  const out = merge(SPEC_DEFAULTS, spec ?? {}) as StegoClusterSpec;
  if (out.apiTokens && out.apiTokens.key === undefined) out.apiTokens.key = API_TOKENS_DEFAULT_KEY;
  return out;
}
