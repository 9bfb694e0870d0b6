// Operator settings from the environment (the chart sets them).
import os from 'node:os';
import { IMAGE_DEFAULTS } from './api/defaults.js';
import type { PullPolicy } from './api/types.js';
import type { BuildContext } from './resources/common.js';

export interface OperatorConfig {
  /** Namespace the operator runs in (its Lease lives there). */
  namespace: string;
  /** Watch only this namespace; empty watches all. */
  watchNamespace: string;
  identity: string;
  leaderElection: boolean;
  leaseName: string;
  probePort: number;
  logLevel: string;
  build: BuildContext;
  resyncMs: number;
  probeIntervalMs: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, dflt: number): number {
  const v = env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${JSON.stringify(v)} must be a non-negative integer`);
  return n;
}

function pullPolicy(env: Env, name: string, dflt: PullPolicy): PullPolicy {
  const v = env[name];
  if (!v) return dflt;
  if (v !== 'Always' && v !== 'IfNotPresent' && v !== 'Never') throw new Error(`${name}=${JSON.stringify(v)} must be Always, IfNotPresent or Never`);
  return v;
}

function labels(raw: string | undefined, dflt: Record<string, string>): Record<string, string> {
  if (!raw) return dflt;
  return Object.fromEntries(raw.split(',').map((kv) => kv.split('=').map((s) => s.trim()) as [string, string]).filter(([k, v]) => k && v));
}

export function loadOperatorConfig(env: Env): OperatorConfig {
  const namespace = env['OPERATOR_NAMESPACE'] || env['POD_NAMESPACE'] || 'stego-system';
  return {
    namespace,
    watchNamespace: env['WATCH_NAMESPACE'] ?? '',
    identity: env['POD_NAME'] || `${os.hostname()}-${process.pid}`,
    leaderElection: (env['LEADER_ELECTION'] ?? 'true') !== 'false',
    leaseName: env['LEASE_NAME'] || 'stego-operator',
    probePort: int(env, 'PROBE_PORT', 8081),
    logLevel: env['LOG_LEVEL'] || 'info',
    resyncMs: int(env, 'RESYNC_MS', 5 * 60_000),
    probeIntervalMs: int(env, 'PROBE_INTERVAL_MS', 500),
    build: {
      clusterDomain: env['CLUSTER_DOMAIN'] || 'cluster.local',
      operatorNamespace: namespace,
      operatorPodLabels: labels(env['OPERATOR_POD_LABELS'], { 'app.kubernetes.io/name': 'stego-operator' }),
      images: {
        node: env['STEGO_NODE_IMAGE'] || IMAGE_DEFAULTS.node,
        nodePullPolicy: pullPolicy(env, 'STEGO_NODE_IMAGE_PULL_POLICY', IMAGE_DEFAULTS.nodePullPolicy),
        gateway: env['STEGO_GATEWAY_IMAGE'] || IMAGE_DEFAULTS.gateway,
        gatewayPullPolicy: pullPolicy(env, 'STEGO_GATEWAY_IMAGE_PULL_POLICY', IMAGE_DEFAULTS.gatewayPullPolicy),
      },
    },
  };
}
