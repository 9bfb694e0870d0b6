// Operator settings from the environment (the chart sets them).
import os from 'node:os';
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
    },
  };
}
