// The driver's snapshots: when to take one (entries, bytes or time since the last), taking it (the object
// store writes its state beside the durable log, which then compacts), sending one to a lagging follower
// (the store renders its newest as one file, a delta when the follower already holds some of its packs),
// and readying and installing one received from the leader. The driver (raft-node.ts) calls
// in at fixed points of its Ready cycle and owns everything else; this class owns the snapshot state.
import fs from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { RaftMetrics } from '../metrics/raft.js';
import type { Message } from '../raft/message.js';
import type { RawNode } from '../raft/rawnode.js';
import type { MemoryStorage } from '../raft/storage.js';
import type { ConfState, Entry, NodeId, SnapshotMeta } from '../raft/types.js';
import type { DurableLog } from '../storage/durable-log.js';
import { StorageError } from '../storage/errors.js';
import type { Transport } from '../transport/types.js';
import type { ObjectStore, PreparedSnapshot, SnapshotStream } from './object-store.js';
import { readDeltaBase } from './snapshot-format.js';

/** The RPC a leader asks a follower with, before sending it a snapshot, what it holds (SnapshotBase). */
export const RPC_SNAPSHOT_BASE = 'snapshotBase';
/** How long a leader waits for that answer before it sends the whole snapshot. */
const SNAPSHOT_BASE_TIMEOUT_MS = 2000;
/**
 * How long a follower waits, before completing a delta, for the snapshot it staged to be installed (the
 * delta is made against it, see SnapshotBase); past this it refuses the delta and asks for a whole file.
 */
const DELTA_BASE_WAIT_MS = 10_000;

/**
 * A follower's answer: it holds every object created up to `heldThrough` (0: send everything): what it
 * has applied, or the snapshot it has staged if that is newer. A leader whose log a follower's install
 * outran asks again at once, while the follower is still installing the snapshot it was just sent; the
 * delta is then made against that snapshot, and the follower completes it once it is installed.
 */
interface SnapshotBase {
  heldThrough: number;
}

/** When to snapshot and what to keep behind one (NodeConfig documents each). */
export interface SnapshotPolicy {
  snapshotEntries: number;
  snapshotBytes: number;
  snapshotTrailingEntries: number;
  /** Absent or 0: by size only. */
  snapshotIntervalMs?: number;
}

/** What the snapshots need from the driver that owns them. */
export interface SnapshotDriver {
  halted(): boolean;
  applied(): number;
  confState(): ConfState;
  /** Resolves once entries up to `index` are applied (or a snapshot past it installed); rejects after `timeoutMs`. */
  waitApplied(index: number, timeoutMs: number): Promise<void>;
  /** Makes the current commit index durable: the core refuses a stored commit below a snapshot's index. */
  saveCommitIndex(): Promise<void>;
  /** A storage failure while snapshotting halts the node. */
  fatal(e: unknown): void;
  /** The core has news a Ready cycle should pick up (a snapshot was sent, or failed to be). */
  kick(): void;
}

export interface SnapshotParts {
  /** This member's id: its place among the voters staggers its entry trigger (see entriesDue). */
  id: NodeId;
  log: DurableLog;
  mem: MemoryStorage;
  store: ObjectStore;
  raw: RawNode;
  transport: Transport;
  logger: Logger;
  metrics: RaftMetrics | undefined;
}

export class Snapshots {
  /** Index of the newest snapshot this node holds (taken or installed). */
  private latestIndex: number;
  /** Snapshot files received from the leader, ready and not yet installed, by "index/term". */
  private readonly staged = new Map<string, PreparedSnapshot>();
  /** A delta could not be completed here: the next snapshot is asked for whole (reset by an install). */
  private wantWhole = false;
  /** Followers being sent a snapshot, with its index once known (0 before). */
  private readonly sending = new Map<NodeId, number>();
  private taking = false;
  /** When the last snapshot was started (or the node started): the time trigger counts from here. */
  private lastTakenAt = performance.now();
  private bytesSinceLast = 0;
  /** How much earlier than its thresholds the first snapshot after a start or an install comes: see early. */
  private earlyBy: number;

  constructor(
    private readonly parts: SnapshotParts,
    private readonly policy: SnapshotPolicy,
    private readonly driver: SnapshotDriver,
    index: number,
  ) {
    this.latestIndex = index;
    this.earlyBy = this.rankFraction();
    parts.transport.handle(RPC_SNAPSHOT_BASE, async () => {
      const base: SnapshotBase = { heldThrough: this.wantWhole ? 0 : Math.max(this.driver.applied(), this.newestStaged()) };
      return Buffer.from(JSON.stringify(base));
    });
  }

  get index(): number {
    return this.latestIndex;
  }

  /** Entries written to the log count towards the byte trigger. */
  appended(entries: Entry[]): void {
    for (const e of entries) this.bytesSinceLast += e.data.byteLength;
  }

  /**
   * The transport finished receiving a snapshot file: it is readied for install (a delta is completed
   * against this member's packs, ObjectStore.prepareInstall) and waits here until the core installs it.
   * The leader hears of success or failure only once this settles, so the `snap` message it sends next
   * finds the file staged. A delta that cannot be completed is refused: the leader is then told to send
   * the whole snapshot.
   */
  async stage(from: NodeId, meta: SnapshotMeta, file: string): Promise<void> {
    const key = snapKey(meta);
    let prepared: PreparedSnapshot;
    try {
      const base = await readDeltaBase(file);
      if (base !== undefined && base > this.driver.applied()) await this.driver.waitApplied(base, DELTA_BASE_WAIT_MS);
      prepared = await this.parts.store.prepareInstall(file);
    } catch (e) {
      await fs.rm(file, { force: true }).catch(() => undefined);
      this.wantWhole = true;
      this.parts.logger.warn({ from, index: meta.index, err: (e as Error).message }, 'received snapshot not staged; the whole snapshot is asked for next');
      throw e;
    }
    const old = this.staged.get(key);
    if (old) this.drop(old, prepared.path);
    this.staged.set(key, prepared);
    this.parts.metrics?.snapshots.inc({ event: 'received' });
    this.parts.logger.info({ from, index: meta.index, term: meta.term, completed_delta: prepared.path !== file }, 'snapshot received and staged');
  }

  private newestStaged(): number {
    let newest = 0;
    for (const key of this.staged.keys()) newest = Math.max(newest, Number(key.split('/')[0]));
    return newest;
  }

  /** Forgets a staged file: its packs are released and it is deleted (unless it is `keep`, its replacement). */
  private drop(staged: PreparedSnapshot, keep?: string): void {
    staged.release();
    if (staged.path !== keep) void fs.rm(staged.path, { force: true }).catch(() => undefined);
  }

  isStaged(meta: SnapshotMeta): boolean {
    return this.staged.has(snapKey(meta));
  }

  /** Takes a snapshot in the background when one is due; at most one at a time. */
  maybeTake(): void {
    const applied = this.driver.applied();
    if (this.taking || this.driver.halted() || applied <= this.latestIndex) return;
    const interval = this.policy.snapshotIntervalMs ?? 0;
    const due =
      this.entriesDue(applied) ||
      this.bytesDue() ||
      (interval > 0 && performance.now() - this.lastTakenAt >= interval);
    if (!due) return;
    this.taking = true;
    this.lastTakenAt = performance.now();
    // the object list is captured synchronously inside writeSnapshot, i.e. exactly at `applied`
    const meta: SnapshotMeta = { index: applied, term: this.parts.mem.term(applied), conf: this.driver.confState() };
    const bytesAtStart = this.bytesSinceLast;
    void this.take(meta)
      .then(() => {
        this.bytesSinceLast = Math.max(0, this.bytesSinceLast - bytesAtStart);
        this.earlyBy = 0;
      })
      .catch((e: unknown) => {
        if (e instanceof StorageError && (e.code === 'storage_stalled' || e.code === 'storage_failed')) this.driver.fatal(e);
        else this.parts.logger.warn({ err: (e as Error).message, index: meta.index }, 'snapshot not taken');
      })
      .finally(() => {
        this.taking = false;
      });
  }

  /**
   * The entry trigger fires at an index of this member's own grid, the indexes ≡ phase (mod
   * snapshotEntries), where the phase is the member's rank among the voters times snapshotEntries /
   * voters: the first grid index more than half of snapshotEntries after the last snapshot, once the log
   * also covers the snapshot's cost (logCoversSnapshotCost). Every member applies the same entries, so
   * without the grid all of them met the trigger at the same index and wrote a snapshot at the same
   * moment: a leader and the follower it needed for a quorum were then busy with one together. With it
   * the members snapshot snapshotEntries / voters entries apart (Raft lets each member choose when to
   * snapshot), and a member on its grid still snapshots every snapshotEntries. Where pacing by size
   * decides (the byte trigger, or the cost guard of logCoversSnapshotCost), see early.
   */
  private entriesDue(applied: number): boolean {
    const every = this.policy.snapshotEntries;
    const grid = applied - mod(applied - this.phase(every), every); // the newest grid index ≤ applied
    return grid > this.latestIndex + every / 2 && this.logCoversSnapshotCost();
  }

  /** The byte trigger: snapshotBytes logged since the last snapshot (less at first, see early). */
  private bytesDue(): boolean {
    return this.bytesSinceLast >= this.early(this.policy.snapshotBytes);
  }

  /**
   * A threshold in bytes of log, lowered for the first snapshot after a start or an install by this
   * member's rank fraction (rank / voters). Pacing by size counts from each member's own last snapshot,
   * but members that start together, or a follower that installs the snapshot its leader has just
   * taken, then meet it at the same entry every time: bench:isolation (e) showed a leader and the
   * follower it had just sent a delta to taking five 85–150 MB snapshots within 0.4 s of each other
   * (docs/benchmarks.md, eleventh session). Lowered once, the members stay apart by that fraction of a
   * cycle from then on. Snapshotting early only makes the log smaller.
   */
  private early(threshold: number): number {
    return threshold * (1 - this.earlyBy);
  }

  /** This member's offset into each stretch of `every` entries: 0 for a single voter or a non-voter. */
  private phase(every: number): number {
    return Math.floor(this.rankFraction() * every);
  }

  /** This member's rank among the voters, as a fraction of their number: 0 for the first, a single voter or a non-voter. */
  private rankFraction(): number {
    const voters = [...this.driver.confState().voters].sort();
    const rank = voters.indexOf(this.parts.id);
    return rank <= 0 ? 0 : rank / voters.length;
  }

  /**
   * A snapshot writes the objects applied since the last one, but also a manifest of every object
   * (~250 bytes each) and, when it compacts packs, their live objects: by entry count alone its cost per
   * write can still grow with the store (when every snapshot rewrote every object, 10,000 small writes
   * into a store of 50,000 objects rewrote ~60 MB on every node). The entry trigger therefore also waits
   * until the log written since the last snapshot holds at least half as many bytes as that snapshot
   * (its file: manifest and the bytes it copied, not the packs it names): a snapshot then writes at most
   * three bytes per byte of log. The byte and time triggers are unchanged, so the log held in memory
   * stays bounded by snapshotBytes. The first snapshot after a start or an install waits for less (early).
   */
  private logCoversSnapshotCost(): boolean {
    const last = this.parts.log.latestSnapshot()?.size ?? 0;
    return 2 * this.bytesSinceLast >= this.early(last);
  }

  private async take(meta: SnapshotMeta): Promise<void> {
    const { log, mem, store, logger, metrics } = this.parts;
    const started = Date.now();
    const pending = log.createSnapshot(meta);
    let size: number;
    let info: { path: string };
    try {
      size = await store.writeSnapshot(pending.path, meta);
      await this.driver.saveCommitIndex();
      info = await pending.commit();
    } catch (e) {
      await pending.abort().catch(() => undefined);
      throw e;
    }
    metrics?.snapshots.inc({ event: 'created' });
    metrics?.snapshotSeconds.observe({ event: 'created' }, (Date.now() - started) / 1000);
    if (meta.index <= mem.snapshot().index) return; // a newer snapshot was installed meanwhile
    // objects covered by the snapshot are now read from its file; their in-memory bytes are dropped
    await store.snapshotCommitted(info.path, meta).catch((e: unknown) => {
      logger.warn({ err: (e as Error).message, index: meta.index }, 'objects not moved onto the new snapshot file; kept where they were');
    });
    if (meta.index <= mem.snapshot().index) return; // installed during the switch
    mem.createSnapshot(meta.index, meta.conf);
    this.latestIndex = meta.index;
    const compactTo = this.compactionPoint(meta.index);
    if (compactTo >= mem.firstIndex()) {
      mem.compact(compactTo);
      await log.compact(compactTo);
    }
    logger.info({ index: meta.index, term: meta.term, bytes: size, ms: Date.now() - started, compacted_through: compactTo }, 'snapshot taken');
    await this.collectPacks();
  }

  /** Deletes the packs no retained snapshot needs any more; a failure only leaves them for the next time. */
  private async collectPacks(): Promise<void> {
    const { log, store, logger } = this.parts;
    try {
      const removed = await store.collectGarbage(() => log.snapshots());
      if (removed.length > 0) logger.info({ packs: removed }, 'packs no snapshot needs deleted');
    } catch (e) {
      logger.warn({ err: (e as Error).message }, 'packs not collected');
    }
  }

  /**
   * Keeps snapshotTrailingEntries behind the snapshot for slow followers, the newest of them within a
   * budget of a quarter of snapshotBytes (with multi-MB objects the entry count alone would keep gigabytes
   * in memory). On a leader, if the entries the furthest follower lacks (above its match index, or above
   * the snapshot it is being sent) fit in that budget, all of them are kept; a part of them would not
   * spare it a snapshot.
   *
   * Without the followers' part, a follower sent a snapshot of a large store while clients wrote could
   * find the entries after it compacted by the time it arrived, and be sent the whole store again
   * (bench:isolation (e) with 3 GB, docs/benchmarks.md, eighth session). CockroachDB's raft log
   * truncation weighs followers' progress against the log's size the same way.
   */
  private compactionPoint(snapIndex: number): number {
    const { mem, raw } = this.parts;
    const budget = this.policy.snapshotBytes / 4;
    const first = mem.firstIndex() - 1;
    const trailing = Math.max(snapIndex - this.policy.snapshotTrailingEntries, first);
    if (trailing >= snapIndex) return snapIndex;
    let lagging = trailing;
    for (const [id, p] of Object.entries(raw.status().progress)) lagging = Math.min(lagging, Math.max(p.match, this.sending.get(id) ?? 0));
    // A match below the log's start is a follower the leader has not heard from yet (match 0 until its
    // first answer, though every member starts with the bootstrap snapshot) or one that needs a snapshot
    // anyway: either may still use the entries from the log's start, so they are kept within the budget.
    lagging = Math.max(lagging, first);
    // one walk back from the snapshot: past the budget, only the trailing entries within it are kept
    const kept = mem.entries(lagging + 1, snapIndex + 1);
    let bytes = 0;
    for (let i = kept.length - 1; i >= 0; i--) {
      bytes += kept[i]!.data.byteLength;
      if (bytes > budget) return Math.max(kept[i]!.index, trailing);
    }
    return lagging;
  }

  /**
   * The core asked to send a snapshot (a `snap` message): the store's newest committed snapshot is
   * streamed first, rendered as one self-contained file from the packs, then the message itself (with
   * that snapshot's meta, which may be newer than the one the core asked for), which the follower steps
   * once the staged file is there. One transfer per follower at a time.
   */
  send(m: Message): void {
    void this.sendFile(m);
  }

  private async sendFile(m: Message): Promise<void> {
    const { store, raw, transport, logger, metrics } = this.parts;
    const to = m.to;
    if (!m.snapshot || this.sending.has(to)) return;
    this.sending.set(to, 0);
    const started = Date.now();
    let source: SnapshotStream | undefined;
    try {
      const heldThrough = await this.heldThrough(to);
      source = await store.snapshotSource(heldThrough);
      if (!source) {
        raw.reportSnapshot(to, false);
        return;
      }
      this.sending.set(to, source.meta.index);
      await transport.sendSnapshot(to, source.meta, source);
      if (this.driver.halted()) return;
      transport.send({ ...m, snapshot: source.meta } as never);
      raw.reportSnapshot(to, true);
      metrics?.snapshots.inc({ event: 'sent' });
      metrics?.snapshotSeconds.observe({ event: 'sent' }, (Date.now() - started) / 1000);
      logger.info({ to, index: source.meta.index, bytes: source.size, delta: source.delta, ms: Date.now() - started }, 'snapshot sent');
    } catch (e) {
      if (this.driver.halted()) return;
      logger.warn({ to, index: source?.meta.index, err: (e as Error).message }, 'snapshot send failed');
      raw.reportSnapshot(to, false);
      raw.reportUnreachable(to);
    } finally {
      source?.close();
      this.sending.delete(to);
      this.driver.kick();
    }
  }

  /** What the follower holds (SnapshotBase); 0, so the whole snapshot, if it does not answer in time or at all. */
  private async heldThrough(to: NodeId): Promise<number> {
    try {
      const body = await this.parts.transport.request(to, RPC_SNAPSHOT_BASE, new Uint8Array(0), SNAPSHOT_BASE_TIMEOUT_MS);
      const base = JSON.parse(Buffer.from(body).toString('utf8')) as Partial<SnapshotBase>;
      return Number.isSafeInteger(base.heldThrough) && base.heldThrough! > 0 ? base.heldThrough! : 0;
    } catch (e) {
      // a member of an older version has no such handler: it gets the self-contained file, as before
      this.parts.logger.debug({ to, err: (e as Error).message }, 'follower did not say what it holds; sending the whole snapshot');
      return 0;
    }
  }

  /**
   * Installs the staged snapshot the core handed over in a Ready: moves its file into the durable
   * snapshot store, restores the object store from it and installs it in MemoryStorage. The driver then
   * adopts its configuration and applied index.
   */
  async install(meta: SnapshotMeta): Promise<void> {
    const { log, mem, store, logger, metrics } = this.parts;
    const key = snapKey(meta);
    const staged = this.staged.get(key);
    if (!staged) throw new Error(`core asked to install snapshot ${key} but no staged file exists`);
    const started = Date.now();
    const pending = log.createSnapshot(meta);
    try {
      await moveFile(staged.path, pending.path);
      await pending.commit();
    } catch (e) {
      await pending.abort().catch(() => undefined);
      throw e;
    }
    this.staged.delete(key);
    const info = log.latestSnapshot();
    if (!info || info.meta.index !== meta.index) throw new Error(`snapshot ${key} committed but not the latest`);
    try {
      await store.restore(info.path);
    } finally {
      staged.release(); // the packs it names are the store's current ones now (or the node halts)
    }
    this.wantWhole = false;
    mem.applySnapshot(meta);
    this.latestIndex = meta.index;
    this.bytesSinceLast = 0;
    this.earlyBy = this.rankFraction();
    this.discardStagedUpTo(meta.index);
    metrics?.snapshots.inc({ event: 'installed' });
    metrics?.snapshotSeconds.observe({ event: 'installed' }, (Date.now() - started) / 1000);
    logger.info({ index: meta.index, term: meta.term, objects: store.size, ms: Date.now() - started }, 'snapshot installed');
    // not awaited: the Ready cycle installing this must not wait for the unlinks of large packs
    void this.collectPacks();
  }

  private discardStagedUpTo(index: number): void {
    for (const [key, staged] of this.staged) {
      if (Number(key.split('/')[0]) > index) continue;
      this.staged.delete(key);
      this.drop(staged);
    }
  }
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

function snapKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await fs.rename(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    await fs.copyFile(from, to);
    await fs.rm(from, { force: true });
  }
}
