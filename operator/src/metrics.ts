// The operator's Prometheus metrics: the one definition of the `stego_operator_*` names that the chart's
// dashboard (its Operator row) and the StegoOperatorReconcileErrors rule read.
//
// Series about one StegoCluster carry its name and namespace as the metric labels `stegocluster` and
// `stegocluster_namespace` — not `namespace`, which Prometheus sets to the operator pod's own namespace
// when it scrapes. Their count is bounded by the StegoClusters that exist: forget() drops a deleted one's.
// Every other label is a fixed enum (result, step, operation, resource, reason, verb, code).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry } from '../../node/src/metrics/registry.js';

export const OPERATOR_METRIC_PREFIX = 'stego_operator_';

export interface StegoClusterRef {
  namespace: string;
  name: string;
}

/** converged: nothing left to do; progressing: a requeue is planned; error: a step failed. */
export const RECONCILE_RESULTS = ['converged', 'progressing', 'error'] as const;
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];

/** The membership and pod changes the operator makes, one per call. */
export const SCALE_OPERATIONS = ['scale_statefulset', 'add_member', 'remove_member', 'transfer_leadership', 'delete_pod'] as const;
export type ScaleOperation = (typeof SCALE_OPERATIONS)[number];

type ClusterLabel = 'stegocluster_namespace' | 'stegocluster';
const CLUSTER_LABELS = ['stegocluster_namespace', 'stegocluster'] as const;

export function clusterLabels(ref: StegoClusterRef): Record<ClusterLabel, string> {
  return { stegocluster_namespace: ref.namespace, stegocluster: ref.name };
}

/** A work-queue key (namespace/name) as a StegoCluster reference. */
export function refOfKey(key: string): StegoClusterRef {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export class OperatorMetrics {
  readonly registry: Registry;
  readonly reconciles: Counter<ClusterLabel | 'result'>;
  /** One per failed reconcile, by the step that failed (credentials, statefulset, membership, …). */
  readonly reconcileErrors: Counter<ClusterLabel | 'reason'>;
  readonly reconcileSeconds: Histogram<ClusterLabel>;
  readonly queueDepth: Gauge;
  readonly scaleOperations: Counter<ClusterLabel | 'operation'>;
  readonly leaderChanges: Counter<ClusterLabel>;
  readonly watchRestarts: Counter<'resource' | 'reason'>;
  readonly isLeader: Gauge;
  readonly apiRequests: Counter<'verb' | 'code'>;
  /** Error reasons seen per StegoCluster, so forget() can drop exactly its series. */
  readonly #reasons = new Map<string, Set<string>>();
  /** StegoClusters whose counters have been started at 0 (startReconcile). */
  readonly #started = new Set<string>();

  /** `defaultMetrics`: the process set (CPU, memory, event loop) with the operator's prefix; off in tests that make several. */
  constructor(defaultMetrics = true) {
    this.registry = createRegistry({ defaultMetrics, prefix: OPERATOR_METRIC_PREFIX });
    const registers = [this.registry];
    const p = OPERATOR_METRIC_PREFIX;
    this.reconciles = new Counter({ name: `${p}reconciles_total`, help: 'Reconciles of a StegoCluster by result', labelNames: [...CLUSTER_LABELS, 'result'], registers });
    this.reconcileErrors = new Counter({
      name: `${p}reconcile_errors_total`, help: 'Failed reconciles of a StegoCluster by the step that failed', labelNames: [...CLUSTER_LABELS, 'reason'], registers,
    });
    this.reconcileSeconds = new Histogram({
      name: `${p}reconcile_duration_seconds`, help: 'Time for one reconcile of a StegoCluster', labelNames: CLUSTER_LABELS, registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.queueDepth = new Gauge({ name: `${p}workqueue_depth`, help: 'StegoClusters waiting in the work queue', registers });
    this.scaleOperations = new Counter({
      name: `${p}scale_operations_total`, help: 'Membership and pod changes the operator made, by operation', labelNames: [...CLUSTER_LABELS, 'operation'], registers,
    });
    this.leaderChanges = new Counter({ name: `${p}observed_leader_changes_total`, help: 'Raft leader changes the operator observed in a StegoCluster', labelNames: CLUSTER_LABELS, registers });
    this.watchRestarts = new Counter({ name: `${p}watch_restarts_total`, help: 'Watches that ended and were started again, by resource kind and reason', labelNames: ['resource', 'reason'], registers });
    this.isLeader = new Gauge({ name: `${p}is_leader`, help: '1 while this replica holds the leader Lease', registers });
    this.apiRequests = new Counter({ name: `${p}api_requests_total`, help: 'API server requests by verb and status code', labelNames: ['verb', 'code'], registers });
  }

  /** Starts timing one reconcile; the returned function records its result. */
  startReconcile(ref: StegoClusterRef): (result: ReconcileResult) => void {
    const labels = clusterLabels(ref);
    const key = `${ref.namespace}/${ref.name}`;
    if (!this.#started.has(key)) {
      // a StegoCluster's counters exist at 0 from its first reconcile: a series born at 1 has no increase
      // for rate()/increase() to show, so the first leader change or membership change would be invisible
      this.#started.add(key);
      for (const result of RECONCILE_RESULTS) this.reconciles.inc({ ...labels, result }, 0);
      for (const operation of SCALE_OPERATIONS) this.scaleOperations.inc({ ...labels, operation }, 0);
      this.leaderChanges.inc(labels, 0);
    }
    const end = this.reconcileSeconds.startTimer(labels);
    return (result) => {
      end();
      this.reconciles.inc({ ...labels, result });
    };
  }

  reconcileFailed(ref: StegoClusterRef, reason: string): void {
    const key = `${ref.namespace}/${ref.name}`;
    const seen = this.#reasons.get(key) ?? new Set<string>();
    seen.add(reason);
    this.#reasons.set(key, seen);
    this.reconcileErrors.inc({ ...clusterLabels(ref), reason });
  }

  scaled(ref: StegoClusterRef, operation: ScaleOperation): void {
    this.scaleOperations.inc({ ...clusterLabels(ref), operation });
  }

  leaderChanged(ref: StegoClusterRef): void {
    this.leaderChanges.inc(clusterLabels(ref));
  }

  /** Drops every series of a deleted StegoCluster. */
  forget(ref: StegoClusterRef): void {
    const labels = clusterLabels(ref);
    for (const result of RECONCILE_RESULTS) this.reconciles.remove({ ...labels, result });
    for (const operation of SCALE_OPERATIONS) this.scaleOperations.remove({ ...labels, operation });
    const key = `${ref.namespace}/${ref.name}`;
    for (const reason of this.#reasons.get(key) ?? []) this.reconcileErrors.remove({ ...labels, reason });
    this.#reasons.delete(key);
    this.#started.delete(key);
    this.reconcileSeconds.remove(labels);
    this.leaderChanges.remove(labels);
  }
}
