// The operator's metrics. Per-resource series carry the StegoCluster's name and namespace as
// `stegocluster` and `stegocluster_namespace` (not `namespace`, which Prometheus sets to the operator
// pod's own namespace when it scrapes); their count is bounded by the StegoClusters that exist.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ReconcileResult = 'success' | 'error' | 'requeue';
export type ScaleDirection = 'up' | 'down';

export interface StegoClusterRef {
  namespace: string;
  name: string;
}

export class OperatorMetrics {
  readonly reconciles: Counter<'stegocluster_namespace' | 'stegocluster' | 'result'>;
  readonly reconcileErrors: Counter<'stegocluster_namespace' | 'stegocluster' | 'reason'>;
  readonly reconcileSeconds: Histogram<'stegocluster_namespace' | 'stegocluster'>;
  readonly queueDepth: Gauge;
  readonly scaleOperations: Counter<'stegocluster_namespace' | 'stegocluster' | 'direction'>;
  readonly leaderChanges: Counter<'stegocluster_namespace' | 'stegocluster'>;
  readonly watchRestarts: Counter<'resource'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const cr = ['stegocluster_namespace', 'stegocluster'] as const;
    this.reconciles = new Counter({ name: 'stego_operator_reconciles_total', help: 'reconciles of a StegoCluster by result', labelNames: [...cr, 'result'], registers });
    this.reconcileErrors = new Counter({
      name: 'stego_operator_reconcile_errors_total', help: 'failed reconciles by reason (an API error code or a condition reason, never a message)', labelNames: [...cr, 'reason'], registers,
    });
    this.reconcileSeconds = new Histogram({
      name: 'stego_operator_reconcile_duration_seconds', help: 'time for one reconcile of a StegoCluster', labelNames: cr, registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    });
    this.queueDepth = new Gauge({ name: 'stego_operator_workqueue_depth', help: 'StegoClusters waiting to be reconciled', registers });
    this.scaleOperations = new Counter({
      name: 'stego_operator_scale_operations_total', help: 'membership changes the operator made (one member added or removed)', labelNames: [...cr, 'direction'], registers,
    });
    this.leaderChanges = new Counter({ name: 'stego_operator_observed_leader_changes_total', help: 'leader changes the operator observed in a StegoCluster', labelNames: cr, registers });
    this.watchRestarts = new Counter({ name: 'stego_operator_watch_restarts_total', help: 'watches that ended and were started again, by resource kind', labelNames: ['resource'], registers });
  }

  /** Times one reconcile and counts its result; the reason of a failure is the error's `code`/`reason`, else "error". */
  async reconcile<T>(ref: StegoClusterRef, run: () => Promise<T>): Promise<T> {
    const labels = { stegocluster_namespace: ref.namespace, stegocluster: ref.name };
    const end = this.reconcileSeconds.startTimer(labels);
    try {
      const out = await run();
      this.reconciles.inc({ ...labels, result: 'success' });
      return out;
    } catch (e) {
      this.reconciles.inc({ ...labels, result: 'error' });
      this.reconcileErrors.inc({ ...labels, reason: reasonOf(e) });
      throw e;
    } finally {
      end();
    }
  }
}

const SAFE_REASON = /^[A-Za-z][\w.-]{0,63}$/;

function reasonOf(e: unknown): string {
  const o = e as { reason?: unknown; code?: unknown } | null;
  for (const v of [o?.reason, o?.code]) {
    if (typeof v === 'string' && SAFE_REASON.test(v)) return v;
    if (typeof v === 'number') return String(v);
  }
  return 'error';
}
