// The leader's view of each follower (etcd tracker/progress.go): which entries it has, and how fast we may
// send more. probe: one append at a time until we find where the logs match; replicate: stream optimistically
// inside an inflight window; snapshot: wait until the snapshot the transport is streaming is installed.
import type { NodeId } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Ring of the last index of each append in flight, so the window frees as acknowledgements arrive. */
export class Inflights {
  private readonly buf: number[] = [];

  constructor(readonly capacity: number) {}

  get count(): number {
    return this.buf.length;
  }

  full(): boolean {
    return this.buf.length >= this.capacity;
  }

  add(lastIndex: number): void {
    this.buf.push(lastIndex);
  }

  /** Frees every append whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.buf.length && (this.buf[n] as number) <= index) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  freeFirstOne(): void {
    this.buf.shift();
  }

  reset(): void {
    this.buf.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot being sent while in `snapshot` state. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** In probe state: an append is outstanding, wait for its answer (or a heartbeat response). */
  probeSent = false;
  /** Leader tick of the last message from this peer (for status / last contact). */
  lastContactTick = -1;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to `n`; returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  optimisticUpdate(n: number): void {
    this.next = n + 1;
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is the follower's guess
   * (already refined by the leader's log). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}

export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  recentActive: boolean;
  isLearner: boolean;
  pendingSnapshot: number;
  inflight: number;
  /** Ticks since the leader last heard from this peer (-1: never). */
  ticksSinceContact: number;
}

export function progressView(p: Progress, nowTick: number): PeerProgress {
  return {
    match: p.match,
    next: p.next,
    state: p.state,
    recentActive: p.recentActive,
    isLearner: p.isLearner,
    pendingSnapshot: p.pendingSnapshot,
    inflight: p.inflights.count,
    ticksSinceContact: p.lastContactTick < 0 ? -1 : nowTick - p.lastContactTick,
  };
}

/** Membership plus per-peer progress. Voters and learners are disjoint. */
export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  voterList(): NodeId[] {
    return [...this.voters].sort();
  }

  isMember(id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  /** Voters that answered since the last check, plus `self` (the leader always counts itself). */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++;
    }
    return active >= Math.floor(this.voters.size / 2) + 1;
  }
}
