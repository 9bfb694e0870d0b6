// The operator's own Prometheus registry (prefix stego_operator_).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'stego_operator_reconciles_total', help: 'Reconcile passes by result', labelNames: ['result'] as const, registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: 'stego_operator_reconcile_duration_seconds',
    help: 'Duration of a reconcile pass',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({ name: 'stego_operator_reconcile_errors_total', help: 'Errors met in reconcile steps', labelNames: ['step'] as const, registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: 'stego_operator_queue_depth', help: 'StegoClusters waiting to be reconciled', registers: [this.registry] });
  readonly scaleOperations = new Counter({ name: 'stego_operator_scale_operations_total', help: 'Membership and pod operations performed', labelNames: ['operation'] as const, registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: 'stego_operator_leader_changes_observed_total', help: 'Raft leader changes the operator observed', registers: [this.registry] });
  readonly watchRestarts = new Counter({ name: 'stego_operator_watch_restarts_total', help: 'Watch restarts by resource and reason', labelNames: ['resource', 'reason'] as const, registers: [this.registry] });
  readonly isLeader = new Gauge({ name: 'stego_operator_is_leader', help: '1 while this replica holds the leader Lease', registers: [this.registry] });
  readonly apiRequests = new Counter({ name: 'stego_operator_api_requests_total', help: 'API server requests by verb and status code', labelNames: ['verb', 'code'] as const, registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'stego_operator_' });
  }
}
