// The node's durable Raft state: a segmented write-ahead log (entries + hard state) and snapshot files.
// Chosen over lmdb by measurement (docs/storage.md, `npm run bench:storage`).
//
// Layout under `dir`:
//   wal/<seq>.wal       append-only segments of framed records (record.ts)
//   wal/compact.json    compaction point, written atomically (temp + fsync + rename + dir fsync)
//   snap/<idx>-<term>/  committed snapshots (snapshots.ts)
import { constants as fsConstants, mkdirSync, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EMPTY_SNAPSHOT, type Entry, type HardState, type SnapshotMeta } from '../raft/types.js';
import {
  StorageClosedError,
  StorageCorruptError,
  StorageError,
  StorageFailedError,
  StorageStalledError,
  StorageUsageError,
} from './errors.js';
import { syncDir, syncDirSync, writeFileAtomic } from './fsutil.js';
import { DEFAULT_FSYNC_DEADLINE_MS, DEFAULT_SEGMENT_BYTES, type DurableLogOptions, type StorageFaults, type StorageLogger } from './options.js';
import { encodeEntryYielding, encodeHardState } from './record.js';
import { COMPACT_FILE, replayWal, segmentName, type CompactPoint, type SegmentState } from './replay.js';
import { IO_SLICE_BYTES, writevSliced } from './sliced-io.js';
import { SnapshotStore, type PendingSnapshot, type SnapshotInfo } from './snapshots.js';

export interface RecoveredState {
  hardState: HardState;
  /** Newest committed snapshot, or EMPTY_SNAPSHOT. */
  snapshot: SnapshotMeta;
  /** Log entries after `snapshot.index` (what the core needs on restart, as etcd's WAL ReadAll). */
  entries: Entry[];
}

export interface LogStats {
  fsyncs: number;
  batches: number;
  saves: number;
  firstIndex: number;
  lastIndex: number;
  segments: number;
  /** Bytes of records in the segments (not counting preallocated space). */
  walBytes: number;
  snapshots: number;
}

type SaveOp = {
  kind: 'save';
  hs: HardState | undefined;
  /** saveCommit: raise the stored commit index to this, keeping the term and vote the log holds when staged. */
  commit?: number;
  entries: Entry[];
  sync: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
};

export interface SaveOptions {
  /**
   * Default true. `false` (pass Ready.mustSync) skips the fdatasync when every save in the batch opts out:
   * the records are written in order and made durable by the next synced batch. Only for commit-index-only
   * hard-state updates, which Raft may lose in a crash (the commit index is re-learned from the leader).
   */
  sync?: boolean;
}
type TaskOp = { kind: 'task'; name: string; run: () => Promise<void>; resolve: () => void; reject: (e: unknown) => void };
type Op = SaveOp | TaskOp;

const sameHardState = (a: HardState, b: HardState) => a.term === b.term && a.vote === b.vote && a.commit === b.commit;

/** The slowest write rate (bytes per ms, i.e. 8 MiB/s) still taken for progress rather than a stall. */
const STALL_FLOOR_BYTES_PER_MS = (8 * 1024 * 1024) / 1000;
/** A deadline timer this late (or a quarter of its limit, if more) was delayed by a paused process, not by the disk. */
const PAUSE_MIN_LATENESS_MS = 50;

export class DurableLog {
  private readonly queue: Op[] = [];
  private draining = false;
  private failure: StorageError | undefined;
  private closed = false;
  /** Terms of entries compact.index+1 .. lastIndex: enough to validate appends and compactions without holding data. */
  private terms: number[];
  private compactPoint: CompactPoint;
  private hs: HardState;
  private fh: FileHandle | undefined;
  /**
   * The same segment opened O_DSYNC: a write through it returns once its bytes (and the metadata needed
   * to read them back) are on disk, as write + fdatasync would. One thread-pool round trip per durable
   * save instead of two (the writev, then the fdatasync), on the leader and on every follower.
   */
  private dsyncFh: FileHandle | undefined;
  /** Bytes written by `sync: false` saves that no fdatasync has covered yet. */
  private unsynced = false;
  /**
   * Sequence number of the segment holding the newest hard-state record (0: not known, e.g. after a
   * replay). Segments below it may be deleted without writing the hard state again.
   */
  private hardStateSeq = 0;
  /**
   * Compaction's file work (the new compaction record, unlinking dropped segments) runs here, one step
   * after another, outside the write queue: saves never wait for it (see compact).
   */
  private fileWork: Promise<void> = Promise.resolve();
  private readonly counters = { fsyncs: 0, batches: 0, saves: 0 };

  private constructor(
    private readonly walDir: string,
    private readonly snaps: SnapshotStore,
    private readonly segments: SegmentState[],
    compact: CompactPoint,
    hs: HardState,
    terms: number[],
    private readonly deadlineMs: number,
    private readonly segmentBytes: number,
    private readonly logger: StorageLogger | undefined,
    private readonly faults: StorageFaults | undefined,
  ) {
    this.compactPoint = compact;
    this.hs = hs;
    this.terms = terms;
  }

  /**
   * Recovers `dir` (created if absent). A torn final record is truncated with a warning; any other damage
   * throws StorageCorruptError naming the file and offset, and the node must not start.
   */
  static async open(dir: string, opts: DurableLogOptions = {}): Promise<{ log: DurableLog; state: RecoveredState }> {
    const walDir = path.join(dir, 'wal');
    mkdirSync(walDir, { recursive: true });
    syncDirSync(dir);
    syncDirSync(path.dirname(path.resolve(dir)));
    const snaps = SnapshotStore.loadSync(path.join(dir, 'snap'), opts.retainSnapshots ?? 2, opts.logger);
    const replay = replayWal(walDir, opts.logger);
    const latest = snaps.latest()?.meta;
    if (replay.compact.index > (latest?.index ?? 0)) {
      throw new StorageCorruptError(
        `log is compacted through ${replay.compact.index} but the newest snapshot is at ${latest?.index ?? 0}`,
        { file: path.join(walDir, COMPACT_FILE) },
      );
    }
    const log = new DurableLog(
      walDir,
      snaps,
      replay.segments,
      replay.compact,
      replay.hardState,
      replay.entries.map((e) => e.term),
      opts.fsyncDeadlineMs ?? DEFAULT_FSYNC_DEADLINE_MS,
      opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
      opts.logger,
      opts.faults,
    );
    await log.openTail();
    // a snapshot committed just before a crash may not have been followed by its compaction yet
    if (latest && !log.matches(latest.index, latest.term) && latest.index > log.compactPoint.index) {
      await log.enqueueTask('reset-to-snapshot', () => log.discardThrough(latest.index, latest.term));
    }
    const snapshot = latest ?? EMPTY_SNAPSHOT;
    const entries = replay.entries.filter((e) => e.index > snapshot.index && e.index <= log.lastIndex());
    return { log, state: { hardState: { ...log.hs }, snapshot, entries } };
  }

  // ---- writes -------------------------------------------------------------------------------------

  /**
   * Appends `entries` (overwriting the log from entries[0].index on) and records `hs`; resolves once both
   * are fdatasync'd. Concurrent calls are applied in call order and share fsyncs (group commit).
   */
  save(hs: HardState | undefined, entries: Entry[], opts: SaveOptions = {}): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'save', hs, entries, sync: opts.sync !== false, resolve, reject });
      this.pump();
    });
  }

  /**
   * Makes the commit index at least `commit`, durably, without a term or vote of its own: the term and
   * vote written are the ones the log holds when this save's turn comes. A caller outside the Ready loop
   * (before a snapshot, at shutdown) holds a hard state that may be older than a save still queued: writing
   * that whole hard state after the newer one would take the term (and vote) back on the next start.
   */
  saveCommit(commit: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'save', hs: undefined, commit, entries: [], sync: true, resolve, reject });
      this.pump();
    });
  }

  /**
   * Drops log records ≤ throughIndex; requires a committed snapshot at or beyond it. Durable on resolve.
   * If the log does not contain (throughIndex, its snapshot term) — a follower that installed a newer
   * snapshot — the whole log is discarded and restarts after the snapshot.
   *
   * An ordinary compaction holds the write queue only to move the in-memory compaction point and, when
   * segments are dropped and the newest hard state lies in one of them, to append the hard state to the
   * active segment. Writing the new compaction record and unlinking the dropped segments (three fsyncs,
   * slow on a disk that a snapshot is being written to) happen beside later saves: a crash before the
   * record is durable leaves the old record and every segment it needs, one after it leaves segments the
   * next start deletes (replay.ts).
   */
  compact(throughIndex: number): Promise<void> {
    let files: Promise<void> = Promise.resolve();
    return this.enqueueTask('compact', async () => {
      const snap = this.snaps.latest()?.meta;
      if (!snap || throughIndex > snap.index) {
        throw new StorageUsageError(`cannot compact through ${throughIndex}: newest snapshot is at ${snap?.index ?? 0}`);
      }
      if (throughIndex <= this.compactPoint.index) return;
      if (throughIndex === snap.index && !this.matches(snap.index, snap.term)) {
        await this.discardThrough(snap.index, snap.term);
      } else if (throughIndex > this.lastIndex()) {
        throw new StorageUsageError(`cannot compact through ${throughIndex}: log ends at ${this.lastIndex()}`);
      } else {
        ({ files } = await this.compactInPlace(throughIndex, this.termAt(throughIndex)!));
      }
    }).then(() => files);
  }
  // ---- snapshots ----------------------------------------------------------------------------------

  snapshots(): SnapshotInfo[] {
    return this.snaps.list();
  }

  latestSnapshot(): SnapshotInfo | undefined {
    return this.snaps.latest();
  }

  /**
   * Stage a snapshot: write its bytes to `path`, then `commit()`. Committing a snapshot the log does not
   * contain (installed from the leader) also resets the log to start after it, durably.
   */
  createSnapshot(meta: SnapshotMeta): PendingSnapshot {
    this.assertUsable();
    return this.snaps.create(meta, async (info) => {
      if (!this.matches(info.meta.index, info.meta.term) && info.meta.index > this.compactPoint.index) {
        await this.enqueueTask('reset-to-snapshot', () => this.discardThrough(info.meta.index, info.meta.term));
      }
    });
  }

  // ---- reads --------------------------------------------------------------------------------------

  firstIndex(): number {
    return this.compactPoint.index + 1;
  }

  lastIndex(): number {
    return this.compactPoint.index + this.terms.length;
  }

  /** Term of entry `i`, or undefined if it is compacted away or beyond the end (i = compaction point gives its term). */
  termAt(i: number): number | undefined {
    if (i === this.compactPoint.index) return this.compactPoint.term;
    return this.terms[i - this.compactPoint.index - 1];
  }

  hardState(): HardState {
    return { ...this.hs };
  }

  /** For metrics: counters since open (saves/batches = group-commit factor) and the WAL's size on disk. */
  stats(): LogStats {
    return {
      ...this.counters,
      firstIndex: this.firstIndex(),
      lastIndex: this.lastIndex(),
      segments: this.segments.length,
      walBytes: this.segments.reduce((n, s) => n + s.size, 0),
      snapshots: this.snaps.list().length,
    };
  }

  /** The error that put the log in the failed state, if any (the driver should step down and refuse writes). */
  failed(): StorageError | undefined {
    return this.failure;
  }

  /** Waits for queued writes, then closes the active segment. Later calls reject with StorageClosedError. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.enqueueTask('close', async () => {
      if (this.unsynced) await this.fh?.datasync();
      await this.fileWork;
      this.closed = true;
    }).catch(() => undefined);
    this.closed = true;
    // a failed log may still have a stalled fdatasync in flight; closing the handle is best effort
    const fh = this.fh;
    const dsyncFh = this.dsyncFh;
    this.fh = undefined;
    this.dsyncFh = undefined;
    await fh?.close().catch(() => undefined);
    await dsyncFh?.close().catch(() => undefined);
  }

  // ---- internals ----------------------------------------------------------------------------------

  private matches(index: number, term: number): boolean {
    return this.termAt(index) === term;
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new StorageClosedError();
  }

  private enqueueTask(name: string, run: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'task', name, run, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.draining) return;
    this.draining = true;
    void this.drain().finally(() => {
      this.draining = false;
      if (this.queue.length > 0) this.pump();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const blocked = this.failure ?? (this.closed ? new StorageClosedError() : undefined);
      if (blocked) {
        for (const op of this.queue.splice(0)) op.reject(blocked);
        return;
      }
      const head = this.queue[0]!;
      if (head.kind === 'task') {
        this.queue.shift();
        await this.runGuarded(head.name, head.run).then(head.resolve, head.reject);
        continue;
      }
      // group commit: every save queued by now shares one write + one fdatasync
      const batch: SaveOp[] = [];
      while (this.queue[0]?.kind === 'save') batch.push(this.queue.shift() as SaveOp);
      const accepted: SaveOp[] = [];
      const bufs: Buffer[] = [];
      const bytes = batch.reduce((n, op) => n + op.entries.reduce((m, e) => m + e.data.byteLength, 0), 0);
      await this.runGuarded('save', async () => {
        await this.rollIfFull();
        for (const op of batch) {
          const err = await this.stage(op, bufs);
          if (err) op.reject(err);
          else accepted.push(op);
        }
        if (bufs.length > 0) await this.append(bufs, batch.some((op) => op.sync));
      }, bytes).then(
        () => {
          this.counters.batches++;
          this.counters.saves += accepted.length;
          accepted.forEach((op) => op.resolve());
        },
        (err) => accepted.forEach((op) => op.reject(err)),
      );
    }
  }

  /** Validates one save against the log as left by the saves before it, and encodes it. */
  private async stage(op: SaveOp, out: Buffer[]): Promise<StorageUsageError | undefined> {
    const { entries } = op;
    const hs = op.commit !== undefined ? (op.commit > this.hs.commit ? { ...this.hs, commit: op.commit } : undefined) : op.hs;
    // Raft's safety rests on a term that never goes back and one vote per term: a save that would write
    // either back is a caller's bug, refused before a byte of it reaches the disk
    if (hs && (hs.term < this.hs.term || (hs.term === this.hs.term && this.hs.vote !== null && hs.vote !== this.hs.vote))) {
      return new StorageUsageError(`hard state (term ${hs.term}, vote ${hs.vote}) would go back from (term ${this.hs.term}, vote ${this.hs.vote})`);
    }
    // only a commit-index change may skip the fsync: entries, a new term or a vote must be durable first
    if (entries.length > 0 || (hs && (hs.term !== this.hs.term || hs.vote !== this.hs.vote))) op.sync = true;
    if (entries.length > 0) {
      const first = entries[0]!.index;
      if (first <= this.compactPoint.index || first > this.lastIndex() + 1) {
        return new StorageUsageError(`entries start at ${first}; the log accepts ${this.compactPoint.index + 1}..${this.lastIndex() + 1}`);
      }
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== first + i) return new StorageUsageError(`entries are not contiguous at ${entries[i]!.index}`);
      }
      this.terms.length = first - this.compactPoint.index - 1;
      for (const e of entries) this.terms.push(e.term);
      for (const e of entries) out.push(...(await encodeEntryYielding(e)));
      const seg = this.segments[this.segments.length - 1]!;
      seg.maxIndex = Math.max(seg.maxIndex, this.lastIndex());
    }
    if (hs && !sameHardState(hs, this.hs)) {
      this.hs = { term: hs.term, vote: hs.vote, commit: hs.commit };
      out.push(...encodeHardState(this.hs));
      this.hardStateSeq = this.segments[this.segments.length - 1]!.seq;
    }
    return undefined;
  }

  /**
   * Runs an I/O step under the deadline; a miss or an error fails the log for good. The deadline catches
   * a stalled disk, not a slow one: a save of `bytes` gets `bytes / STALL_FLOOR_BYTES_PER_MS` more (a
   * batch of 16 MiB objects on a disk shared with other work legitimately takes seconds).
   */
  private async runGuarded(name: string, run: () => Promise<void>, bytes = 0): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const limitMs = this.deadlineMs + Math.ceil(bytes / STALL_FLOOR_BYTES_PER_MS);
    const deadline = new Promise<never>((_, reject) => {
      const arm = (): void => {
        const armedAt = performance.now();
        timer = setTimeout(() => {
          // A timer that fires far past its time means this process was not running (SIGSTOP, a starved
          // host), not that the disk stalled: the write may have finished meanwhile, its completion queued
          // behind this timer (timers run before I/O callbacks). Give it the whole limit of running time
          // again; on a process that runs, the timer fires on time and a real stall is still reported.
          const lateMs = performance.now() - armedAt - limitMs;
          if (lateMs > Math.max(PAUSE_MIN_LATENESS_MS, limitMs / 4)) {
            arm();
            return;
          }
          reject(new StorageStalledError(`${name}: write/fsync of ${bytes} bytes did not complete within ${limitMs} ms`));
        }, limitMs);
      };
      arm();
    });
    try {
      await Promise.race([run(), deadline]);
    } catch (err) {
      if (err instanceof StorageUsageError || err instanceof StorageClosedError) throw err;
      const failure =
        err instanceof StorageStalledError || err instanceof StorageFailedError
          ? err
          : new StorageFailedError(`${name}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
      this.fail(failure);
      throw failure;
    } finally {
      clearTimeout(timer);
    }
  }

  private fail(err: StorageError): void {
    if (this.failure) return;
    this.failure = err;
    (this.logger?.error ?? this.logger?.warn)?.call(this.logger, { err, dir: this.walDir }, 'durable log failed; refusing further writes');
  }

  private async append(bufs: Buffer[], sync = true): Promise<void> {
    const seg = this.segments[this.segments.length - 1]!;
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    await this.faults?.beforeWrite?.({ file: seg.path, bytes });
    // An O_DSYNC write makes only its own range durable: after unsynced writes, write and fdatasync the file.
    // A record larger than one slice is written a slice per call (sliced-io.ts) and then fdatasync'd once:
    // O_DSYNC would flush every slice on its own.
    const durableWrite = sync && !this.unsynced && bytes <= IO_SLICE_BYTES;
    if (durableWrite) await this.faults?.beforeSync?.({ file: seg.path, bytes });
    const fh = durableWrite ? this.dsyncFh! : this.fh!;
    const bytesWritten = await writevSliced(fh, bufs, seg.size);
    if (bytesWritten !== bytes) throw new StorageFailedError(`short write to ${seg.path}: ${bytesWritten} of ${bytes} bytes`);
    seg.size += bytes;
    if (!sync) {
      this.unsynced = true;
      return;
    }
    if (!durableWrite) {
      await this.faults?.beforeSync?.({ file: seg.path, bytes });
      await fh.datasync();
    }
    this.counters.fsyncs++;
    this.unsynced = false;
  }

  private static openDsync(file: string): Promise<FileHandle> {
    return fsp.open(file, fsConstants.O_RDWR | fsConstants.O_DSYNC);
  }

  private async openTail(): Promise<void> {
    if (this.segments.length === 0) {
      await this.createSegment(this.compactPoint.firstSeq);
      return;
    }
    const file = this.segments[this.segments.length - 1]!.path;
    this.fh = await fsp.open(file, 'r+');
    this.dsyncFh = await DurableLog.openDsync(file);
  }

  private async createSegment(seq: number): Promise<void> {
    const file = path.join(this.walDir, segmentName(seq));
    const fh = await fsp.open(file, 'wx');
    // Preallocate (sparse): with the size already durable, each fdatasync need not commit an inode size
    // change; measured 2-4x faster appends on this machine (docs/storage.md). Replay treats the zero tail as the end.
    await fh.truncate(this.segmentBytes);
    await fh.sync();
    await syncDir(this.walDir);
    // later fdatasyncs go to the new file: whatever the old one still holds unsynced must be flushed now
    if (this.unsynced) await this.fh?.datasync();
    this.unsynced = false;
    await this.fh?.close();
    await this.dsyncFh?.close();
    this.fh = fh;
    this.dsyncFh = await DurableLog.openDsync(file);
    this.segments.push({ seq, path: file, size: 0, maxIndex: 0 });
  }

  private async rollIfFull(): Promise<void> {
    const seg = this.segments[this.segments.length - 1]!;
    if (seg.size >= this.segmentBytes) await this.createSegment(seg.seq + 1);
  }

  /**
   * Makes (index, term) the new start of the log without a new segment: the in-memory state changes
   * here, in queue order, and `files` is the file work, chained on `fileWork` (the caller
   * releases the queue before awaiting it). Segments wholly at or below `index`, except the active one,
   * are dropped; a segment is as large as segmentBytes, so at most one segment's worth of compacted
   * records stays on disk until the active segment fills.
   */
  private async compactInPlace(index: number, term: number): Promise<{ files: Promise<void> }> {
    const active = this.segments[this.segments.length - 1]!;
    const keepFrom = (this.segments.find((s) => s.maxIndex > index) ?? active).seq;
    // replay takes the newest hard-state record of the segments it reads: it must be in one that stays
    if (keepFrom > this.compactPoint.firstSeq && this.hardStateSeq < keepFrom) {
      await this.append(encodeHardState(this.hs));
      this.hardStateSeq = active.seq;
    }
    const next: CompactPoint = { index, term, firstSeq: Math.max(keepFrom, this.compactPoint.firstSeq) };
    this.terms = this.terms.slice(index - this.compactPoint.index);
    this.compactPoint = next;
    const dropped = this.segments.filter((s) => s.seq < next.firstSeq);
    this.segments.splice(0, dropped.length);
    const work = this.fileWork.then(() =>
      this.runGuarded('compact', async () => {
        await writeFileAtomic(path.join(this.walDir, COMPACT_FILE), JSON.stringify(next));
        for (const s of dropped) await fsp.rm(s.path, { force: true });
        if (dropped.length > 0) await syncDir(this.walDir);
      }),
    );
    this.fileWork = work.catch(() => undefined);
    return { files: work };
  }

  /**
   * Discards the whole log: (index, term), a snapshot the log does not contain, becomes its start, in a
   * new segment that opens with the current hard state; then compact.json is replaced atomically; then
   * every older segment goes. Runs inside the queue: the saves after it build on the new start.
   */
  private async discardThrough(index: number, term: number): Promise<void> {
    await this.fileWork;
    const tail = this.segments[this.segments.length - 1]!;
    await this.createSegment(tail.seq + 1);
    await this.append(encodeHardState(this.hs));
    const fresh = this.segments[this.segments.length - 1]!;
    this.hardStateSeq = fresh.seq;
    const next: CompactPoint = { index, term, firstSeq: fresh.seq };
    await writeFileAtomic(path.join(this.walDir, COMPACT_FILE), JSON.stringify(next));
    this.terms = [];
    this.compactPoint = next;
    const dropped = this.segments.filter((s) => s.seq < fresh.seq);
    this.segments.splice(0, dropped.length);
    for (const s of dropped) await fsp.rm(s.path, { force: true });
    if (dropped.length > 0) await syncDir(this.walDir);
  }
}
