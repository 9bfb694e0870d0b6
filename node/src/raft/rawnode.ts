// Synchronous façade over the state machine (etcd rawnode.go). The driver loops:
//   tick()/step()/propose() … ; if (hasReady()) { rd = ready(); <persist, send, apply>; advance(rd) }
// The Ready contract is spelled out on the Ready interface below and in docs/raft.md.
import { coalesceMessages } from './coalesce.js';
import type { ConfChange } from './confchange.js';
import type { Message } from './message.js';
import { progressView, type PeerProgress } from './progress.js';
import { DEFAULT_MAX_SIZE_PER_MSG, Raft, type RaftConfig, type ReadState, type Role } from './raft.js';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from './types.js';

export type { RaftConfig, ReadState, Role } from './raft.js';

export interface SoftState {
  leader: NodeId | null;
  role: Role;
}

/**
 * One batch of work for the driver. Process it in this order, then call advance(rd):
 * 1. snapshot: install it (its data was staged by the transport) and MemoryStorage.applySnapshot(snapshot);
 * 2. hardState and entries: make them durable (entries may overwrite a suffix starting at entries[0].index);
 *    when mustSync is true this requires an fsync;
 * 3. messages: send only now — a vote or an append acknowledgement must never leave before the state it
 *    promises is on disk;
 * 4. committedEntries: apply in order (conf entries: call applyConfChange); readStates: serve each read once
 *    the applied index reaches readState.index.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: SnapshotMeta;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  mustSync: boolean;
  /**
   * True when `messages` may be sent before `hardState`/`entries` are durable: the node is leader, its term
   * and vote did not change in this Ready, and every message is an append, heartbeat, snapshot notice,
   * timeoutNow or read-index answer. Sending them early overlaps the leader's fsync with the followers'
   * (thesis §10.2.1); it is safe because the leader counts its own entries toward a commit only after
   * advance() tells it they are durable. Optional: a driver may always send after persisting.
   */
  sendBeforePersist: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | null;
  commit: number;
  applied: number;
  lastIndex: number;
  firstIndex: number;
  leader: NodeId | null;
  role: Role;
  leadTransferee: NodeId | null;
  conf: ConfState;
  /** Followers: ticks since the leader was last heard from. */
  ticksSinceLeaderContact: number;
  /** Leader only: every other member's replication progress. */
  progress: Record<NodeId, PeerProgress>;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private readonly maxSizePerMsg: number;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
    this.prevSoft = this.softState();
    // Compare against what is durable, so bootstrap entries and their hard state come out in the first Ready.
    this.prevHard = cfg.storage.initialState().hardState;
  }

  get id(): NodeId {
    return this.raft.id;
  }

  /** Cheap accessors for drivers and metrics (status() builds a full snapshot). */
  get role(): Role {
    return this.raft.role;
  }

  get term(): number {
    return this.raft.term;
  }

  get leader(): NodeId | null {
    return this.raft.lead;
  }

  get commitIndex(): number {
    return this.raft.log.committed;
  }

  get appliedIndex(): number {
    return this.raft.log.applied;
  }

  get lastIndex(): number {
    return this.raft.log.lastIndex();
  }

  get firstIndex(): number {
    return this.raft.log.firstIndex();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Leader: broadcasts heartbeats now and restarts the heartbeat interval (see Raft.beat). */
  beat(): boolean {
    return this.raft.beat();
  }

  /** Feeds a message received from a peer (a `snap` only once its data is fully staged). */
  step(m: Message): void {
    this.raft.step(m);
  }

  /** Appends a normal entry; throws NotLeaderError (with leaderHint) or ProposalDroppedError. */
  propose(data: Uint8Array): { index: number; term: number } {
    return this.raft.propose(data);
  }

  /** Proposes one membership change; throws ConfChangeError while another is unapplied or if it is invalid. */
  proposeConfChange(cc: ConfChange): { index: number; term: number } {
    return this.raft.proposeConfChange(cc);
  }

  /** Call when a committed `conf` entry is applied; returns the membership now in force. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Asks for a linearizable read point; the answer arrives as a Ready.readStates item with the same ctx. */
  readIndex(ctx: Uint8Array): void {
    this.raft.readIndex(ctx);
  }

  transferLeader(to: NodeId): void {
    this.raft.transferLeader(to);
  }

  reportUnreachable(id: NodeId): void {
    this.raft.reportUnreachable(id);
  }

  /** The transport finished (ok) or gave up streaming the snapshot announced by a `snap` message to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.reportSnapshot(id, ok);
  }

  peerLinkLost(id: NodeId): void {
    this.raft.peerLinkLost(id);
  }

  /** Campaign now (tests and manual failover); a no-op for non-voters and leaders. */
  campaign(): void {
    this.raft.hup(false);
  }

  private softState(): SoftState {
    return { leader: this.raft.lead, role: this.raft.role };
  }

  /**
   * Takes the heartbeats and heartbeat responses queued since the last ready(), provided the current term
   * is durable (a Ready carrying it was advanced). They promise nothing about the log (a heartbeat's
   * commit index is capped by the peer's durable match), so the driver may send them at once, even while
   * an earlier Ready's entries are still being written: a follower's long fsync of large entries then
   * does not starve the leader of answers (check-quorum, ReadIndex), nor a leader's its heartbeats.
   */
  takeUrgentMessages(): Message[] {
    const r = this.raft;
    if (r.term !== this.prevHard.term || r.msgs.length === 0) return [];
    const urgent: Message[] = [];
    const rest: Message[] = [];
    for (const m of r.msgs) (m.type === 'heartbeat' || m.type === 'heartbeatResp' ? urgent : rest).push(m);
    if (urgent.length > 0) r.msgs = rest;
    return urgent;
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = this.softState();
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) return true;
    if (!hardStateEqual(r.hardState(), this.prevHard)) return true;
    if (r.log.unstable.snapshot !== undefined) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    if (r.log.unstableEntries().length > 0) return true;
    return r.log.hasNextEnts();
  }

  /** The pending batch. Call advance(rd) after processing it and before calling ready() again. */
  ready(): Ready {
    const r = this.raft;
    const soft = this.softState();
    const hard = r.hardState();
    const entries = [...r.log.unstableEntries()];
    const snapshot = r.log.unstable.snapshot;
    const rd: Ready = {
      entries,
      committedEntries: r.log.nextEnts(),
      // one append (and one acknowledgement) per peer where the core queued several (coalesce.ts)
      messages: coalesceMessages(r.msgs, this.maxSizePerMsg),
      readStates: r.readStates,
      mustSync: entries.length > 0 || hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote,
      sendBeforePersist:
        r.role === 'leader' &&
        hard.term === this.prevHard.term &&
        hard.vote === this.prevHard.vote &&
        r.msgs.every((m) => Raft.earlyTypes.has(m.type)),
    };
    if (soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    if (!hardStateEqual(hard, this.prevHard)) rd.hardState = hard;
    if (snapshot) rd.snapshot = snapshot;
    r.msgs = [];
    r.readStates = [];
    return rd;
  }

  advance(rd: Ready): void {
    const r = this.raft;
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.snapshot) {
      r.log.stableSnapTo(rd.snapshot.index);
      if (r.log.applied < rd.snapshot.index) r.log.applied = rd.snapshot.index;
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry) {
      r.log.stableTo(lastEntry.index, lastEntry.term);
      r.persistedTo(lastEntry.index);
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted) {
      r.log.appliedTo(lastCommitted.index);
      r.reduceUncommittedSize(rd.committedEntries);
    }
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress: Record<NodeId, PeerProgress> = {};
    if (r.role === 'leader') {
      for (const [id, pr] of r.trk.progress) if (id !== r.id) progress[id] = progressView(pr, r.now);
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      firstIndex: r.log.firstIndex(),
      leader: r.lead,
      role: r.role,
      leadTransferee: r.leadTransferee,
      conf: r.confState(),
      ticksSinceLeaderContact: r.role === 'leader' ? 0 : r.electionElapsed,
      progress,
    };
  }

  /** Test and simulation hook: term of entry i in this node's log (undefined if compacted or absent). */
  debugTerm(i: number): number | undefined {
    const log = this.raft.log;
    if (i < log.firstIndex() - 1 || i > log.lastIndex()) return undefined;
    return log.term(i);
  }

  /** Test and simulation hook: the entries this node holds (storage + unstable), from its first index. */
  debugLog(): Entry[] {
    const r = this.raft.log;
    return r.slice(r.firstIndex(), r.lastIndex() + 1);
  }
}
