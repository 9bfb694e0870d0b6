// The driver: the one place where the pure consensus core (raft/), the durable log (storage/), the
// transport (transport/) and the object store meet. It owns time (a tick every tickMs) and I/O.
//
// Ready cycle (never two in flight; see docs/cluster.md):
//   1. softState     → role/leader bookkeeping, election log lines, metrics
//   2. snapshot      → (snapshots.ts) move the staged file into the durable snapshot store, restore the object store
//                      from it, install it in MemoryStorage
//   3. messages the core marks sendBeforePersist (a leader's appends) → transport
//   4. committedEntries this node already holds durably → object store, in order; conf changes into the
//      core; proposals resolved (they need not wait for the fsync of the newer entries below)
//   5. hardState + entries → DurableLog.save (resolves after fdatasync), then MemoryStorage
//   6. other messages → transport (only now: votes and acks must not precede their durability)
//   7. committedEntries among this Ready's own entries → object store
//   8. readStates    → linearizable reads released once applied ≥ their index
//   9. advance
// A storage failure at any step halts the node: it stops ticking, closes its links and refuses work.
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { NodeConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { RaftMetrics, RoleName, PeerSample } from '../metrics/raft.js';
import { decodeConfChange, type ConfChange } from '../raft/confchange.js';
import { ConfChangeError, NotLeaderError, ProposalDroppedError } from '../raft/errors.js';
import type { Message } from '../raft/message.js';
import type { PeerProgress } from '../raft/progress.js';
import type { Role } from '../raft/raft.js';
import { RawNode, type Ready } from '../raft/rawnode.js';
import { MemoryStorage } from '../raft/storage.js';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from '../raft/types.js';
import { DurableLog } from '../storage/durable-log.js';
import { nextTurn } from '../storage/yielding.js';
import type { StorageFaults } from '../storage/options.js';
import type { Transport } from '../transport/types.js';
import { decodeCommand, encodeCommand, type Command } from './commands.js';
import { ElectionLog } from './election-log.js';
import { ClusterError, haltErrorOf, type HaltError } from './errors.js';
import { ObjectStore, type PutOutcome } from './object-store.js';
import { Snapshots } from './snapshots.js';
import type { ClusterStatusView, NodeStatusView } from './status-view.js';
import { AppliedWaiters, ProposalTracker, until } from './waiters.js';

/** The node's own settings come straight from NodeConfig (documented there), so the two cannot drift. */
export interface RaftNodeOptions
  extends Pick<
    NodeConfig,
    | 'dataDir'
    | 'peers'
    | 'join'
    | 'tickMs'
    | 'heartbeatTicks'
    | 'electionTicks'
    | 'snapshotEntries'
    | 'snapshotBytes'
    | 'snapshotTrailingEntries'
    | 'linkLostRankMs'
    | 'fsyncDeadlineMs'
    | 'requestTimeoutMs'
  > {
  id: NodeId;
  transport: Transport;
  logger: Logger;
  /** NodeConfig.snapshotIntervalMs; absent or 0: snapshots by size only. */
  snapshotIntervalMs?: number;
  metrics?: RaftMetrics;
  /** Test-only storage fault injection. */
  storageFaults?: StorageFaults;
  randomSeed?: number;
}


const ROLE_NAMES: Record<Role, RoleName> = { leader: 'Leader', candidate: 'Candidate', preCandidate: 'PreCandidate', follower: 'Follower' };

const BOOTSTRAP_INDEX = 1;
const BOOTSTRAP_TERM = 1;
const MAX_SIZE_PER_MSG = 4 * 1024 * 1024;
const MAX_INFLIGHT_MSGS = 256;
const MAX_UNCOMMITTED_BYTES = 512 * 1024 * 1024;

/** Events a RaftNode emits: the known leader changed; the node stopped taking part (failure, removal, stop). */
export interface RaftNodeEvents {
  leader: [leader: NodeId | null];
  halted: [];
}

/**
 * Committed entries a member may still have to apply and count as ready. Under a steady stream of writes every
 * member, the leader included, is always an entry or two behind the newest commit it has heard of; requiring
 * zero lag made /readyz fail at random under load (pods flapping out of the Service, a scale-up waiting on a
 * member that keeps up fine). A member replaying a real backlog (after a restart, a snapshot) stays unready.
 */
const READY_APPLY_LAG_ENTRIES = 64;

/** Put outcomes kept for the requests that proposed them (see RaftNode.putOutcomes). */
const PUT_OUTCOMES_KEPT = 4096;
export class RaftNode {
  readonly id: NodeId;
  readonly events = new EventEmitter<RaftNodeEvents>();
  readonly store: ObjectStore;
  private readonly raw: RawNode;
  private readonly mem: MemoryStorage;
  private readonly log: DurableLog;
  private readonly transport: Transport;
  private readonly logger: Logger;
  private readonly metrics: RaftMetrics | undefined;
  private readonly electionLog: ElectionLog;
  private readonly proposals = new ProposalTracker();
  readonly appliedWaiters: AppliedWaiters;
  /**
   * What the apply of each recent put entry did, by log index, until the request that proposed it takes
   * it (takePutOutcome). Bounded: the oldest are dropped past PUT_OUTCOMES_KEPT (an entry whose request
   * went away, or applied on a node no request here proposed through).
   */
  private readonly putOutcomes = new Map<number, PutOutcome>();
  private readonly readWaiters = new Map<string, { resolve: (index: number) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly lastHeard = new Map<NodeId, number>();
  /** Leader: send times of heartbeats not yet answered, per peer (oldest first), for the RTT histogram. */
  private readonly heartbeatsInFlight = new Map<NodeId, number[]>();
  /** Leader: appends with entries in flight per peer, as [last index carried, send time], oldest first. */
  private readonly appendsInFlight = new Map<NodeId, Array<[number, number]>>();
  private lastTickAt = 0;
  /** Leader: when heartbeats last left (performance.now()); see onTick. */
  private lastBeatAt = 0;
  private readonly heartbeatMs: number;

  private ticker: NodeJS.Timeout | undefined;
  private readyScheduled = false;
  private inReady = false;
  private stopped = false;
  private failure: HaltError | undefined;
  private removedFromCluster = false;

  /** The soft state of the last Ready, to log and count transitions (the current one is the core's). */
  private lastSoft: { role: RoleName; leader: NodeId | null } = { role: 'Follower', leader: null };
  private lastKnownLeader: NodeId | null = null;
  private hs: HardState;
  /** The hard state last written to the durable log. */
  private hsSaved: HardState;
  private applied: number;
  private conf: ConfState;
  private readonly snapshots: Snapshots;
  private readSeq = 0;
  /**
   * Highest commit index a leader advertised in an append. A lagging follower's own commit index is
   * capped by what it holds (heartbeats carry min(commit, match)), so readiness also waits for this.
   */
  private leaderCommitSeen = 0;

  private constructor(
    private readonly opts: RaftNodeOptions,
    parts: { log: DurableLog; mem: MemoryStorage; store: ObjectStore; raw: RawNode; hs: HardState; conf: ConfState; applied: number },
  ) {
    this.id = opts.id;
    this.transport = opts.transport;
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.log = parts.log;
    this.mem = parts.mem;
    this.store = parts.store;
    this.raw = parts.raw;
    this.hs = parts.hs;
    this.hsSaved = { ...parts.hs };
    this.conf = parts.conf;
    this.applied = parts.applied;
    this.snapshots = new Snapshots(
      { id: opts.id, log: parts.log, mem: parts.mem, store: parts.store, raw: parts.raw, transport: opts.transport, logger: opts.logger, metrics: opts.metrics },
      opts,
      {
        halted: () => this.halted(),
        applied: () => this.applied,
        waitApplied: (index, timeoutMs) => this.appliedWaiters.wait(index, timeoutMs),
        confState: () => this.confState(),
        saveCommitIndex: () => this.saveCommitIndex(),
        fatal: (e) => this.onFatal(e),
        kick: () => this.kick(),
      },
      parts.applied,
    );
    this.appliedWaiters = new AppliedWaiters(() => this.applied);
    this.heartbeatMs = opts.heartbeatTicks * opts.tickMs;
    const electionMs = opts.electionTicks * opts.tickMs;
    this.electionLog = new ElectionLog(opts.logger, opts.id, 2 * electionMs, opts.metrics);
  }

  /** Opens the durable state, replays it into the core and starts ticking. */
  static async start(opts: RaftNodeOptions): Promise<RaftNode> {
    const logger = opts.logger;
    const { log, state } = await DurableLog.open(path.join(opts.dataDir, 'raft'), {
      fsyncDeadlineMs: opts.fsyncDeadlineMs,
      logger,
      ...(opts.storageFaults ? { faults: opts.storageFaults } : {}),
    });
    // packs sit beside the log's snapshot directories, on the same filesystem: they are hard links to them
    const store = await ObjectStore.open({ packsDir: path.join(opts.dataDir, 'raft', 'packs'), legacyObjectsDir: path.join(opts.dataDir, 'objects') });
    store.seedMembers(opts.peers);

    let snapshot = state.snapshot;
    const fresh = snapshot.index === 0 && state.entries.length === 0 && state.hardState.term === 0;
    if (fresh && !opts.join) {
      snapshot = await writeBootstrapSnapshot(log, store, [...opts.peers.keys()].sort());
      logger.info({ voters: snapshot.conf.voters }, 'bootstrapped a new cluster from PEERS');
    } else if (snapshot.index > 0) {
      const info = log.latestSnapshot();
      if (!info) throw new Error('durable log reports a snapshot but has no snapshot file');
      await store.loadFromSnapshot(info.path);
      store.seedMembers(opts.peers);
    }
    // packs no retained snapshot names: left by a crash after a snapshot's retention, before its collection
    await store.collectGarbage(() => log.snapshots()).catch((e: unknown) => {
      logger.warn({ err: (e as Error).message }, 'packs not collected at start');
    });

    // a crash between publishing a snapshot and writing the hard state after it leaves a stored commit
    // below the snapshot; the snapshot is committed state by definition
    const hardState = { ...state.hardState, commit: Math.max(state.hardState.commit, snapshot.index) };
    const mem = new MemoryStorage();
    if (snapshot.index > 0) mem.applySnapshot(snapshot);
    mem.setHardState(hardState);
    mem.append(state.entries);

    const raw = new RawNode({
      id: opts.id,
      storage: mem,
      electionTicks: opts.electionTicks,
      heartbeatTicks: opts.heartbeatTicks,
      randomSeed: opts.randomSeed ?? randomBytes(4).readUInt32BE(0),
      preVote: true,
      checkQuorum: true,
      maxSizePerMsg: MAX_SIZE_PER_MSG,
      maxInflightMsgs: MAX_INFLIGHT_MSGS,
      maxUncommittedBytes: MAX_UNCOMMITTED_BYTES,
      applied: snapshot.index,
      linkLostRankTicks: Math.max(1, Math.round(opts.linkLostRankMs / opts.tickMs)),
    });

    const node = new RaftNode(opts, { log, mem, store, raw, hs: hardState, conf: snapshot.conf, applied: snapshot.index });
    const inConf = snapshot.conf.voters.includes(opts.id) || snapshot.conf.learners.includes(opts.id);
    if (snapshot.conf.voters.length > 0 && !inConf && !opts.join) {
      // restarted after its removal was compacted into a snapshot
      node.removedFromCluster = true;
      logger.warn({}, 'this node is not in the configuration of its snapshot: it was removed and will not take part');
    }
    node.wireTransport();
    node.updatePeers();
    node.ticker = setInterval(() => node.onTick(), opts.tickMs);
    node.metrics?.attach(node.metricsSource());
    logger.info(
      { snapshot_index: snapshot.index, last_index: mem.lastIndex(), commit: hardState.commit, term: hardState.term, join: opts.join },
      'raft node started',
    );
    node.kick();
    return node;
  }

  // ---- public API used by the HTTP layer and admin operations ---------------------------------------

  get leaderId(): NodeId | null {
    return this.failure || this.removedFromCluster ? null : this.raw.leader;
  }

  get isLeader(): boolean {
    return this.leaderId === this.id;
  }

  get appliedIndex(): number {
    return this.applied;
  }

  get commitIndex(): number {
    return this.raw.commitIndex;
  }

  get term(): number {
    return this.raw.term;
  }

  /** Why the node halted for good (storage failed or stalled, or an internal failure), if it did. */
  get haltCause(): HaltError | undefined {
    return this.failure;
  }

  get removed(): boolean {
    return this.removedFromCluster;
  }

  confState(): ConfState {
    return { voters: [...this.conf.voters], learners: [...this.conf.learners] };
  }

  /** Ready: knows a leader and has applied everything it knows to be committed. */
  readiness(): { ready: boolean; reason: string } {
    if (this.failure) return { ready: false, reason: `halted (${this.failure.code}): ${this.failure.message}` };
    if (this.removedFromCluster) return { ready: false, reason: 'removed from the cluster' };
    if (this.stopped) return { ready: false, reason: 'stopping' };
    if (this.raw.leader === null) return { ready: false, reason: 'no leader known' };
    const commit = Math.max(this.raw.commitIndex, this.leaderCommitSeen);
    if (commit - this.applied > READY_APPLY_LAG_ENTRIES) {
      return { ready: false, reason: `catching up (applied ${this.applied} < commit ${commit})` };
    }
    return { ready: true, reason: 'ok' };
  }

  /** Throws the ClusterError that explains why this node cannot take part in a request right now. */
  assertServing(): void {
    if (this.failure) throw new ClusterError('unavailable', `node ${this.id} halted (${this.failure.code}): ${this.failure.message}`);
    if (this.removedFromCluster) throw new ClusterError('unavailable', `node ${this.id} was removed from the cluster`);
    if (this.stopped) throw new ClusterError('unavailable', `node ${this.id} is stopping`);
  }

  /** Proposes on this node, which must be the leader; resolves with the index once applied here. */
  /** What applying the put at `index` did (once; undefined when this node did not apply it from the log). */
  takePutOutcome(index: number): PutOutcome | undefined {
    const outcome = this.putOutcomes.get(index);
    this.putOutcomes.delete(index);
    return outcome;
  }

  async proposeLocal(data: Uint8Array): Promise<number> {
    this.assertServing();
    const started = process.hrtime.bigint();
    let pos: { index: number; term: number };
    try {
      pos = this.raw.propose(data);
    } catch (e) {
      throw this.translateProposeError(e);
    }
    this.kick();
    try {
      const index = await this.proposals.track(pos.index, pos.term, this.opts.requestTimeoutMs);
      this.metrics?.proposals.inc({ outcome: 'committed' });
      this.metrics?.proposalSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      return index;
    } catch (e) {
      this.metrics?.proposals.inc({ outcome: (e as ClusterError).code === 'proposal_lost' ? 'lost' : 'failed' });
      throw e;
    }
  }

  async proposeCommand(cmd: Command): Promise<number> {
    return this.proposeLocal(encodeCommand(cmd));
  }

  /**
   * Proposes a membership change on the leader; resolves once it is applied here. A change refused
   * because an earlier one is not applied yet (e.g. the entries a new leader inherited) is proposed
   * again once this node has applied up to the core's pending index, within the request timeout.
   */
  async proposeConfChange(cc: ConfChange): Promise<number> {
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    for (;;) {
      this.assertServing();
      let pos: { index: number; term: number };
      try {
        pos = this.raw.proposeConfChange(cc);
      } catch (e) {
        if (!(e instanceof ConfChangeError) || e.rejection.reason !== 'pending' || Date.now() >= deadline) {
          throw this.translateProposeError(e);
        }
        // a timeout or a failure is reported by the next pass (change_in_progress, or assertServing)
        await this.appliedWaiters.wait(e.rejection.pendingIndex, Math.max(1, deadline - Date.now())).catch(() => undefined);
        continue;
      }
      this.kick();
      return this.proposals.track(pos.index, pos.term, Math.max(1, deadline - Date.now()));
    }
  }

  /**
   * Waits until this node can serve a linearizable read: ReadIndex (forwarded to the leader by the core
   * when we are a follower), then applied ≥ the read index.
   */
  async readBarrier(): Promise<void> {
    const deadline = Date.now() + this.opts.requestTimeoutMs;
    // A read index request travels to the leader and is lost if leadership moves meanwhile (the core
    // does not answer lost requests), so each attempt is short and a new one follows a leader change.
    const attemptMs = Math.max(500, 4 * this.opts.electionTicks * this.opts.tickMs);
    for (;;) {
      this.assertServing();
      if (this.raw.leader === null) await this.waitForLeader(this.leaderWaitMs());
      const left = deadline - Date.now();
      const index = await this.requestReadIndex(Math.min(attemptMs, Math.max(1, left))).catch((e: unknown) => {
        if ((e as ClusterError).code === 'timeout' && Date.now() < deadline - 10) return undefined;
        throw e;
      });
      if (index !== undefined) {
        await this.appliedWaiters.wait(index, Math.max(1, deadline - Date.now()));
        return;
      }
    }
  }

  private requestReadIndex(timeoutMs: number): Promise<number> {
    const ctx = Buffer.alloc(12);
    ctx.writeUInt32BE(++this.readSeq >>> 0, 0);
    randomBytes(8).copy(ctx, 4);
    const key = ctx.toString('hex');
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readWaiters.delete(key);
        reject(new ClusterError('timeout', `read index not confirmed by a leader within ${timeoutMs} ms`));
      }, timeoutMs);
      this.readWaiters.set(key, { resolve, reject, timer });
      try {
        this.raw.readIndex(ctx);
      } catch (e) {
        clearTimeout(timer);
        this.readWaiters.delete(key);
        reject(this.translateProposeError(e));
        return;
      }
      this.kick();
    });
  }

  /** Resolves when a leader is known (or rejects with no_leader after `ms`). */
  async waitForLeader(ms: number): Promise<NodeId> {
    this.assertServing();
    if (!(await until(this.events, 'leader', () => this.raw.leader !== null, ms))) {
      throw new ClusterError('no_leader', `no leader elected within ${ms} ms; retry shortly`);
    }
    return this.raw.leader!;
  }

  /**
   * Resolves once a leader other than `previous` is known, or after `ms` (whatever is known then): a
   * request that failed against the old leader retries as soon as there is a new one, without polling.
   */
  async waitForLeaderChange(previous: NodeId | null, ms: number): Promise<void> {
    await until(this.events, 'leader', () => this.raw.leader !== null && this.raw.leader !== previous, ms);
  }

  /** How long a request waits for an election before answering 503: a bit more than one slow election. */
  leaderWaitMs(): number {
    return Math.min(this.opts.requestTimeoutMs, 4 * this.opts.electionTicks * this.opts.tickMs);
  }

  transferLeader(to: NodeId): void {
    this.assertServing();
    this.electionLog.transferRequested();
    this.raw.transferLeader(to);
    this.kick();
  }

  /**
   * The transport dropped a message to `peer` (link down or its in-flight cap reached): the leader stops
   * streaming optimistically to it and probes again, instead of waiting for the window to time out.
   */
  reportUnreachable(peer: NodeId): void {
    // a dropped heartbeat is never answered: restart the RTT pairing instead of shifting every later one
    this.heartbeatsInFlight.delete(peer);
    this.appendsInFlight.delete(peer);
    if (this.halted() || this.raw.role !== 'leader') return;
    this.raw.reportUnreachable(peer);
  }

  /**
   * A member refused our link because we were removed (we missed the entry, e.g. we were down, or it
   * was compacted into a snapshot we never received): stop taking part, as if we had applied it.
   */
  removedBy(peer: NodeId): void {
    if (this.halted()) return;
    const conf = this.raw.status().conf;
    if (!conf.voters.includes(peer) && !conf.learners.includes(peer)) return; // only a member's word counts
    this.logger.warn({ by: peer }, 'a member refused our link: this node was removed from the cluster');
    this.leaveCluster();
  }

  /** Leader only: replication progress of a peer. */
  progressOf(id: NodeId): { match: number; next: number } | undefined {
    const p = this.progressMap().get(id);
    return p ? { match: p.match, next: p.next } : undefined;
  }

  lastIndex(): number {
    return this.mem.lastIndex();
  }

  /** Read at one instant from the core: the term and the leader always belong together. */
  status(): ClusterStatusView {
    const term = this.raw.term;
    const leader = this.leaderId;
    const role = this.currentRole();
    const members = this.store.members();
    const ids = new Set<NodeId>([...this.conf.voters, ...this.conf.learners]);
    if (ids.size === 0) ids.add(this.id);
    const progress = this.progressMap();
    const links = this.transport.linkStats();
    const now = Date.now();
    const stale = 4 * this.opts.electionTicks * this.opts.tickMs;
    const nodes: NodeStatusView[] = [...ids].sort().map((id) => {
      const voter = this.conf.voters.includes(id);
      const view: NodeStatusView = { id, role: 'Unknown', healthy: false, voter, raft_address: members.get(id) ?? null };
      if (id === this.id) {
        view.healthy = this.failure === undefined && !this.removedFromCluster;
        view.role = role;
      } else {
        const link = links.get(id);
        const heard = this.lastHeard.get(id);
        const contact = link?.lastContactMs ?? (heard === undefined ? undefined : now - heard);
        if (contact !== undefined) view.last_contact_ms = contact;
        view.healthy = (link?.connected ?? false) && (contact === undefined || contact < stale);
        if (view.healthy) view.role = id === leader ? 'Leader' : voter ? 'Follower' : 'Learner';
      }
      const p = progress.get(id);
      if (p) {
        view.match_index = p.match;
        view.next_index = p.next;
      }
      return view;
    });
    return {
      node_id: this.id,
      term,
      leader_id: leader,
      commit_index: this.raw.commitIndex,
      applied_index: this.applied,
      last_index: this.mem.lastIndex(),
      snapshot_index: this.snapshots.index,
      storage_failed: this.failure?.storage ? this.failure.message : null,
      halted: this.failure ? `${this.failure.code}: ${this.failure.message}` : null,
      removed: this.removedFromCluster,
      nodes,
    };
  }

  /** Graceful stop: hand leadership over if we hold it, then stop ticking and close the log. */
  async stop(opts: { transferLeadership?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    if (opts.transferLeadership !== false && this.isLeader) await this.handOverLeadership(2000).catch(() => undefined);
    this.stopped = true;
    clearInterval(this.ticker);
    this.events.emit('halted');
    const err = new ClusterError('unavailable', `node ${this.id} is stopping`);
    this.failWaiters(err);
    // let an in-flight Ready finish its fsync so nothing acknowledged is lost
    const deadline = Date.now() + 2000;
    while (this.inReady && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await this.store.close().catch(() => undefined);
    if (!this.failure) await this.saveCommitIndex().catch(() => undefined);
    await this.log.close();
  }

  /** Transfers leadership to the most caught-up other voter and waits until someone else leads. */
  async handOverLeadership(timeoutMs: number, to?: NodeId): Promise<NodeId> {
    const target = to ?? this.bestTransferTarget();
    if (target === undefined) throw new ClusterError('invalid_member', 'no other voter to hand leadership to');
    this.transferLeader(target);
    const moved = (): boolean => this.raw.leader !== null && this.raw.leader !== this.id;
    if (await until(this.events, 'leader', moved, timeoutMs)) return this.raw.leader!;
    throw new ClusterError('timeout', `leadership did not move to ${target} within ${timeoutMs} ms`);
  }

  bestTransferTarget(): NodeId | undefined {
    const progress = this.progressMap();
    let best: NodeId | undefined;
    let bestMatch = -1;
    for (const id of this.conf.voters) {
      if (id === this.id || !this.transport.isConnected(id)) continue;
      const m = progress.get(id)?.match ?? 0;
      if (m > bestMatch) {
        best = id;
        bestMatch = m;
      }
    }
    return best;
  }

  // ---- transport wiring ---------------------------------------------------------------------------

  private wireTransport(): void {
    this.transport.on('message', (m) => this.onMessage(m as unknown as Message));
    this.transport.on('linkDown', (peer) => {
      if (this.halted()) return;
      if (peer === this.raw.leader) this.electionLog.leaderLinkLost();
      this.heartbeatsInFlight.delete(peer);
      this.appendsInFlight.delete(peer);
      this.raw.peerLinkLost(peer);
      this.kick();
    });
    this.transport.handleSnapshots((from, meta, file) => this.snapshots.stage(from, meta, file));
  }

  private onMessage(m: Message): void {
    if (this.halted()) return;
    this.lastHeard.set(m.from, Date.now());
    if (m.type === 'heartbeatResp') this.heartbeatAnswered(m.from);
    if (m.type === 'appResp' && !m.reject) this.appendAcknowledged(m.from, m.index);
    if (m.type === 'snap' && m.snapshot && !this.snapshots.isStaged(m.snapshot)) {
      this.logger.warn({ from: m.from, index: m.snapshot.index }, 'snap message without a staged snapshot file; dropped');
      return;
    }
    if (m.type === 'timeoutNow') this.electionLog.timeoutNowReceived();
    if (m.type === 'app' && m.term >= this.raw.term && m.commit > this.leaderCommitSeen) this.leaderCommitSeen = m.commit;
    try {
      this.raw.step(m);
    } catch (e) {
      this.logger.warn({ err: (e as Error).message, type: m.type, from: m.from }, 'core refused a message');
      return;
    }
    this.sendUrgent();
    this.kick();
  }

  /** Links to every address in the replicated address book (members, and a member being added). */
  private updatePeers(): void {
    if (this.halted()) return;
    const peers = this.store.members();
    peers.delete(this.id);
    this.transport.setPeers(peers);
  }

  // ---- tick and Ready loop ------------------------------------------------------------------------

  private heartbeatAnswered(peer: NodeId): void {
    const sentAt = this.heartbeatsInFlight.get(peer)?.shift();
    if (sentAt !== undefined) this.metrics?.heartbeatRttSeconds.observe({ peer }, (performance.now() - sentAt) / 1000);
  }

  private appendAcknowledged(peer: NodeId, index: number): void {
    const q = this.appendsInFlight.get(peer);
    if (!q) return;
    const now = performance.now();
    // one acknowledgement covers every append up to the index it accepted
    while (q.length > 0 && q[0]![0] <= index) this.metrics?.appendSeconds.observe({ peer }, (now - q.shift()![1]) / 1000);
  }

  private onTick(): void {
    if (this.halted()) return;
    const now = performance.now();
    if (this.lastTickAt > 0) this.metrics?.loopDelaySeconds.observe(Math.max(0, now - this.lastTickAt - this.opts.tickMs) / 1000);
    this.lastTickAt = now;
    this.raw.tick();
    this.sendUrgent();
    // A tick runs late whenever this loop is busy, and the core counts its heartbeat interval in ticks:
    // at 20 ms per tick a leader's heartbeats went out every 200 ms, past a follower's 150 ms election
    // timeout on a loop that ticked on time. Heartbeats follow the clock instead.
    // (send() stamps lastBeatAt for every heartbeat, tick- or clock-driven)
    if (this.raw.leader === this.id && now - this.lastBeatAt >= this.heartbeatMs && this.raw.beat()) this.sendUrgent();
    if (this.raw.hasReady()) this.kick();
    // the time trigger cannot wait for a Ready: an idle cluster's heartbeats make none
    else if (!this.inReady) this.snapshots.maybeTake();
  }

  /** Heartbeats and their answers leave at once, even while a Ready's entries are being written. */
  private sendUrgent(): void {
    for (const m of this.raw.takeUrgentMessages()) this.send(m);
  }

  private halted(): boolean {
    return this.stopped || this.failure !== undefined || this.removedFromCluster;
  }

  /** Schedules a Ready cycle; coalesces many events (messages, ticks, proposals) into one. */
  private kick(): void {
    if (this.readyScheduled || this.inReady) return;
    this.readyScheduled = true;
    setImmediate(() => {
      this.readyScheduled = false;
      void this.readyLoop();
    });
  }

  private async readyLoop(): Promise<void> {
    if (this.inReady) return;
    this.inReady = true;
    try {
      while (!this.halted() && this.raw.hasReady()) {
        const rd = this.raw.ready();
        await this.handleReady(rd);
        if (this.failure) return;
        this.raw.advance(rd);
      }
    } catch (e) {
      this.onFatal(e);
    } finally {
      this.inReady = false;
    }
    // events that arrived during the last await found inReady set and did not schedule a cycle
    if (!this.halted() && this.raw.hasReady()) this.kick();
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.role, rd.softState.leader, rd.hardState?.term ?? this.raw.term);
    if (rd.snapshot && rd.snapshot.index > 0) await this.installSnapshot(rd.snapshot);
    // Committed entries this node already holds durably are applied before this Ready's own write: they
    // are on a majority's disks, so their writers need not wait for the fsync of newer entries (a leader
    // under load would otherwise answer every batch one fsync late). Those among this Ready's entries (a
    // follower learning a commit together with the entries) wait for the write, so nothing is applied
    // that this node's log does not hold.
    const [durable, afterPersist] = splitAtIndex(rd.committedEntries, rd.entries[0]?.index ?? Infinity);
    if (durable.length > 0) {
      this.applyEntries(durable);
      // A leader's Ready that only commits (a quorum just acknowledged) is the last step before its
      // writers' answers; its messages only tell the followers the new commit index. Sent first, they
      // woke the followers' threads, which took the cores while the answers waited to be posted (one
      // client, bench:raft: 0.37 ms p50 from apply to the answers' post). The answers leave first.
      if (rd.entries.length === 0 && this.isLeader) {
        // the answers of the waiters settled now are posted at setImmediate (MessageBatcher); an immediate
        // queued while immediates run waits for the next turn, so the second turn comes after that post
        await nextTurn();
        await nextTurn();
        if (this.halted()) return;
      }
    }
    // The core says when this Ready's messages may leave before its own entries are durable (a leader
    // replicating in parallel with its fsync, Raft thesis §10.2.1); otherwise votes and acknowledgements
    // leave only once what they promise is on disk.
    if (rd.sendBeforePersist) for (const m of rd.messages) this.send(m);
    if (rd.hardState || rd.entries.length > 0) await this.persist(rd.hardState, rd.entries, rd.mustSync, rd.snapshot !== undefined);
    if (this.failure) return;
    if (!rd.sendBeforePersist) for (const m of rd.messages) this.send(m);
    if (afterPersist.length > 0) this.applyEntries(afterPersist);
    for (const rs of rd.readStates) this.releaseRead(rs.index, rs.ctx);
    this.snapshots.maybeTake();
  }

  private onSoftState(role: Role, leader: NodeId | null, term: number): void {
    const prev = { ...this.lastSoft, term: this.hs.term };
    const next = { role: this.roleName(role), leader };
    this.lastSoft = next;
    if (next.role !== 'Leader') {
      this.heartbeatsInFlight.clear();
      this.appendsInFlight.clear();
    }
    // a change is a *different* leader becoming known (a gap with no leader in between does not count twice)
    if (leader !== null && leader !== this.lastKnownLeader) {
      this.metrics?.leaderChanges.inc();
      this.lastKnownLeader = leader;
    }
    this.electionLog.transition(prev, { ...next, term });
    if (leader !== prev.leader) this.events.emit('leader', leader);
  }

  private roleName(role: Role): RoleName {
    if (role === 'follower' && this.conf.learners.includes(this.id)) return 'Learner';
    return ROLE_NAMES[role];
  }

  /** This node's role now, from the core ('Unknown' once it stopped taking part). */
  private currentRole(): RoleName {
    return this.failure || this.removedFromCluster ? 'Unknown' : this.roleName(this.raw.role);
  }

  /**
   * A change of the commit index alone is not written (etcd's mustSync=false): Raft does not need it
   * durable, and an fsync per commit advance would double the write latency. It is written with the next
   * entries or vote, before every snapshot (the core refuses a stored commit below the snapshot index)
   * and at shutdown.
   */
  private async persist(hs: HardState | undefined, entries: Entry[], mustSync: boolean, force: boolean): Promise<void> {
    if (mustSync || entries.length > 0 || force) {
      const started = process.hrtime.bigint();
      try {
        await this.log.save(hs ?? this.hs, entries);
      } catch (e) {
        this.onFatal(e);
        return;
      }
      this.metrics?.fsyncSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      this.hsSaved = { ...(hs ?? this.hs) };
    }
    if (entries.length > 0) {
      this.mem.append(entries);
      this.snapshots.appended(entries);
    }
    if (hs) {
      this.mem.setHardState(hs);
      this.hs = { ...hs };
    }
  }

  /** Makes the current commit index durable if it is not yet (before a snapshot, at shutdown). */
  private async saveCommitIndex(): Promise<void> {
    const commit = this.hs.commit;
    if (this.hsSaved.commit >= commit) return;
    // the commit alone: this.hs may trail a Ready's save still in the log's queue (a new term or vote),
    // and writing it whole after that save took the term back (chaos run: "term 4 then 3" in a WAL)
    await this.log.saveCommit(commit);
    if (commit > this.hsSaved.commit) this.hsSaved = { ...this.hsSaved, commit };
  }

  private send(m: Message): void {
    this.electionLog.outgoing(m);
    if (m.type === 'heartbeat') this.lastBeatAt = performance.now();
    if (m.type === 'heartbeat' && this.metrics) {
      const q = this.heartbeatsInFlight.get(m.to) ?? [];
      // answers to dropped heartbeats never come: keep only what a live peer could still answer
      if (q.length >= 64) q.shift();
      q.push(performance.now());
      this.heartbeatsInFlight.set(m.to, q);
    }
    if (m.type === 'app' && m.entries && m.entries.length > 0 && this.metrics) {
      const q = this.appendsInFlight.get(m.to) ?? [];
      if (q.length >= 256) q.shift();
      q.push([m.index + m.entries.length, performance.now()]);
      this.appendsInFlight.set(m.to, q);
    }
    if (m.type === 'snap') {
      this.snapshots.send(m);
      return;
    }
    this.transport.send(m as never);
  }

  // ---- apply --------------------------------------------------------------------------------------

  /** Synchronous: the object store updates its in-memory state at once, no I/O. */
  private applyEntries(entries: Entry[]): void {
    const started = process.hrtime.bigint();
    for (const e of entries) {
      if (e.index <= this.applied) continue;
      let err: Error | undefined;
      if (e.type === 'normal' && e.data.byteLength > 0) err = this.applyCommand(e);
      else if (e.type === 'conf') this.applyConf(e);
      this.applied = e.index;
      this.proposals.applied(e.index, e.term, err);
      if (this.halted()) break;
    }
    this.appliedWaiters.notify();
    this.metrics?.applySeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
  }

  private applyCommand(e: Entry): Error | undefined {
    let cmd: Command;
    try {
      cmd = decodeCommand(e.data);
    } catch (err) {
      // every node decodes the same bytes the same way, so skipping keeps the replicas identical
      this.logger.error({ index: e.index, err: (err as Error).message }, 'undecodable command skipped');
      return err as Error;
    }
    const outcome = this.store.apply(cmd);
    if (outcome) {
      this.putOutcomes.set(e.index, outcome);
      if (this.putOutcomes.size > PUT_OUTCOMES_KEPT) this.putOutcomes.delete(this.putOutcomes.keys().next().value!);
    }
    if (cmd.kind === 'setMember' || cmd.kind === 'removeMember') this.updatePeers();
    return undefined;
  }

  private applyConf(e: Entry): void {
    const cc = decodeConfChange(e.data);
    const wasMember = this.conf.voters.includes(this.id) || this.conf.learners.includes(this.id);
    this.conf = this.raw.applyConfChange(cc);
    this.logger.info({ index: e.index, change: cc, voters: this.conf.voters, learners: this.conf.learners }, 'membership change applied');
    const isMember = this.conf.voters.includes(this.id) || this.conf.learners.includes(this.id);
    this.updatePeers();
    if (wasMember && !isMember) this.leaveCluster();
  }

  private leaveCluster(): void {
    this.removedFromCluster = true;
    clearInterval(this.ticker);
    this.logger.warn({ term: this.hs.term }, 'this node was removed from the cluster; it no longer takes part');
    this.events.emit('halted');
    this.failWaiters(new ClusterError('unavailable', `node ${this.id} was removed from the cluster`));
    // give the final acknowledgements a moment to leave before the links close
    setTimeout(() => this.transport.setPeers(new Map()), 500).unref();
  }

  private releaseRead(index: number, ctx: Uint8Array): void {
    const key = Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('hex');
    const w = this.readWaiters.get(key);
    if (!w) return;
    this.readWaiters.delete(key);
    clearTimeout(w.timer);
    w.resolve(index);
  }

  // ---- snapshots ----------------------------------------------------------------------------------

  /** Installs the snapshot a Ready carries, then adopts its configuration and applied index. */
  private async installSnapshot(meta: SnapshotMeta): Promise<void> {
    await this.snapshots.install(meta);
    this.conf = { voters: [...meta.conf.voters], learners: [...meta.conf.learners] };
    this.applied = meta.index;
    this.proposals.failUpTo(meta.index);
    this.appliedWaiters.notify();
    this.updatePeers();
  }

  // ---- failure ------------------------------------------------------------------------------------

  private onFatal(e: unknown): void {
    if (this.failure) return;
    const err = haltErrorOf(e);
    this.failure = err;
    clearInterval(this.ticker);
    const wasLeader = this.raw.role === 'leader';
    this.electionLog.halted(this.hs.term, err);
    this.logger.fatal(
      { err: err.message, code: err.code, was_leader: wasLeader, term: this.hs.term },
      err.storage
        ? 'STORAGE FAILURE: this node stepped down and refuses all work; restart it (crash-only recovery) once the disk is healthy'
        : 'INTERNAL FAILURE: this node stepped down and refuses all work; restart it (crash-only recovery) and report the error',
    );
    // stop the transport, not just our dials: peers would re-dial and keep a link to a node that no
    // longer answers; a refused connection is the clearest signal (their linkDown starts an election)
    void this.transport.stop().catch(() => undefined);
    this.failWaiters(new ClusterError('unavailable', `node ${this.id} halted (${err.code}): ${err.message}`));
    this.events.emit('halted');
  }

  private failWaiters(err: ClusterError): void {
    this.proposals.failAll(err);
    this.appliedWaiters.failAll(err);
    for (const [key, w] of this.readWaiters) {
      this.readWaiters.delete(key);
      clearTimeout(w.timer);
      w.reject(err);
    }
  }

  private translateProposeError(e: unknown): Error {
    if (e instanceof NotLeaderError) {
      return new ClusterError('no_leader', e.leaderHint === null ? 'no leader is known; retry shortly' : `not the leader (leader is ${e.leaderHint})`);
    }
    if (e instanceof ProposalDroppedError) return new ClusterError('unavailable', `proposal dropped: ${e.reason}`);
    if (e instanceof ConfChangeError) {
      return new ClusterError(e.rejection.reason === 'pending' ? 'change_in_progress' : 'invalid_member', e.message);
    }
    return e as Error;
  }

  // ---- observability ------------------------------------------------------------------------------

  private progressMap(): Map<NodeId, PeerProgress> {
    if (this.raw.role !== 'leader') return new Map();
    return new Map(Object.entries(this.raw.status().progress));
  }


  private metricsSource() {
    return {
      term: () => this.raw.term,
      role: () => this.currentRole(),
      commitIndex: () => this.raw.commitIndex,
      appliedIndex: () => this.applied,
      storageFailed: () => this.failure?.storage === true,
      logBytes: () => this.log.stats().walBytes,
      snapshotBytes: () => this.log.latestSnapshot()?.size ?? 0,
      peers: (): PeerSample[] => {
        const links = this.transport.linkStats();
        const progress = this.progressMap();
        const last = this.mem.lastIndex();
        const ids = new Set<NodeId>([...links.keys(), ...progress.keys()]);
        ids.delete(this.id);
        return [...ids].map((id) => {
          const p = progress.get(id);
          const s: PeerSample = { id, linkUp: links.get(id)?.connected ?? false };
          if (p) {
            s.matchIndex = p.match;
            s.lag = Math.max(0, last - p.match);
          }
          return s;
        });
      },
    };
  }
}

/** The entries below `index`, and those from it on (entries are in index order). */
function splitAtIndex(entries: Entry[], index: number): [Entry[], Entry[]] {
  const cut = entries.findIndex((e) => e.index >= index);
  return cut < 0 ? [entries, []] : [entries.slice(0, cut), entries.slice(cut)];
}

/**
 * A brand-new cluster starts from the same snapshot on every node: index 1, term 1, the PEERS ids as
 * voters, no objects. Identical bytes everywhere, so the members agree on the configuration without
 * any exchange, and a member added later receives a real snapshot file like any lagging follower.
 */
async function writeBootstrapSnapshot(log: DurableLog, store: ObjectStore, voters: NodeId[]): Promise<SnapshotMeta> {
  const meta: SnapshotMeta = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, conf: { voters, learners: [] } };
  const pending = log.createSnapshot(meta);
  await store.writeSnapshot(pending.path, meta);
  const info = await pending.commit();
  await store.snapshotCommitted(info.path, meta);
  return meta;
}
