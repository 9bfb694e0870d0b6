// StegoCluster's alert rules as data: the source of the plain Prometheus rules file shipped in the chart
// (charts/stego-operator/rules/stegocluster.rules.yaml, whose `groups` the chart's PrometheusRule renders
// as its spec). Each alert names its runbook entry in docs/runbook.md.
//
// Label contract (docs/observability.md): every node target carries `namespace` and `stegocluster` (the
// StegoCluster's name) as target labels and `instance` per node; operator series carry
// `stegocluster_namespace` and `stegocluster` as metric labels.

export interface AlertRule {
  alert: string;
  expr: string;
  /** How long the condition must hold before the alert fires (production value). */
  for: string;
  severity: 'critical' | 'warning';
  summary: string;
  description: string;
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

/** Node series of one StegoCluster: every node target has the stegocluster label. */
const NODES = 'stegocluster!=""';
const BY_CLUSTER = 'namespace, stegocluster';

export const ALERTS: AlertRule[] = [
  {
    alert: 'StegoClusterNoLeader',
    expr: `max by (${BY_CLUSTER}) (stego_raft_is_leader{${NODES}}) == 0`,
    for: '30s',
    severity: 'critical',
    summary: 'StegoCluster {{ $labels.namespace }}/{{ $labels.stegocluster }} has no leader',
    description: 'No reachable node of {{ $labels.namespace }}/{{ $labels.stegocluster }} has been the Raft leader for 30 s: writes and linearizable reads fail with 503.',
  },
  {
    alert: 'StegoClusterQuorumAtRisk',
    // members up ≤ quorum (⌊N/2⌋+1): one more failure stops the cluster. Clusters of 1 or 2 nodes never
    // tolerate a failure, so the alert is for N ≥ 3, where it means the configured tolerance is gone.
    expr:
      `sum by (${BY_CLUSTER}) (up{${NODES}}) <= floor(count by (${BY_CLUSTER}) (up{${NODES}}) / 2) + 1\n` +
      `and count by (${BY_CLUSTER}) (up{${NODES}}) >= 3`,
    for: '2m',
    severity: 'critical',
    summary: 'StegoCluster {{ $labels.namespace }}/{{ $labels.stegocluster }} is one failure away from losing quorum',
    description: 'Only {{ $value }} members of {{ $labels.namespace }}/{{ $labels.stegocluster }} are up, which is exactly a quorum: the next failure stops writes.',
  },
  {
    alert: 'StegoNodeDown',
    expr: `up{${NODES}} == 0`,
    for: '1m',
    severity: 'warning',
    summary: 'StegoCluster node {{ $labels.instance }} is down',
    description: 'Prometheus could not scrape {{ $labels.instance }} of {{ $labels.namespace }}/{{ $labels.stegocluster }} for 1 minute.',
  },
  {
    alert: 'StegoClusterFrequentElections',
    // every node counts the leader changes it sees; the busiest node's view of the last 15 minutes
    expr: `max by (${BY_CLUSTER}) (increase(stego_raft_leader_changes_total{${NODES}}[15m])) > 3`,
    for: '0s',
    severity: 'warning',
    summary: 'StegoCluster {{ $labels.namespace }}/{{ $labels.stegocluster }} changed leader {{ $value | humanize }} times in 15 minutes',
    description: 'Leadership keeps moving: each change costs writes an election timeout. Look for flapping links, a starved event loop or slow fsync.',
  },
  {
    alert: 'StegoHighRequestLatency',
    // only routes with real traffic (≥ 0.1 req/s); probes and scrapes are excluded
    expr:
      `histogram_quantile(0.99, sum by (${BY_CLUSTER}, route, le) (rate(stego_http_request_duration_seconds_bucket{${NODES}, route!~"/metrics|/healthz|/readyz|/cluster/status"}[5m]))) > 2.5\n` +
      `and sum by (${BY_CLUSTER}, route) (rate(stego_http_request_duration_seconds_count{${NODES}, route!~"/metrics|/healthz|/readyz|/cluster/status"}[5m])) >= 0.1`,
    for: '10m',
    severity: 'warning',
    summary: 'p99 latency of {{ $labels.route }} in {{ $labels.namespace }}/{{ $labels.stegocluster }} is {{ $value | humanizeDuration }}',
    description: 'The 99th percentile of {{ $labels.route }} has been above 2.5 s for 10 minutes.',
  },
  {
    alert: 'StegoHealthCheckFailing',
    // failed /healthz or /readyz answers (what the kubelet's probes see), or a node whose durable log
    // failed (its /healthz answers 503 in front of the app, so the histogram does not see those)
    expr:
      `sum by (${BY_CLUSTER}, instance) (increase(stego_http_request_duration_seconds_count{${NODES}, route=~"/healthz|/readyz", status!~"2.."}[5m])) > 3\n` +
      `or max by (${BY_CLUSTER}, instance) (stego_raft_storage_failed{${NODES}}) == 1`,
    for: '2m',
    severity: 'warning',
    summary: 'Health checks of {{ $labels.instance }} are failing',
    description: '{{ $labels.instance }} of {{ $labels.namespace }}/{{ $labels.stegocluster }} answers its health or readiness check with errors, or its durable log failed.',
  },
  {
    alert: 'StegoReplicationLag',
    expr: `max by (${BY_CLUSTER}, peer) (stego_raft_peer_lag_entries{${NODES}}) > 1000`,
    for: '5m',
    severity: 'warning',
    summary: 'Follower {{ $labels.peer }} is {{ $value }} entries behind the leader',
    description: 'Follower {{ $labels.peer }} of {{ $labels.namespace }}/{{ $labels.stegocluster }} has been more than 1000 entries behind for 5 minutes; it will need a snapshot and does not count towards a fast quorum.',
  },
  {
    alert: 'StegoDiskNearlyFull',
    expr: `stego_storage_volume_available_bytes{${NODES}} / stego_storage_volume_size_bytes{${NODES}} < 0.10`,
    for: '5m',
    severity: 'warning',
    summary: 'Data volume of {{ $labels.instance }} is {{ $value | humanizePercentage }} free',
    description: 'Less than 10% of the volume holding the data directory of {{ $labels.instance }} is free. A full disk fails fsync and the node steps down.',
  },
  {
    alert: 'StegoMemoryBudgetExhausted',
    expr:
      `max by (${BY_CLUSTER}, instance) (stego_memory_budget_in_use_bytes{${NODES}} / stego_memory_budget_limit_bytes{${NODES}}) > 0.9\n` +
      `or sum by (${BY_CLUSTER}, instance) (rate(stego_memory_budget_rejections_total{${NODES}}[5m])) > 0.1`,
    for: '5m',
    severity: 'warning',
    summary: 'Memory budget of {{ $labels.instance }} is exhausted',
    description: '{{ $labels.instance }} of {{ $labels.namespace }}/{{ $labels.stegocluster }} has its request memory budget over 90% used or refuses requests with 503 for lack of it.',
  },
  {
    alert: 'StegoOperatorReconcileErrors',
    expr: 'sum by (stegocluster_namespace, stegocluster) (increase(stego_operator_reconcile_errors_total[15m])) > 3',
    for: '10m',
    severity: 'warning',
    summary: 'The operator keeps failing to reconcile {{ $labels.stegocluster_namespace }}/{{ $labels.stegocluster }}',
    description: 'More than 3 failed reconciles of {{ $labels.stegocluster_namespace }}/{{ $labels.stegocluster }} in 15 minutes, for 10 minutes: its status and members may not match the spec.',
  },
];

/** Anchor of an alert's entry in docs/runbook.md (GitHub's heading slug of the alert name). */
export function runbookAnchor(alert: string): string {
  return alert.toLowerCase();
}

export interface RulesOptions {
  /** Replaces each alert's `for` (the live test shortens hold times to seconds; expressions stay the same). */
  holdFor?: (alert: AlertRule) => string;
}

/** The rules file: the same document for Prometheus's rule_files and a PrometheusRule's spec. */
export function rulesDocument(opts: RulesOptions = {}): { groups: object[] } {
  return {
    groups: [
      {
        name: 'stegocluster',
        rules: ALERTS.map((a) => ({
          alert: a.alert,
          expr: a.expr,
          for: opts.holdFor ? opts.holdFor(a) : a.for,
          labels: { severity: a.severity },
          annotations: {
            summary: a.summary,
            description: a.description,
            runbook: `docs/runbook.md#${runbookAnchor(a.alert)}`,
          },
        })),
      },
    ],
  };
}
