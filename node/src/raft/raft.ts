// The Raft state machine (after etcd-io/raft raft.go): no I/O, no clock, no unseeded randomness. Inputs are
// tick(), step(message) and local requests; outputs are queued messages and log/state changes that RawNode
// turns into a Ready batch. Section numbers refer to the Raft paper (Ongaro & Ousterhout 2014) and thesis.
import { applyToConf, confChangeProblem, decodeConfChange, encodeConfChange, type ConfChange } from './confchange.js';
import {
  CompactedError,
  ConfChangeError,
  NotLeaderError,
  ProposalDroppedError,
  RaftConfigError,
  UnavailableError,
} from './errors.js';
import { RaftLog } from './log.js';
import { TRANSFER_CTX, isTransferCampaign, makeMessage, type Message, type MessageType } from './message.js';
import { Progress, ProgressTracker } from './progress.js';
import { committedIndex, voteResult, type VoteResult } from './quorum.js';
import { SeededRandom } from './rand.js';
import { ReadOnly } from './readonly.js';
import type { Storage } from './storage.js';
import type { ConfState, Entry, EntryType, HardState, NodeId } from './types.js';

/** peerLinkLost: pre-vote retries while the other followers catch up on the same link loss, and their spacing. */
const FAST_RETRIES = 4;
const FAST_RETRY_TICKS = 3;

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Deliberate bugs, only for proving that the simulation's invariant checker catches them. Never set in production. */
export interface UnsafeTestingKnobs {
  /** Grant a vote to every candidate of the term, ignoring the vote already cast (breaks election safety). */
  voteTwice?: boolean;
  /** Grant votes without the §5.4.1 up-to-date check (breaks leader completeness). */
  ignoreLogUpToDate?: boolean;
  /** Answer ReadIndex at once, without confirming leadership with a heartbeat round (breaks linearizability). */
  readWithoutQuorum?: boolean;
}

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Election timeout in ticks; the effective timeout is randomized in [electionTicks, 2*electionTicks). */
  electionTicks: number;
  heartbeatTicks: number;
  randomSeed: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Upper bound of the entries' bytes in one append message (default 1 MiB; at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Appends in flight per follower in replicate state (default 256). */
  maxInflightMsgs?: number;
  /** Bytes of proposals the leader accepts beyond its commit index (default unlimited). */
  maxUncommittedBytes?: number;
  /** Upper bound of committed entries' bytes in one Ready (default 64 MiB; at least one). */
  maxCommittedSizePerReady?: number;
  /** Last index already applied by the state machine (restart with a durable state machine). */
  applied?: number;
  /** Initial voters of a brand-new cluster: written as committed conf entries 1..n when the storage is empty. Leave empty on a node that joins an existing cluster. */
  peers?: NodeId[];
  /** Initial learners (same condition as peers). */
  learners?: NodeId[];
  /** peerLinkLost: ticks between the campaigns of consecutive voters in id order (default 3). */
  linkLostRankTicks?: number;
  unsafeTestingKnobs?: UnsafeTestingKnobs;
}

export interface ReadState {
  index: number;
  ctx: Uint8Array;
}

const NO_DATA = new Uint8Array(0);
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
const DEFAULT_MAX_INFLIGHT = 256;
const DEFAULT_MAX_APPLY_BYTES = 64 * 1024 * 1024;

function validate(cfg: RaftConfig): void {
  if (!cfg.id) throw new RaftConfigError('id must be a non-empty string');
  if (!Number.isInteger(cfg.heartbeatTicks) || cfg.heartbeatTicks <= 0) throw new RaftConfigError('heartbeatTicks must be a positive integer');
  if (!Number.isInteger(cfg.electionTicks) || cfg.electionTicks <= cfg.heartbeatTicks) {
    throw new RaftConfigError('electionTicks must be an integer greater than heartbeatTicks');
  }
  if (cfg.maxInflightMsgs !== undefined && cfg.maxInflightMsgs <= 0) throw new RaftConfigError('maxInflightMsgs must be positive');
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | null = null;
  lead: NodeId | null = null;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  msgs: Message[] = [];
  readStates: ReadState[] = [];
  leadTransferee: NodeId | null = null;
  /** Index of the latest conf entry appended by this leader; no new change until it is applied. */
  pendingConfIndex = 0;
  uncommittedSize = 0;
  /** Ticks since the last election reset (followers: since hearing from the leader). */
  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  /** peerLinkLost: ticks until a fast pre-vote campaign, or null. */
  private fastCampaignIn: number | null = null;
  /**
   * peerLinkLost: quick pre-vote retries left. The other followers may not have seen the same link close
   * yet, and until they do their lease makes them ignore (not reject) our pre-vote; without a retry we would
   * sit as a pre-candidate until a whole election timeout passed.
   */
  private fastRetriesLeft = 0;
  /** peerLinkLost started the current campaign (cleared by any term/role change or a leader's message). */
  private linkLostCampaign = false;
  private tickCount = 0;
  private readOnly = new ReadOnly();
  private pendingReadIndex: Message[] = [];
  private readonly rng: SeededRandom;
  readonly electionTimeout: number;
  private readonly heartbeatTimeout: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxMsgSize: number;
  private readonly maxUncommitted: number;
  private readonly linkLostRankTicks: number;
  private readonly knobs: UnsafeTestingKnobs;

  constructor(cfg: RaftConfig) {
    validate(cfg);
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTicks;
    this.heartbeatTimeout = cfg.heartbeatTicks;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxMsgSize = cfg.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
    this.maxUncommitted = cfg.maxUncommittedBytes ?? Number.POSITIVE_INFINITY;
    this.linkLostRankTicks = cfg.linkLostRankTicks ?? 3;
    this.knobs = cfg.unsafeTestingKnobs ?? {};
    this.rng = new SeededRandom(cfg.randomSeed);
    this.trk = new ProgressTracker(cfg.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT);
    this.log = new RaftLog(cfg.storage, cfg.maxCommittedSizePerReady ?? DEFAULT_MAX_APPLY_BYTES);

    const { hardState, confState } = cfg.storage.initialState();
    let conf: ConfState = confState;
    const fresh = cfg.storage.lastIndex() === 0 && cfg.storage.snapshot().index === 0 && hardState.term === 0;
    if (fresh && (cfg.peers?.length ?? 0) > 0) {
      conf = this.bootstrap(cfg.peers ?? [], cfg.learners ?? []);
    } else {
      if (hardState.term !== 0 || hardState.commit !== 0) this.loadHardState(hardState);
      const applied = Math.max(cfg.applied ?? 0, this.log.applied);
      if (applied > this.log.applied) {
        conf = this.replayConfChanges(conf, applied);
        this.log.appliedTo(applied);
      }
    }
    this.applyConf(conf);
    this.becomeFollower(this.term, null);
  }

  /**
   * A brand-new cluster member writes the initial membership as committed conf entries at term 1 (as
   * etcd's Bootstrap does). Every initial member writes identical entries, and a member added later reads
   * the membership from the log like any other change. The driver applies them again: a no-op.
   */
  private bootstrap(peers: NodeId[], learners: NodeId[]): ConfState {
    const changes: ConfChange[] = [
      ...[...new Set(peers)].sort().map((node): ConfChange => ({ type: 'addVoter', node })),
      ...[...new Set(learners)].sort().map((node): ConfChange => ({ type: 'addLearner', node })),
    ];
    const ents: Entry[] = changes.map((cc, i) => ({ term: 1, index: i + 1, type: 'conf', data: encodeConfChange(cc) }));
    this.log.append(ents);
    this.log.commitTo(ents.length);
    this.term = 1;
    return changes.reduce<ConfState>((c, cc) => applyToConf(c, cc), { voters: [], learners: [] });
  }

  private loadHardState(hs: HardState): void {
    if (hs.commit > this.log.lastIndex()) {
      throw new RaftConfigError(`hard state commit ${hs.commit} is beyond the last index ${this.log.lastIndex()} (lost log entries?)`);
    }
    // A commit below the snapshot index is merely stale: the snapshot itself proves those entries committed.
    this.log.committed = Math.max(hs.commit, this.log.committed);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  /** A restarted node whose state machine is already past the snapshot must still know the membership. */
  private replayConfChanges(conf: ConfState, applied: number): ConfState {
    if (applied > this.log.lastIndex()) throw new RaftConfigError(`applied ${applied} is beyond the last index ${this.log.lastIndex()}`);
    // The state machine only applies committed entries, so a persisted commit below `applied` is stale.
    this.log.commitTo(applied);
    const first = this.log.firstIndex();
    if (applied < first) return conf;
    let out = conf;
    for (const e of this.log.slice(first, applied + 1)) {
      if (e.type === 'conf') out = applyToConf(out, decodeConfChange(e.data));
    }
    return out;
  }

  // ---- state -----------------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  confState(): ConfState {
    return { voters: [...this.trk.voters].sort(), learners: [...this.trk.learners].sort() };
  }

  /** A voter of its own configuration: only those campaign. */
  promotable(): boolean {
    return this.trk.voters.has(this.id);
  }

  get now(): number {
    return this.tickCount;
  }

  /**
   * A timeout in [electionTimeout, 2*electionTimeout), as the paper asks, but drawn from this node's own slot
   * of that range (slots in voter-id order) instead of the whole of it. When a leader fails silently every
   * follower starts counting from the same last heartbeat; with fully random timeouts two of them fire
   * within one vote round-trip often enough (~1 in 10 at 5 ms ticks) to split the vote and cost a second
   * timeout. Disjoint slots make that a rare coincidence of network delay, not of dice. The slot order
   * rotates with the term: a node whose log is too stale to win still disrupts (its vote request bumps
   * everyone's term and resets their timers), and with a fixed order it would fire first forever.
   */
  private resetRandomizedElectionTimeout(): void {
    const voters = this.trk.voterList();
    const index = voters.indexOf(this.id);
    const rank = (index + this.term) % Math.max(1, voters.length);
    if (index < 0 || voters.length < 2) {
      this.randomizedElectionTimeout = this.electionTimeout + this.rng.int(this.electionTimeout);
      return;
    }
    const slot = Math.max(1, Math.floor(this.electionTimeout / voters.length));
    this.randomizedElectionTimeout = this.electionTimeout + rank * slot + this.rng.int(slot);
  }

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = null;
    }
    this.lead = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.fastCampaignIn = null;
    this.fastRetriesLeft = 0;
    this.linkLostCampaign = false;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.trk.votes.clear();
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      const fresh = new Progress(last + 1, this.trk.maxInflight, pr.isLearner);
      // The leader counts only its durable entries toward a commit quorum (see persistedTo).
      if (id === this.id) fresh.match = this.log.lastStableIndex();
      this.trk.progress.set(id, fresh);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    // Reads in progress are dropped on any role or term change; callers time out and retry.
    this.readOnly = new ReadOnly();
    this.pendingReadIndex = [];
  }

  becomeFollower(term: number, lead: NodeId | null): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('invalid transition leader -> preCandidate');
    // Pre-vote changes neither term nor vote, so a partitioned node cannot inflate terms (thesis §9.6).
    this.trk.votes.clear();
    this.lead = null;
    this.fastCampaignIn = null;
    if (this.fastRetriesLeft > 0) {
      this.fastRetriesLeft--;
      this.fastCampaignIn = FAST_RETRY_TICKS;
    }
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('invalid transition leader -> candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new Error('invalid transition follower -> leader');
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.trk.progress.get(this.id)?.becomeReplicate();
    // Entries before our own noop may carry an unapplied conf change; forbid new ones until it is applied.
    this.pendingConfIndex = this.log.lastIndex();
    this.appendEntries([{ type: 'noop', data: NO_DATA }], false);
  }

  // ---- ticks -----------------------------------------------------------------------------------------

  tick(): void {
    this.tickCount++;
    if (this.role === 'leader') this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.fastCampaignIn !== null && --this.fastCampaignIn <= 0) {
      this.fastCampaignIn = null;
      if (this.lead === null) this.hup(false);
      return;
    }
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(false);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) {
        // §6.2 / check-quorum: a leader that has not heard from a majority for a whole election timeout
        // steps down, so clients are not left writing to a leader that can no longer commit.
        if (!this.trk.quorumActive(this.id)) {
          this.becomeFollower(this.term, null);
          return;
        }
        for (const [id, pr] of this.trk.progress) if (id !== this.id) pr.recentActive = false;
      }
      // Thesis §3.10: a transfer that did not finish within an election timeout is abandoned.
      if (this.leadTransferee !== null) this.leadTransferee = null;
    }
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readOnly.lastPendingCtx());
    }
  }

  /**
   * Leader: sends the heartbeats due now and restarts the heartbeat interval; elsewhere a no-op. For a
   * driver whose ticks ran late: heartbeats counted in ticks stretch with every late tick, while a follower
   * on a less loaded loop counts its election timeout at full speed.
   */
  beat(): boolean {
    if (this.role !== 'leader') return false;
    this.heartbeatElapsed = 0;
    this.bcastHeartbeat(this.readOnly.lastPendingCtx());
    return true;
  }

  // ---- elections (§5.2) ------------------------------------------------------------------------------

  /** Starts a campaign unless we lead, cannot vote, or an unapplied conf change might change who votes. */
  hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return;
    this.campaign(this.preVote && !transfer ? 'preVote' : 'vote', transfer);
  }

  private hasUnappliedConfChange(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const lo = Math.max(this.log.applied + 1, this.log.firstIndex());
    for (const e of this.log.slice(lo, this.log.committed + 1)) if (e.type === 'conf') return true;
    return false;
  }

  private campaign(kind: 'preVote' | 'vote', transfer: boolean): void {
    let term: number;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      term = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'preVote') this.campaign('vote', transfer);
      else this.becomeLeader();
      return;
    }
    const index = this.log.lastIndex();
    const logTerm = this.log.lastTerm();
    for (const id of this.trk.voterList()) {
      if (id === this.id) continue;
      this.send(makeMessage({ type: kind, from: this.id, to: id, term, index, logTerm, ...(transfer ? { ctx: TRANSFER_CTX } : {}) }));
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.trk.votes.has(id)) this.trk.votes.set(id, granted);
    return voteResult(this.trk.voterList(), this.trk.votes);
  }

  // ---- step ------------------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.to !== this.id) return;
    if ((m.type === 'vote' || m.type === 'preVote') && this.isRemovedSender(m.from)) return;
    if (m.term === 0) {
      // Only a forwarded readIndex travels without a term (it is a local request); anything else is garbage.
      if (m.type !== 'readIndex') return;
    } else if (m.term > this.term) {
      if (!this.acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.answerStaleTerm(m);
      return;
    }
    if (m.type === 'vote' || m.type === 'preVote') {
      this.handleVoteRequest(m);
      return;
    }
    switch (this.role) {
      case 'leader':
        this.stepLeader(m);
        return;
      case 'candidate':
      case 'preCandidate':
        this.stepCandidate(m);
        return;
      case 'follower':
        this.stepFollower(m);
        return;
    }
  }

  /** A node outside our configuration (removed, or never added) cannot make us change term or vote. */
  private isRemovedSender(from: NodeId): boolean {
    return (this.trk.voters.size > 0 || this.trk.learners.size > 0) && !this.trk.isMember(from);
  }

  private acceptHigherTerm(m: Message): boolean {
    if (m.type === 'vote' || m.type === 'preVote') {
      // Leader lease (§4.2.3 / thesis §9.6): while we hear from a live leader, ignore campaigns, unless the
      // leader itself asked for this one (leadership transfer).
      const inLease = this.checkQuorum && this.lead !== null && this.electionElapsed < this.electionTimeout;
      if (!isTransferCampaign(m) && inLease) return false;
    }
    if (m.type === 'preVote') return true; // never change term for a pre-vote
    if (m.type === 'preVoteResp' && !m.reject) return true; // the term is the one we are probing for
    const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
    this.becomeFollower(m.term, fromLeader ? m.from : null);
    return true;
  }

  private answerStaleTerm(m: Message): void {
    if ((this.checkQuorum || this.preVote) && (m.type === 'heartbeat' || m.type === 'app')) {
      // A deposed leader, cut off while we moved on, learns the newer term from this answer and steps down.
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from }));
    } else if (m.type === 'preVote') {
      this.send(makeMessage({ type: 'preVoteResp', from: this.id, to: m.from, reject: true }));
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType: MessageType = m.type === 'vote' ? 'voteResp' : 'preVoteResp';
    if (m.type === 'preVote' && this.racingLinkLostCampaign()) {
      // Two followers racing after the same leader crash must not both reach the vote (each would vote for
      // itself and split it, costing a whole election timeout): the earlier-ranked one goes on, the later
      // one yields and grants. Refusing a vote never endangers safety; the loser of this race only falls
      // back to its normal election timeout should the winner fail.
      if (!this.ranksBefore(m.from)) {
        this.send(makeMessage({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
        return;
      }
      this.becomeFollower(this.term, null);
    }
    // §5.2 one vote per term; a pre-vote for a future term binds nothing.
    const canVote =
      this.vote === m.from ||
      (this.vote === null && this.lead === null) ||
      (m.type === 'preVote' && m.term > this.term) ||
      (this.knobs.voteTwice === true && m.type === 'vote');
    // §5.4.1 election restriction.
    if (canVote && (this.log.isUpToDate(m.index, m.logTerm) || this.knobs.ignoreLogUpToDate === true)) {
      this.send(makeMessage({ type: respType, from: this.id, to: m.from, term: m.term }));
      if (m.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(makeMessage({ type: respType, from: this.id, to: m.from, term: this.term, reject: true }));
    }
  }

  /** Campaigning, or about to, because the leader's link closed (peerLinkLost). */
  private racingLinkLostCampaign(): boolean {
    return this.linkLostCampaign && (this.role === 'preCandidate' || this.fastCampaignIn !== null);
  }

  /** `other` comes before us in voter-id order, the order of link-lost campaigns. */
  private ranksBefore(other: NodeId): boolean {
    const voters = this.trk.voterList();
    const them = voters.indexOf(other);
    return them >= 0 && them < voters.indexOf(this.id);
  }

  // ---- leader ----------------------------------------------------------------------------------------

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'readIndex':
        this.leaderReadIndex(m);
        return;
      case 'transferLeader':
        this.leaderTransfer(m.from);
        return;
      case 'appResp':
        this.handleAppendResponse(m);
        return;
      case 'heartbeatResp':
        this.handleHeartbeatResponse(m);
        return;
      default:
        return;
    }
  }

  private touch(pr: Progress): void {
    pr.recentActive = true;
    pr.lastContactTick = this.tickCount;
  }

  private handleAppendResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    this.touch(pr);
    if (m.reject) {
      // Fast back-off (§5.3 optimisation): skip every entry of the follower's conflicting term at once.
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === 'replicate') pr.becomeProbe();
        this.sendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) return;
    if (pr.state === 'probe') pr.becomeReplicate();
    else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);

    if (this.maybeCommit()) {
      this.releasePendingReadIndex();
      this.bcastAppend();
    } else if (wasPaused) {
      this.sendAppend(m.from, true);
    }
    while (this.sendAppend(m.from, false)) {
      // keep the window full while there is something to send
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  private handleHeartbeatResponse(m: Message): void {
    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    this.touch(pr);
    pr.probeSent = false;
    if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
    if (pr.match < this.log.lastIndex()) this.sendAppend(m.from, true);
    if (m.ctx === undefined || m.ctx.byteLength === 0) return;
    const acks = this.readOnly.recvAck(m.from, m.ctx);
    if (!acks) return;
    const votes = new Map<NodeId, boolean>([...acks].map((id) => [id, true]));
    if (voteResult(this.trk.voterList(), votes) !== 'won') return;
    for (const rs of this.readOnly.advance(m.ctx)) this.answerReadIndex(rs.req, rs.index);
  }

  private leaderReadIndex(m: Message): void {
    if (this.trk.voters.size <= 1 || this.knobs.readWithoutQuorum === true) {
      this.answerReadIndex(m, this.log.committed);
      return;
    }
    // Thesis §6.4 step 1: until the noop of our term commits we do not know the latest commit index.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndex.push(m);
      return;
    }
    this.startReadIndexRound(m);
  }

  private startReadIndexRound(m: Message): void {
    this.readOnly.add(this.log.committed, m);
    this.readOnly.recvAck(this.id, m.ctx);
    this.bcastHeartbeat(m.ctx);
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const pending = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const m of pending) this.startReadIndexRound(m);
  }

  private answerReadIndex(req: Message, index: number): void {
    const ctx = req.ctx ?? NO_DATA;
    if (req.from === this.id) this.readStates.push({ index, ctx });
    else this.send(makeMessage({ type: 'readIndexResp', from: this.id, to: req.from, index, ctx }));
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  private leaderTransfer(transferee: NodeId): void {
    const pr = this.trk.progress.get(transferee);
    if (!pr || pr.isLearner) return;
    if (this.leadTransferee !== null) {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = null;
    }
    if (transferee === this.id) return;
    this.electionElapsed = 0; // the transfer has one election timeout to finish
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee, true);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(makeMessage({ type: 'timeoutNow', from: this.id, to }));
  }

  /** §5.3/§5.4.2: the highest index stored on a majority, if it belongs to our term. */
  maybeCommit(): boolean {
    const mci = committedIndex(this.trk.voterList(), (id) => this.trk.progress.get(id)?.match ?? 0);
    return this.log.maybeCommit(mci, this.term);
  }

  private appendEntries(es: { type: EntryType; data: Uint8Array }[], countSize: boolean): { index: number; term: number } {
    let li = this.log.lastIndex();
    const ents: Entry[] = es.map((e) => ({ term: this.term, index: ++li, type: e.type, data: e.data }));
    if (countSize) {
      const size = ents.reduce((s, e) => s + e.data.byteLength, 0);
      if (this.uncommittedSize > 0 && this.uncommittedSize + size > this.maxUncommitted) {
        throw new ProposalDroppedError('uncommitted_limit');
      }
      this.uncommittedSize += size;
    }
    li = this.log.append(ents);
    // Our own entries count toward the quorum only once durable (persistedTo), so appends may be sent to
    // followers while we are still writing them (thesis §10.2.1).
    return { index: li, term: this.term };
  }

  /** The driver made the log durable up to `index`: the leader may now count its own copy. */
  persistedTo(index: number): void {
    if (this.role !== 'leader') return;
    const pr = this.trk.progress.get(this.id);
    if (!pr || !pr.maybeUpdate(Math.min(index, this.log.lastStableIndex()))) return;
    if (this.maybeCommit()) {
      this.releasePendingReadIndex();
      this.bcastAppend();
    }
  }

  /** Messages a leader may send before its own entries are durable (none of them promises durability). */
  static earlyTypes: ReadonlySet<string> = new Set(['app', 'heartbeat', 'snap', 'timeoutNow', 'readIndexResp']);

  reduceUncommittedSize(ents: Entry[]): void {
    if (this.role !== 'leader') return;
    const size = ents.reduce((s, e) => s + (e.type === 'normal' ? e.data.byteLength : 0), 0);
    this.uncommittedSize = Math.max(0, this.uncommittedSize - size);
  }

  private checkCanPropose(): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.lead);
    if (!this.trk.progress.has(this.id)) throw new ProposalDroppedError('removed');
    if (this.leadTransferee !== null) throw new ProposalDroppedError('transferring');
  }

  propose(data: Uint8Array): { index: number; term: number } {
    this.checkCanPropose();
    const r = this.appendEntries([{ type: 'normal', data }], true);
    this.bcastAppend();
    return r;
  }

  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    this.checkCanPropose();
    if (this.pendingConfIndex > this.log.applied) {
      throw new ConfChangeError(`a membership change (index ${this.pendingConfIndex}) is still being applied; one change at a time`, {
        reason: 'pending',
        pendingIndex: this.pendingConfIndex,
      });
    }
    if (cc.type === 'addVoter') throw new ConfChangeError('add the node as a learner, then promote it once it has caught up');
    const problem = confChangeProblem(this.confState(), cc);
    if (problem !== null) throw new ConfChangeError(problem);
    const r = this.appendEntries([{ type: 'conf', data: encodeConfChange(cc) }], false);
    this.pendingConfIndex = r.index;
    this.bcastAppend();
    return r;
  }

  // ---- replication -----------------------------------------------------------------------------------

  /** Sends the next append (or a snapshot) to `to`; returns whether a message went out. */
  sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let prevTerm: number;
    let ents: Entry[];
    try {
      prevTerm = this.log.term(prevIndex);
      ents = this.log.entries(pr.next, this.maxMsgSize);
    } catch (e) {
      if (e instanceof CompactedError) return this.sendSnapshot(to, pr);
      throw e;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(makeMessage({ type: 'app', from: this.id, to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: this.log.committed }));
    if (pr.state === 'replicate' && ents.length > 0) {
      const last = (ents[ents.length - 1] as Entry).index;
      pr.optimisticUpdate(last);
      pr.inflights.add(last);
    } else if (pr.state === 'probe') {
      pr.probeSent = true;
    }
    return true;
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    // Only to a follower we know is alive: a snapshot is expensive (the state is PNG data).
    if (!pr.recentActive) return false;
    let snapshot;
    try {
      snapshot = this.log.snapshot();
    } catch (e) {
      if (e instanceof UnavailableError) return false;
      throw e;
    }
    if (snapshot.index === 0) return false;
    pr.becomeSnapshot(snapshot.index);
    this.send(makeMessage({ type: 'snap', from: this.id, to, snapshot }));
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  private bcastHeartbeat(ctx: Uint8Array | undefined): void {
    for (const [id, pr] of this.trk.progress) {
      if (id === this.id) continue;
      // Never tell a follower to commit beyond what it is known to hold.
      const commit = Math.min(pr.match, this.log.committed);
      this.send(makeMessage({ type: 'heartbeat', from: this.id, to: id, commit, ...(ctx ? { ctx } : {}) }));
    }
  }

  // ---- candidate / follower --------------------------------------------------------------------------

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
    switch (m.type) {
      case 'app':
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case 'voteResp':
      case 'preVoteResp': {
        if (m.type !== myResp) return;
        const res = this.poll(m.from, !m.reject);
        if (res === 'won') {
          if (this.role === 'preCandidate') this.campaign('vote', false);
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === 'lost') {
          this.becomeFollower(this.term, null);
        }
        return;
      }
      default:
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'app':
        this.heardFromLeader(m.from);
        this.handleAppend(m);
        return;
      case 'heartbeat':
        this.heardFromLeader(m.from);
        this.handleHeartbeat(m);
        return;
      case 'snap':
        this.heardFromLeader(m.from);
        this.handleSnapshot(m);
        return;
      case 'transferLeader':
      case 'readIndex':
        if (this.lead !== null) this.send({ ...m, to: this.lead });
        return;
      case 'timeoutNow':
        // The leader chose us: campaign at once, skipping pre-vote, marked so leases let it through.
        this.hup(true);
        return;
      case 'readIndexResp':
        this.readStates.push({ index: m.index, ctx: m.ctx ?? NO_DATA });
        return;
      default:
        return;
    }
  }

  private heardFromLeader(from: NodeId): void {
    this.electionElapsed = 0;
    this.fastCampaignIn = null;
    this.fastRetriesLeft = 0;
    this.linkLostCampaign = false;
    this.lead = from;
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries ?? []);
    if (lastNew !== undefined) {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, index: lastNew }));
      return;
    }
    // Log-matching check failed (§5.3). Hint the last index that might match and its term, so the leader
    // can skip the whole conflicting term instead of decrementing one index per round trip.
    const hintIndex = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    const hintTerm = this.log.termOrZero(hintIndex);
    this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm }));
  }

  private handleHeartbeat(m: Message): void {
    if (m.commit > this.log.committed) this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(makeMessage({ type: 'heartbeatResp', from: this.id, to: m.from, ...(m.ctx ? { ctx: m.ctx } : {}) }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s && this.restore(s)) {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, index: this.log.lastIndex() }));
    } else {
      this.send(makeMessage({ type: 'appResp', from: this.id, to: m.from, index: this.log.committed }));
    }
  }

  /** Installs a snapshot newer than our commit index; returns false if it brings nothing new. */
  private restore(s: { index: number; term: number; conf: ConfState }): boolean {
    if (s.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(s.index);
      return false;
    }
    this.log.restore({ index: s.index, term: s.term, conf: { voters: [...s.conf.voters], learners: [...s.conf.learners] } });
    this.applyConf(s.conf);
    return true;
  }

  // ---- membership ------------------------------------------------------------------------------------

  private applyConf(conf: ConfState): void {
    const last = this.log.lastIndex();
    const next = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.trk.progress.keys()]) if (!next.has(id)) this.trk.progress.delete(id);
    this.trk.voters.clear();
    this.trk.learners.clear();
    for (const id of conf.voters) this.trk.voters.add(id);
    for (const id of conf.learners) this.trk.learners.add(id);
    for (const id of next) {
      const isLearner = this.trk.learners.has(id);
      const pr = this.trk.progress.get(id);
      if (pr) {
        pr.isLearner = isLearner;
        continue;
      }
      const fresh = new Progress(last + 1, this.trk.maxInflight, isLearner);
      // A new member counts as active, so check-quorum does not depose the leader before it answers.
      fresh.recentActive = true;
      if (id === this.id) fresh.match = this.log.lastStableIndex();
      this.trk.progress.set(id, fresh);
    }
  }

  /** Applies a committed conf entry (call when the entry is applied, in log order). */
  applyConfChange(cc: ConfChange): ConfState {
    const conf = applyToConf(this.confState(), cc);
    this.applyConf(conf);
    if (this.role !== 'leader') return conf;
    if (!this.promotable()) {
      // A leader removed (or demoted) from the cluster steps down; the rest elect a new one.
      this.becomeFollower(this.term, null);
      return conf;
    }
    if (this.leadTransferee !== null && !this.trk.voters.has(this.leadTransferee)) this.leadTransferee = null;
    if (this.maybeCommit()) this.bcastAppend();
    else for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
    return conf;
  }

  // ---- local requests --------------------------------------------------------------------------------

  readIndex(ctx: Uint8Array): void {
    const m = makeMessage({ type: 'readIndex', from: this.id, to: this.id, ctx });
    if (this.role === 'leader') {
      this.leaderReadIndex(m);
      return;
    }
    if (this.lead === null || this.role !== 'follower') throw new NotLeaderError(this.lead);
    this.send({ ...m, to: this.lead });
  }

  transferLeader(to: NodeId): void {
    if (this.role === 'leader') {
      this.leaderTransfer(to);
      return;
    }
    if (this.lead === null) throw new NotLeaderError(null);
    this.send(makeMessage({ type: 'transferLeader', from: to, to: this.lead, term: this.term }));
  }

  reportUnreachable(id: NodeId): void {
    if (this.role !== 'leader') return;
    const pr = this.trk.progress.get(id);
    if (pr && pr.state === 'replicate') pr.becomeProbe();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    if (this.role !== 'leader') return;
    const pr = this.trk.progress.get(id);
    if (!pr || pr.state !== 'snapshot') return;
    if (!ok) pr.pendingSnapshot = 0;
    // Wait for the follower's answer (or the next heartbeat response) before sending more.
    pr.becomeProbe();
    pr.probeSent = true;
  }

  /**
   * The driver saw the persistent link to `id` close. If `id` is our leader, the process most likely died:
   * forget the leader (which also ends our lease, so we grant others' pre-votes) and pre-vote soon, staggered
   * by our rank among the remaining voters so two followers rarely split the vote. Safe because a pre-vote
   * still needs a majority that has also lost the leader; a live leader's next heartbeat restores everything.
   */
  peerLinkLost(id: NodeId): void {
    if (this.role === 'leader') {
      this.reportUnreachable(id);
      return;
    }
    if (this.role !== 'follower' || id !== this.lead) return;
    this.lead = null;
    if (!this.promotable()) return;
    const others = this.trk.voterList().filter((v) => v !== id);
    const rank = Math.max(0, others.indexOf(this.id));
    this.fastCampaignIn = 1 + rank * this.linkLostRankTicks + this.rng.int(2);
    this.fastRetriesLeft = FAST_RETRIES;
    this.linkLostCampaign = true;
  }

  private send(m: Message): void {
    if (m.type !== 'readIndex' && m.term === 0) m.term = this.term;
    // A forwarded readIndex keeps term 0: the leader treats it as a local request.
    if (m.type === 'readIndex') m.term = 0;
    this.msgs.push(m);
  }
}
