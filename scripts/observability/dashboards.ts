// StegoCluster's Grafana dashboards as code (Grafana's typed builders). `npm run dashboards` writes them
// to charts/stego-operator/dashboards/; the chart ships them as a ConfigMap for the Grafana sidecar.
// Every query is scoped by the `namespace` and `cluster` variables (see the label contract in
// docs/observability.md); the live test evaluates each one against a real Prometheus.
import * as common from '@grafana/grafana-foundation-sdk/common';
import { DashboardBuilder, DashboardCursorSync, DatasourceVariableBuilder, QueryVariableBuilder, RowBuilder, ThresholdsConfigBuilder, ThresholdsMode, VariableRefresh, VariableSort } from '@grafana/grafana-foundation-sdk/dashboard';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

const DS = { type: 'prometheus', uid: '${datasource}' };
/** Node series of the selected StegoCluster. */
const S = 'namespace="$namespace", stegocluster="$cluster"';
/** Operator series about the selected StegoCluster. */
const OP = 'stegocluster_namespace="$namespace", stegocluster="$cluster"';
const RATE = '$__rate_interval';

/** Rate of requests (histogram _count) without probes and scrapes: what users send. */
const USER_ROUTES = 'route!~"/metrics|/healthz|/readyz|/cluster/status"';

function q(expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DS).expr(expr).legendFormat(legend);
}

function timeseries(title: string, unit: string, targets: DataqueryBuilder[], description?: string): TimeseriesBuilder {
  const b = new TimeseriesBuilder().title(title).datasource(DS).unit(unit).span(8).height(8).lineWidth(1).fillOpacity(10).showPoints(common.VisibilityMode.Never);
  if (description) b.description(description);
  targets.forEach((t, i) => b.withTarget(t.refId(String.fromCharCode(65 + i))));
  return b;
}

function stat(title: string, unit: string, target: DataqueryBuilder, description: string): StatBuilder {
  return new StatBuilder()
    .title(title)
    .description(description)
    .datasource(DS)
    .unit(unit)
    .span(4)
    .height(4)
    .graphMode(common.BigValueGraphMode.None)
    .colorMode(common.BigValueColorMode.Background)
    .withTarget(target.refId('A').instant());
}

function variables(b: DashboardBuilder): DashboardBuilder {
  return b
    .withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('namespace')
        .label('Namespace')
        .datasource(DS)
        .query('label_values(stego_raft_term, namespace)')
        .definition('label_values(stego_raft_term, namespace)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc),
    )
    .withVariable(
      new QueryVariableBuilder('cluster')
        .label('StegoCluster')
        .datasource(DS)
        .query('label_values(stego_raft_term{namespace="$namespace"}, stegocluster)')
        .definition('label_values(stego_raft_term{namespace="$namespace"}, stegocluster)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc),
    );
}

function thresholds(steps: [number | null, string][]): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));
}

/** A dashboard with the settings every StegoCluster dashboard shares (last hour, 30 s refresh, shared crosshair). */
function dashboard(title: string, uid: string, description: string, tags: string[]): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(tags)
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser');
}

export function overviewDashboard(): Dashboard {
  const b = dashboard(
    'StegoCluster',
    'stegocluster-overview',
    'Leader, quorum, elections, requests, stego throughput, replication, storage, workers and memory budget, operator health of one StegoCluster.',
    ['stegocluster', 'raft'],
  );
  variables(b);

  b.withRow(new RowBuilder('Cluster overview'));
  b.withPanel(
    stat('Leader', 'none', q(`max by (instance) (stego_raft_is_leader{${S}}) == 1`, '{{instance}}'), 'The node that is Raft leader now; empty when there is none.')
      .textMode(common.BigValueTextMode.Name)
      .noValue('NO LEADER')
      .colorMode(common.BigValueColorMode.None),
  );
  b.withPanel(stat('Term', 'none', q(`max(stego_raft_term{${S}})`, 'term'), 'Highest Raft term any node reports. A rising term means elections.').colorMode(common.BigValueColorMode.None));
  b.withPanel(
    stat('Members up', 'none', q(`sum(up{${S}})`, 'up'), 'Nodes Prometheus can scrape.').thresholds(thresholds([[null, 'red'], [1, 'orange'], [3, 'green']])),
  );
  b.withPanel(stat('Members', 'none', q(`count(up{${S}})`, 'members'), 'Nodes Prometheus knows about (scraped or not).').colorMode(common.BigValueColorMode.None));
  b.withPanel(
    stat(
      'Failures tolerated',
      'none',
      q(`sum(up{${S}}) - (floor(count(up{${S}}) / 2) + 1)`, 'tolerated'),
      'Members up minus the quorum (⌊N/2⌋+1): how many more nodes may fail before writes stop. Below 0: no quorum.',
    ).thresholds(thresholds([[null, 'red'], [0, 'orange'], [1, 'green']])),
  );
  b.withPanel(
    stat('Storage failed', 'none', q(`max(stego_raft_storage_failed{${S}})`, 'failed'), '1 when a node\'s durable log failed and it stepped down.').thresholds(
      thresholds([[null, 'green'], [1, 'red']]),
    ),
  );

  b.withRow(new RowBuilder('Elections and failovers'));
  b.withPanel(timeseries('Leader per node', 'none', [q(`max by (instance) (stego_raft_is_leader{${S}})`, '{{instance}}')], '1 while the node is leader. A handover shows as one line dropping and another rising.').max(1));
  b.withPanel(
    timeseries('Election events', 'short', [q(`sum by (event) (increase(stego_raft_election_events_total{${S}}[${RATE}]))`, '{{event}}')], 'Campaigns started, votes, leaders elected and step-downs, summed over nodes.'),
  );
  b.withPanel(
    timeseries(
      'Leader changes and term',
      'short',
      [q(`sum(increase(stego_raft_leader_changes_total{${S}}[${RATE}]))`, 'leader changes seen'), q(`max(stego_raft_term{${S}})`, 'term')],
      'Leader changes observed by the nodes, and the term.',
    ),
  );

  b.withRow(new RowBuilder('Requests'));
  b.withPanel(
    timeseries('Request rate by route', 'reqps', [q(`sum by (route) (rate(stego_http_request_duration_seconds_count{${S}, ${USER_ROUTES}}[${RATE}]))`, '{{route}}')], 'Requests per second answered by the nodes (probes and scrapes excluded).'),
  );
  b.withPanel(
    timeseries(
      'Error ratio by route',
      'percentunit',
      [
        q(
          `(sum by (route) (rate(stego_http_request_duration_seconds_count{${S}, ${USER_ROUTES}, status=~"5.."}[${RATE}])) or sum by (route) (rate(stego_http_request_duration_seconds_count{${S}, ${USER_ROUTES}}[${RATE}])) * 0)\n/ sum by (route) (rate(stego_http_request_duration_seconds_count{${S}, ${USER_ROUTES}}[${RATE}]))`,
          '{{route}}',
        ),
      ],
      'Share of 5xx answers. 503 means busy (retry) or no leader.',
    ).min(0),
  );
  b.withPanel(
    timeseries(
      'Latency p50 / p99 by route',
      's',
      [
        q(`histogram_quantile(0.99, sum by (route, le) (rate(stego_http_request_duration_seconds_bucket{${S}, ${USER_ROUTES}}[${RATE}])))`, 'p99 {{route}}'),
        q(`histogram_quantile(0.5, sum by (route, le) (rate(stego_http_request_duration_seconds_bucket{${S}, ${USER_ROUTES}}[${RATE}])))`, 'p50 {{route}}'),
      ],
      'Request duration percentiles over all nodes.',
    ),
  );

  b.withRow(new RowBuilder('Embed and extract'));
  b.withPanel(
    timeseries('Payload throughput', 'Bps', [q(`sum by (operation) (rate(stego_payload_bytes_total{${S}}[${RATE}]))`, '{{operation}}')], 'Payload bytes hidden (embed) and recovered (extract) per second.'),
  );
  b.withPanel(
    timeseries('Stego jobs by kind and outcome', 'ops', [q(`sum by (kind, outcome) (rate(stego_pool_job_duration_seconds_count{${S}}[${RATE}]))`, '{{kind}} {{outcome}}')], 'Jobs finished by the worker pools per second.'),
  );
  b.withPanel(
    timeseries('Stego job p99 by kind', 's', [q(`histogram_quantile(0.99, sum by (kind, le) (rate(stego_pool_job_duration_seconds_bucket{${S}}[${RATE}])))`, '{{kind}}')], 'Submit → result, queueing included.'),
  );

  b.withRow(new RowBuilder('Replication'));
  b.withPanel(timeseries('Replication lag', 'short', [q(`max by (peer) (stego_raft_peer_lag_entries{${S}})`, '{{peer}}')], 'Entries each follower is behind the leader\'s last index (reported by the leader).'));
  b.withPanel(
    timeseries(
      'Commit and applied index',
      'short',
      [q(`max by (instance) (stego_raft_commit_index{${S}})`, 'commit {{instance}}'), q(`max by (instance) (stego_raft_applied_index{${S}})`, 'applied {{instance}}')],
      'Log positions per node; a node whose line stalls is not keeping up.',
    ),
  );
  b.withPanel(timeseries('Raft links up', 'short', [q(`sum by (instance) (stego_raft_peer_link_up{${S}})`, '{{instance}}')], 'Peers each node has a live Raft link to.'));
  b.withPanel(
    timeseries(
      'Heartbeat RTT and append latency p99',
      's',
      [
        q(`histogram_quantile(0.99, sum by (peer, le) (rate(stego_raft_heartbeat_rtt_seconds_bucket{${S}}[${RATE}])))`, 'heartbeat {{peer}}'),
        q(`histogram_quantile(0.99, sum by (peer, le) (rate(stego_raft_append_duration_seconds_bucket{${S}}[${RATE}])))`, 'append {{peer}}'),
      ],
      'Leader → follower round trips.',
    ),
  );
  b.withPanel(
    timeseries(
      'Proposals',
      'ops',
      [q(`sum by (outcome) (rate(stego_raft_proposals_total{${S}}[${RATE}]))`, '{{outcome}}'), q(`sum by (outcome) (rate(stego_cluster_forwarded_writes_total{${S}}[${RATE}]))`, 'forwarded {{outcome}}')],
      'Proposals on the leader by outcome, and writes followers forwarded to it.',
    ),
  );
  b.withPanel(
    timeseries('Proposal latency p99', 's', [q(`histogram_quantile(0.99, sum by (le) (rate(stego_raft_proposal_duration_seconds_bucket{${S}}[${RATE}])))`, 'propose → applied')], 'On the leader: propose → applied.'),
  );

  b.withRow(new RowBuilder('Storage'));
  b.withPanel(
    timeseries('Data volume free', 'percentunit', [q(`stego_storage_volume_available_bytes{${S}} / stego_storage_volume_size_bytes{${S}}`, '{{instance}}')], 'Free share of the volume holding each node\'s data directory.').min(0).max(1),
  );
  b.withPanel(
    timeseries(
      'Log and snapshot size',
      'bytes',
      [q(`max by (instance) (stego_storage_log_size_bytes{${S}})`, 'log {{instance}}'), q(`max by (instance) (stego_raft_snapshot_size_bytes{${S}})`, 'snapshot {{instance}}')],
      'Durable log (WAL) bytes on disk and the latest snapshot.',
    ),
  );
  b.withPanel(
    timeseries('fsync p99', 's', [q(`histogram_quantile(0.99, sum by (instance, le) (rate(stego_storage_fsync_duration_seconds_bucket{${S}}[${RATE}])))`, '{{instance}}')], 'Durable log save (write + fdatasync) per Ready.'),
  );
  b.withPanel(
    timeseries(
      'Snapshots',
      'short',
      [q(`sum by (event) (increase(stego_raft_snapshots_total{${S}}[${RATE}]))`, '{{event}}')],
      'Snapshots created, sent, received and installed.',
    ),
  );
  b.withPanel(
    timeseries('Snapshot duration p99', 's', [q(`histogram_quantile(0.99, sum by (event, le) (rate(stego_raft_snapshot_duration_seconds_bucket{${S}}[${RATE}])))`, '{{event}}')], 'Create, send and install.'),
  );

  b.withRow(new RowBuilder('Workers and memory'));
  b.withPanel(
    timeseries(
      'Worker pool',
      'short',
      [q(`sum by (instance) (stego_pool_queued_jobs{${S}})`, 'queued {{instance}}'), q(`sum by (instance) (stego_pool_busy_workers{${S}})`, 'busy {{instance}}')],
      'Jobs waiting and workers busy per node.',
    ),
  );
  b.withPanel(
    timeseries(
      'Rejections',
      'reqps',
      [
        q(`sum by (instance) (rate(stego_pool_rejected_total{${S}}[${RATE}]))`, 'pool full {{instance}}'),
        q(`sum by (instance) (rate(stego_memory_budget_rejections_total{${S}}[${RATE}]))`, 'memory budget {{instance}}'),
      ],
      'Requests refused with 503 because the pool queue or the memory budget was full.',
    ),
  );
  b.withPanel(
    timeseries(
      'Memory budget used',
      'percentunit',
      [q(`max by (instance) (stego_memory_budget_in_use_bytes{${S}} / stego_memory_budget_limit_bytes{${S}})`, '{{instance}}')],
      'Bytes admitted against the memory budget.',
    ).max(1),
  );
  b.withPanel(
    timeseries(
      'Event-loop delay p99',
      's',
      [
        q(`histogram_quantile(0.99, sum by (instance, loop, le) (rate(stego_event_loop_delay_seconds_bucket{${S}}[${RATE}])))`, '{{loop}} {{instance}}'),
        q(`histogram_quantile(0.99, sum by (instance, le) (rate(stego_consensus_loop_delay_seconds_bucket{${S}}[${RATE}])))`, 'consensus {{instance}}'),
      ],
      'How late the HTTP loop ran a 20 ms timer, and how late the consensus thread ran a Raft tick. Heartbeats (50 ms) need the consensus loop well under the election timeout.',
    ),
  );
  b.withPanel(
    timeseries(
      'Consensus GC pauses p99',
      's',
      [q(`histogram_quantile(0.99, sum by (instance, kind, le) (rate(stego_consensus_gc_pause_seconds_bucket{${S}}[${RATE}])))`, '{{kind}} {{instance}}')],
      "The consensus thread's garbage-collection pauses by kind. A late Raft tick beside a long pause is the heap's doing; a pause near the 150 ms election timeout can cost the leader (pauses of 50 ms or more are also logged).",
    ),
  );
  b.withPanel(timeseries('Resident memory', 'bytes', [q(`max by (instance) (stego_process_resident_memory_bytes{${S}})`, '{{instance}}')], 'Process RSS per node.'));
  b.withPanel(timeseries('CPU', 'percentunit', [q(`sum by (instance) (rate(stego_process_cpu_seconds_total{${S}}[${RATE}]))`, '{{instance}}')], 'CPU cores used per node.'));

  b.withRow(new RowBuilder('Operator'));
  b.withPanel(
    timeseries(
      'Reconciles',
      'ops',
      [
        q(`sum by (result) (rate(stego_operator_reconciles_total{${OP}}[${RATE}]))`, '{{result}}'),
        q(`sum by (reason) (rate(stego_operator_reconcile_errors_total{${OP}}[${RATE}]))`, 'error: {{reason}}'),
      ],
      'Reconciles of this StegoCluster by result, and errors by reason.',
    ),
  );
  b.withPanel(
    timeseries('Reconcile duration p99', 's', [q(`histogram_quantile(0.99, sum by (le) (rate(stego_operator_reconcile_duration_seconds_bucket{${OP}}[${RATE}])))`, 'p99')], 'Time per reconcile.'),
  );
  b.withPanel(
    timeseries(
      'Operator activity',
      'short',
      [
        q('max(stego_operator_workqueue_depth)', 'queue depth'),
        q(`sum by (operation) (increase(stego_operator_scale_operations_total{${OP}}[${RATE}]))`, '{{operation}}'),
        q(`sum(increase(stego_operator_observed_leader_changes_total{${OP}}[${RATE}]))`, 'leader changes observed'),
        q(`sum by (resource) (increase(stego_operator_watch_restarts_total[${RATE}]))`, 'watch restarts {{resource}}'),
      ],
      'Work queue, membership changes, observed failovers and watch restarts.',
    ),
  );
  return b.build();
}

/** The operator's own health across every StegoCluster it manages (the overview's Operator row is per StegoCluster). */
export function operatorDashboard(): Dashboard {
  const b = dashboard(
    'StegoCluster operator',
    'stego-operator',
    'Reconciles, errors, work queue, membership changes, observed failovers, watch restarts and the leading replica of the StegoCluster operator.',
    ['stegocluster', 'operator'],
  ).withVariable(new DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'));
  const CR = 'stegocluster_namespace, stegocluster';
  const CR_LEGEND = '{{stegocluster_namespace}}/{{stegocluster}}';
  b.withPanel(timeseries('Reconciles by result', 'ops', [q(`sum by (result) (rate(stego_operator_reconciles_total[${RATE}]))`, '{{result}}')], 'Reconcile passes over all StegoClusters: converged, progressing (a requeue is planned) or error.'));
  b.withPanel(
    timeseries(
      'Reconcile duration p50 / p99',
      's',
      [
        q(`histogram_quantile(0.5, sum by (le) (rate(stego_operator_reconcile_duration_seconds_bucket[${RATE}])))`, 'p50'),
        q(`histogram_quantile(0.99, sum by (le) (rate(stego_operator_reconcile_duration_seconds_bucket[${RATE}])))`, 'p99'),
      ],
      'Time per reconcile pass (API writes and member probes included).',
    ),
  );
  b.withPanel(
    timeseries('Reconcile errors by step', 'ops', [q(`sum by (${CR}, reason) (rate(stego_operator_reconcile_errors_total[${RATE}]))`, `${CR_LEGEND} {{reason}}`)], 'Failed reconciles by StegoCluster and the step that failed (see the StegoOperatorReconcileErrors runbook entry).'),
  );
  b.withPanel(timeseries('Work queue depth', 'short', [q('max(stego_operator_workqueue_depth)', 'queued')], 'StegoClusters waiting to be reconciled.'));
  b.withPanel(
    timeseries('Membership and pod changes', 'short', [q(`sum by (${CR}, operation) (increase(stego_operator_scale_operations_total[${RATE}]))`, `${CR_LEGEND} {{operation}}`)], 'StatefulSet scaling, members added and removed, leadership transfers and replaced pods.'),
  );
  b.withPanel(
    timeseries('Raft leader changes observed', 'short', [q(`sum by (${CR}) (increase(stego_operator_observed_leader_changes_total[${RATE}]))`, CR_LEGEND)], 'Leader changes the operator saw in each StegoCluster.'),
  );
  b.withPanel(
    timeseries('Watch restarts', 'short', [q(`sum by (resource, reason) (increase(stego_operator_watch_restarts_total[${RATE}]))`, '{{resource}} {{reason}}')], 'Informer watches that ended and were started again (gone: re-listed after 410; watchdog: silent too long).'),
  );
  b.withPanel(timeseries('Leading replica', 'none', [q('max by (pod) (stego_operator_is_leader)', '{{pod}}')], '1 for the replica that holds the leader Lease.').max(1));
  return b.build();
}

/** Every dashboard, by file name under charts/stego-operator/dashboards/. */
export function dashboards(): Record<string, Dashboard> {
  return { 'stegocluster-overview.json': overviewDashboard(), 'stego-operator.json': operatorDashboard() };
}

export interface PanelQuery {
  dashboard: string;
  panel: string;
  refId: string;
  expr: string;
  legend: string;
}

/** Every panel target of every dashboard, in order. */
export function panelQueries(): PanelQuery[] {
  const out: PanelQuery[] = [];
  for (const [file, d] of Object.entries(dashboards())) {
    for (const p of d.panels ?? []) {
      if (!('targets' in p) || !p.targets) continue;
      for (const t of p.targets as { refId?: string; expr?: string; legendFormat?: string }[]) {
        if (t.expr) out.push({ dashboard: file, panel: p.title ?? '', refId: t.refId ?? '', expr: t.expr, legend: t.legendFormat ?? '' });
      }
    }
  }
  return out;
}

/** Grafana's variables as a Prometheus query sees them: one StegoCluster and a fixed rate window. */
export function expandVariables(expr: string, vars: { namespace: string; cluster: string; rateInterval: string }): string {
  return expr.replaceAll('$namespace', vars.namespace).replaceAll('$cluster', vars.cluster).replaceAll('$__rate_interval', vars.rateInterval);
}
