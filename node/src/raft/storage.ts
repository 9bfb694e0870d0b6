// The core's read-only view of the durable log (etcd-style). The driver mirrors every Ready into a
// MemoryStorage (and, separately, into the fsync'd store) so the core never waits on disk.
import { CompactedError, LogInvariantError, SnapshotOutOfDateError, UnavailableError } from './errors.js';
import type { ConfState, Entry, HardState, SnapshotMeta } from './types.js';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  /** Persisted HardState and the membership of the latest snapshot. */
  initialState(): InitialState;
  /** Entries [lo, hi), at most `maxBytes` (but always at least one). Throws CompactedError if lo <= snapshot index. */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of entry i; the snapshot index itself is answerable. Throws CompactedError / UnavailableError. */
  term(i: number): number;
  /** First index still held as an entry (snapshot index + 1). */
  firstIndex(): number;
  lastIndex(): number;
  /** Latest snapshot metadata (EMPTY_SNAPSHOT-like when none). */
  snapshot(): SnapshotMeta;
}

export const ENTRY_OVERHEAD_BYTES = 16;

export function entrySize(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** Keeps a prefix of `ents` whose size fits `maxBytes`, never fewer than one entry. */
export function limitSize(ents: Entry[], maxBytes: number | undefined): Entry[] {
  if (maxBytes === undefined || ents.length === 0) return ents;
  let size = entrySize(ents[0] as Entry);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n] as Entry);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], learners: [...c.learners] };
}

const NO_DATA = new Uint8Array(0);

function marker(index: number, term: number): Entry {
  return { index, term, type: 'noop', data: NO_DATA };
}

/** In-memory Storage. ents[0] is a marker carrying the snapshot's index and term. */
export class MemoryStorage implements Storage {
  private hs: HardState = { term: 0, vote: null, commit: 0 };
  private snap: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
  private ents: Entry[] = [marker(0, 0)];

  initialState(): InitialState {
    return { hardState: { ...this.hs }, confState: cloneConf(this.snap.conf) };
  }

  get hardState(): HardState {
    return { ...this.hs };
  }

  setHardState(hs: HardState): void {
    this.hs = { ...hs };
  }

  private get offset(): number {
    return (this.ents[0] as Entry).index;
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.ents.length - 1;
  }

  term(i: number): number {
    if (i < this.offset) throw new CompactedError(i, this.firstIndex());
    if (i > this.lastIndex()) throw new UnavailableError(i, this.lastIndex());
    return (this.ents[i - this.offset] as Entry).term;
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - this.offset, hi - this.offset), maxBytes);
  }

  snapshot(): SnapshotMeta {
    return { index: this.snap.index, term: this.snap.term, conf: cloneConf(this.snap.conf) };
  }

  /** Appends entries, overwriting any suffix from entries[0].index (entries already compacted are skipped). */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = (entries[entries.length - 1] as Entry).index;
    if (last < first) return;
    const fresh = (entries[0] as Entry).index < first ? entries.slice(first - (entries[0] as Entry).index) : entries;
    const at = (fresh[0] as Entry).index - this.offset;
    if (at > this.ents.length) {
      throw new LogInvariantError(`append leaves a gap: last index ${this.lastIndex()}, appending ${(fresh[0] as Entry).index}`);
    }
    // In place: the common case is a plain append, and the log can hold many entries between compactions.
    if (at < this.ents.length) this.ents.length = at;
    for (const e of fresh) this.ents.push(e);
  }

  /** Replaces the whole log by a snapshot received from the leader. */
  applySnapshot(meta: SnapshotMeta): void {
    if (meta.index <= this.snap.index) throw new SnapshotOutOfDateError(meta.index, this.snap.index);
    this.snap = { index: meta.index, term: meta.term, conf: cloneConf(meta.conf) };
    this.ents = [marker(meta.index, meta.term)];
  }

  /** Records that the state machine has been snapshotted at `index` (entries stay until compact()). */
  createSnapshot(index: number, conf: ConfState): SnapshotMeta {
    if (index <= this.snap.index) throw new SnapshotOutOfDateError(index, this.snap.index);
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    this.snap = { index, term: this.term(index), conf: cloneConf(conf) };
    return this.snapshot();
  }

  /** Drops entries up to and including `index` (which must be covered by a snapshot the caller keeps). */
  compact(index: number): void {
    if (index <= this.offset) throw new CompactedError(index, this.firstIndex());
    if (index > this.lastIndex()) throw new UnavailableError(index, this.lastIndex());
    const kept = this.ents.slice(index - this.offset + 1);
    this.ents = [marker(index, this.term(index)), ...kept];
  }
}
