// Raft and cluster metrics. Gauges are read from the driver at scrape time (collect callbacks), so they
// cannot drift from the state they describe; counters and histograms are pushed as events happen.
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export const ROLES = ['Leader', 'Follower', 'Candidate', 'PreCandidate', 'Learner', 'Unknown'] as const;
/** The election events the driver logs (cluster/election-log.ts), each a value of the `event` label. */
export const ELECTION_EVENTS = ['campaign_started', 'pre_vote_granted', 'pre_vote_denied', 'vote_granted', 'vote_denied', 'became_leader', 'stepped_down', 'leader_changed'] as const;
const PROPOSAL_OUTCOMES = ['committed', 'lost', 'failed'] as const;
const SNAPSHOT_EVENTS = ['created', 'sent', 'received', 'installed'] as const;
export type RoleName = (typeof ROLES)[number];

export interface PeerSample {
  id: string;
  linkUp: boolean;
  /** Only known on the leader. */
  matchIndex?: number;
  lag?: number;
}

/** What the metrics read at scrape time. */
export interface RaftMetricsSource {
  term(): number;
  role(): RoleName;
  commitIndex(): number;
  appliedIndex(): number;
  storageFailed(): boolean;
  peers(): PeerSample[];
  /** Bytes of the durable log (WAL segments) on disk. Its gauge exists only when the source has it. */
  logBytes?(): number;
  /** Size of the latest snapshot file. Its gauge exists only when the source has it. */
  snapshotBytes?(): number;
}

export class RaftMetrics {
  readonly leaderChanges: Counter;
  readonly proposals: Counter<'outcome'>;
  readonly proposalSeconds: Histogram;
  readonly fsyncSeconds: Histogram;
  readonly applySeconds: Histogram;
  readonly snapshots: Counter<'event'>;
  readonly electionEvents: Counter<'event'>;
  /** How late the consensus event loop ran a raft tick. */
  readonly loopDelaySeconds: Histogram;
  /** The consensus thread's garbage-collection pauses, by kind (what a late tick may be waiting for). */
  readonly gcPauseSeconds: Histogram<'kind'>;
  /** Leader: send of an empty heartbeat → its response, per peer. */
  readonly heartbeatRttSeconds: Histogram<'peer'>;
  /** Leader: send of an append carrying entries → the peer's acknowledgement, per peer. */
  readonly appendSeconds: Histogram<'peer'>;
  /** Creating (write + fsync), sending and installing one snapshot. */
  readonly snapshotSeconds: Histogram<'event'>;
  /** Writes a follower forwarded to the leader, by outcome (ok, failed). */
  readonly forwardedWrites: Counter<'outcome'>;
  private source: RaftMetricsSource | undefined;
  private readonly registry: Registry;

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    const src = (): RaftMetricsSource | undefined => this.source;
    new Gauge({
      name: 'stego_raft_term', help: 'current raft term', registers,
      collect() { const s = src(); if (s) this.set(s.term()); },
    });
    new Gauge({
      name: 'stego_raft_role', help: '1 for the role this node has now, 0 for the others', labelNames: ['role'], registers,
      collect() {
        const s = src();
        if (!s) return;
        const role = s.role();
        for (const r of ROLES) this.set({ role: r }, r === role ? 1 : 0);
      },
    });
    new Gauge({
      name: 'stego_raft_is_leader', help: '1 while this node is the leader, else 0', registers,
      collect() { const s = src(); if (s) this.set(s.role() === 'Leader' ? 1 : 0); },
    });
    new Gauge({
      name: 'stego_raft_commit_index', help: 'highest log index known committed', registers,
      collect() { const s = src(); if (s) this.set(s.commitIndex()); },
    });
    new Gauge({
      name: 'stego_raft_applied_index', help: 'highest log index applied to the object store', registers,
      collect() { const s = src(); if (s) this.set(s.appliedIndex()); },
    });
    new Gauge({
      name: 'stego_raft_storage_failed', help: '1 when the durable log failed and the node stepped down', registers,
      collect() { const s = src(); if (s) this.set(s.storageFailed() ? 1 : 0); },
    });
    new Gauge({
      name: 'stego_raft_peer_link_up', help: '1 when the persistent raft link to the peer is up', labelNames: ['peer'], registers,
      collect() {
        const s = src();
        if (!s) return;
        this.reset();
        for (const p of s.peers()) this.set({ peer: p.id }, p.linkUp ? 1 : 0);
      },
    });
    new Gauge({
      name: 'stego_raft_peer_match_index', help: 'leader only: highest index known replicated on the peer', labelNames: ['peer'], registers,
      collect() {
        const s = src();
        if (!s) return;
        this.reset();
        for (const p of s.peers()) if (p.matchIndex !== undefined) this.set({ peer: p.id }, p.matchIndex);
      },
    });
    new Gauge({
      name: 'stego_raft_peer_lag_entries', help: 'leader only: entries the peer is behind the leader\'s last index', labelNames: ['peer'], registers,
      collect() {
        const s = src();
        if (!s) return;
        this.reset();
        for (const p of s.peers()) if (p.lag !== undefined) this.set({ peer: p.id }, p.lag);
      },
    });
    this.leaderChanges = new Counter({ name: 'stego_raft_leader_changes_total', help: 'times the known leader changed', registers });
    this.proposals = new Counter({
      name: 'stego_raft_proposals_total', help: 'proposals made on this node (the leader) by outcome (committed, lost, failed)', labelNames: ['outcome'], registers,
    });
    this.proposalSeconds = new Histogram({
      name: 'stego_raft_proposal_duration_seconds', help: 'propose → applied on this node', registers,
      buckets: [0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    });
    this.fsyncSeconds = new Histogram({
      name: 'stego_storage_fsync_duration_seconds', help: 'durable log save (write + fdatasync) per Ready', registers,
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2],
    });
    this.applySeconds = new Histogram({
      name: 'stego_raft_apply_duration_seconds', help: 'applying one Ready\'s committed entries', registers,
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    });
    this.snapshots = new Counter({
      name: 'stego_raft_snapshots_total', help: 'snapshots created, sent, received and installed', labelNames: ['event'], registers,
    });
    this.electionEvents = new Counter({
      name: 'stego_raft_election_events_total', help: 'election events logged by this node', labelNames: ['event'], registers,
    });
    // how late the consensus event loop runs a tick, against a 150-300 ms election timeout
    this.loopDelaySeconds = new Histogram({
      name: 'stego_consensus_loop_delay_seconds', help: 'how late the consensus event loop ran a raft tick', registers,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1],
    });
    this.gcPauseSeconds = new Histogram({
      name: 'stego_consensus_gc_pause_seconds', help: "the consensus thread's garbage-collection pauses, by kind (minor, major, incremental, weakcb)",
      labelNames: ['kind'], registers,
      buckets: [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.3, 0.5, 1],
    });
    // Whether a late tick is the machine's doing: how long the consensus thread was runnable but waited
    // for a CPU (Linux schedstat of the thread that renders these metrics, which is the consensus thread).
    let waitedSeconds = threadCpuWaitSeconds();
    if (waitedSeconds !== undefined) {
      new Counter({
        name: 'stego_consensus_thread_cpu_wait_seconds_total',
        help: 'time the consensus thread was runnable but waiting for a CPU (Linux schedstat): a late tick with a rising wait is the machine, not work on the thread',
        registers,
        collect() {
          const now = threadCpuWaitSeconds();
          if (now === undefined || waitedSeconds === undefined) return;
          if (now > waitedSeconds) this.inc(now - waitedSeconds);
          waitedSeconds = now;
        },
      });
    }
    this.heartbeatRttSeconds = new Histogram({
      name: 'stego_raft_heartbeat_rtt_seconds', help: 'leader only: heartbeat sent → response received, per peer', labelNames: ['peer'], registers,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1],
    });
    this.appendSeconds = new Histogram({
      name: 'stego_raft_append_duration_seconds', help: 'leader only: append with entries sent → acknowledged by the peer', labelNames: ['peer'], registers,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    });
    this.snapshotSeconds = new Histogram({
      name: 'stego_raft_snapshot_duration_seconds', help: 'time to create, send or install one snapshot', labelNames: ['event'], registers,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    });
    // every label value of these counters exists at 0 from the first scrape: a series born at 1 hides
    // its first event from rate() and increase(), which need a sample before the change
    for (const event of ELECTION_EVENTS) this.electionEvents.inc({ event }, 0);
    for (const outcome of PROPOSAL_OUTCOMES) this.proposals.inc({ outcome }, 0);
    for (const event of SNAPSHOT_EVENTS) this.snapshots.inc({ event }, 0);
    this.forwardedWrites = new Counter({
      name: 'stego_cluster_forwarded_writes_total', help: 'writes this follower forwarded to the leader, by outcome (ok, failed)', labelNames: ['outcome'], registers,
    });
    for (const outcome of ['ok', 'failed']) this.forwardedWrites.inc({ outcome }, 0);
  }

  attach(source: RaftMetricsSource): void {
    this.source = source;
    // gauges an unwired source cannot fill are not registered at all: no series beats a false 0
    const registers = [this.registry];
    const { logBytes, snapshotBytes } = source;
    if (logBytes && !this.registry.getSingleMetric('stego_storage_log_size_bytes')) {
      new Gauge({ name: 'stego_storage_log_size_bytes', help: 'bytes of the durable raft log (WAL segments) on disk', registers, collect() { this.set(logBytes()); } });
    }
    if (snapshotBytes && !this.registry.getSingleMetric('stego_raft_snapshot_size_bytes')) {
      new Gauge({ name: 'stego_raft_snapshot_size_bytes', help: 'size of the latest snapshot file on this node', registers, collect() { this.set(snapshotBytes()); } });
    }
  }
}

/**
 * The calling thread's time spent runnable but not running, from /proc/thread-self/schedstat (the second
 * field, in ns); undefined where the kernel does not expose it.
 */
function threadCpuWaitSeconds(): number | undefined {
  try {
    const waitedNs = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]);
    return Number.isFinite(waitedNs) ? waitedNs / 1e9 : undefined;
  } catch {
    return undefined;
  }
}
