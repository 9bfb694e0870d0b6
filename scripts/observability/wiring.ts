// Metrics that are defined in node/src/metrics but not yet observed by the code that owns the event, with
// the call site that will feed them. Until then their queries return no series (or only zeros) and the
// live test checks that those queries parse, and says which ones it could not check for data.
export const AWAITING_WIRING: Record<string, string> = {
  stego_raft_heartbeat_rtt_seconds: 'raft driver: RaftMetrics.heartbeatRttSeconds.observe({peer}, s) on a heartbeat response (issue 8)',
  stego_raft_append_duration_seconds: 'raft driver: RaftMetrics.appendSeconds.observe({peer}, s) when an append with entries is acknowledged (issue 8)',
  stego_cluster_forwarded_writes_total: 'cluster/service.ts: RaftMetrics.forwardedWrites.inc({outcome}) when a forwarded write settles (issue 8)',
  stego_memory_budget_limit_bytes: 'the byte budget: NodeMetrics.memoryBudget.attach({limitBytes, inUseBytes}) (issue 9)',
  stego_memory_budget_in_use_bytes: 'the byte budget: NodeMetrics.memoryBudget.attach({limitBytes, inUseBytes}) (issue 9)',
  stego_memory_budget_rejections_total: 'the byte budget: NodeMetrics.memoryBudget.rejections.inc() on each 503 for lack of budget (issue 9)',
  stego_payload_bytes_total: 'stego routes / pool: NodeMetrics.stego.jobDone(operation, payloadBytes, imageBytes) after a successful job (issue 9)',
  stego_image_bytes_total: 'stego routes / pool: NodeMetrics.stego.jobDone(operation, payloadBytes, imageBytes) after a successful job (issue 9)',
};

/** Operator metrics: exported by the operator process (issue 10), which the local cluster does not run. */
export function isOperatorMetric(name: string): boolean {
  return name.startsWith('stego_operator_');
}
