// raftLog = durable entries (Storage) + entries/snapshot not yet persisted (Unstable), as in etcd log.go.
import { CompactedError, LogInvariantError } from './errors.js';
import { limitSize, type Storage } from './storage.js';
import type { Entry, SnapshotMeta } from './types.js';

/** Entries and a snapshot handed out in a Ready but not yet confirmed durable by advance(). */
export class Unstable {
  snapshot: SnapshotMeta | undefined;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot ? this.snapshot.index : undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      return this.snapshot && this.snapshot.index === i ? this.snapshot.term : undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return (this.entries[i - this.offset] as Entry).term;
  }

  /** Entries up to (i, t) are durable; ignored if the entry was overwritten meanwhile. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === t && i >= this.offset) {
      this.entries = this.entries.slice(i + 1 - this.offset);
      this.offset = i + 1;
    }
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.index === i) this.snapshot = undefined;
  }

  restore(s: SnapshotMeta): void {
    this.offset = s.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: Entry[]): void {
    const after = (ents[0] as Entry).index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(ents);
    } else if (after <= this.offset) {
      this.offset = after;
      this.entries = [...ents];
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(ents);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  committed: number;
  applied: number;

  constructor(
    readonly storage: Storage,
    private readonly maxApplyBytes: number,
  ) {
    const first = storage.firstIndex();
    this.unstable = new Unstable(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Last index known durable: entries still in `unstable` were handed out in a Ready but not yet advanced. */
  lastStableIndex(): number {
    return this.unstable.entries.length > 0 ? this.unstable.offset - 1 : this.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term at i; 0 beyond the last index; throws CompactedError before the first term still known. */
  term(i: number): number {
    const dummy = this.firstIndex() - 1;
    if (i < dummy) throw new CompactedError(i, this.firstIndex());
    if (i > this.lastIndex()) return 0;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    return this.storage.term(i);
  }

  termOrZero(i: number): number {
    try {
      return this.term(i);
    } catch (e) {
      if (e instanceof CompactedError) return 0;
      throw e;
    }
  }

  matchTerm(i: number, t: number): boolean {
    try {
      return this.term(i) === t && (i <= this.lastIndex());
    } catch (e) {
      if (e instanceof CompactedError) return false;
      throw e;
    }
  }

  /** §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** First entry whose term differs from ours (or that we lack); 0 if all match. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Largest index <= `index` whose term is <= `term` (or the first index we cannot look past). Used on both
   * sides of a rejected append to skip a whole term per round trip (fast back-off).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      let t: number;
      try {
        t = this.term(i);
      } catch (e) {
        if (e instanceof CompactedError) return i;
        throw e;
      }
      if (t <= term) return i;
    }
    return 0;
  }

  /** §5.3 AppendEntries receiver: returns the new last index, or undefined when (index, logTerm) does not match. */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new LogInvariantError(`entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      }
      this.append(ents.slice(ci - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = (ents[0] as Entry).index - 1;
    if (after < this.committed) {
      throw new LogInvariantError(`append after ${after} would overwrite committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new LogInvariantError(`commit ${index} is beyond the last index ${this.lastIndex()}`);
    }
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (index > this.committed || index < this.applied) {
      throw new LogInvariantError(`applied ${index} outside [${this.applied}, ${this.committed}]`);
    }
    this.applied = index;
  }

  /** Commits `maxIndex` if it carries `term` (§5.4.2: only entries of the leader's own term are committed by counting). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextEnts(): boolean {
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  nextEnts(): Entry[] {
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 <= off) return [];
    return this.slice(off, this.committed + 1, this.maxApplyBytes);
  }

  snapshot(): SnapshotMeta {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Entries from i to the end, at most maxBytes (at least one). Throws CompactedError. */
  entries(i: number, maxBytes?: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxBytes);
  }

  slice(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new LogInvariantError(`slice [${lo}, ${hi}) beyond last ${this.lastIndex()}`);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    const uoff = this.unstable.offset;
    if (lo < uoff) {
      const stored = this.storage.entries(lo, Math.min(hi, uoff), maxBytes);
      if (stored.length < Math.min(hi, uoff) - lo) return stored;
      ents = stored;
    }
    if (hi > uoff) {
      ents = ents.concat(this.unstable.slice(Math.max(lo, uoff), hi));
    }
    return limitSize(ents, maxBytes);
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  restore(s: SnapshotMeta): void {
    this.committed = s.index;
    this.unstable.restore(s);
  }
}
