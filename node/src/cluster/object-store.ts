// The replicated state machine: stego PNG objects plus the members' raft addresses.
//
// There is no file per object. An applied put keeps a reference to the command's bytes (the same buffer
// the raft log holds, no copy) and is served from memory. A snapshot writes only those objects (plus the
// live objects of packs it compacts, below) into its own file, with a manifest that lists every object:
// in that file's data section, or at (pack, offset). Once committed, the file is hard-linked as a pack
// (packs.ts) and the objects it holds switch to (pack, offset), their in-memory references dropped;
// later reads are positional reads on one open handle per pack. Durability comes from elsewhere: the raft
// log (fsync'd) holds every put until a snapshot covers it, and the snapshot file and the packs it names
// (fsync'd, and never deleted while a retained snapshot names them) hold every object's bytes. After a
// crash the store loads the newest snapshot's manifest (not its bytes), opening the packs it names, and
// the driver replays the log after it. Memory held by objects is therefore bounded by the snapshot
// thresholds (entries / bytes since the last snapshot).
//
// Garbage is bounded: a pack whose live objects fill less than half of it, or one beyond the MAX_PACKS
// newest-densest, is folded into the next snapshot's own data section, so the packs hold at most about
// twice the live bytes and a manifest names at most MAX_PACKS - 1 of them. A lagging follower is sent the
// newest committed snapshot rendered on the fly (snapshotSource): as a self-contained v1 file, or as a
// delta without the objects of packs it already holds, which it completes against its own packs before
// installing it (prepareInstall).
// Formats: snapshot-format.ts and docs/cluster.md.

import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import type { Command } from './commands.js';
import { ClusterError } from './errors.js';
import { writevSliced } from '../storage/sliced-io.js';
import { TimeSlice } from '../storage/yielding.js';
import { ensurePacksDir, linkPack, listPacks, Pack, packPath } from './packs.js';
import {
  deltaHeader,
  entryTail,
  HELD_TAIL,
  readDeltaBase,
  manifestEntry,
  manifestOpen,
  MANIFEST_CLOSE,
  packIndex,
  packName,
  readManifest,
  readPackList,
  SnapshotFormatError,
  v1Header,
  v2Header,
  type ManifestObject,
  type ObjectMeta,
  type SnapshotManifest,
} from './snapshot-format.js';

export { readManifest, SnapshotFormatError, type ObjectMeta, type SnapshotManifest } from './snapshot-format.js';

/**
 * What applying a put did, decided at apply time (the same on every replica) and handed to the request
 * that proposed it, so its answer describes this entry and not the store as later entries left it:
 * stored it; found the id already stored (first write wins); found the owner's idempotency key already
 * used (`meta` is the object under the key); or refused it over the owner's quota.
 */
export type PutOutcome =
  | { kind: 'stored'; meta: ObjectMeta }
  | { kind: 'exists'; meta: ObjectMeta }
  | { kind: 'keyed'; meta: ObjectMeta }
  | { kind: 'over_quota'; ownedBytes: number };

/**
 * How long an Idempotency-Key is remembered: a put under a key whose object is younger than this is a
 * retry and is dropped; after it (or once the object is deleted) the key may create a new object. A
 * constant, not a setting, because every replica must decide the same way when applying the log.
 */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

function keySlot(owner: string, key: string): string {
  return `${owner}\0${key}`;
}

/** Snapshot streaming batches small objects and splits big ranges into chunks of this size. */
const CHUNK_BYTES = 1 << 20;
/**
 * At most this many files hold a snapshot's objects (its own plus MAX_PACKS - 1 packs): a load opens
 * them all, and a manifest must never fan out to thousands of files.
 */
const MAX_PACKS = 16;
export const OBJECT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Where an object's bytes are: the applied command's buffer, or a range of a pack. */
type FileLocation = { file: Pack; offset: number };
type Location = { bytes: Uint8Array } | FileLocation;

/** Mutable on purpose: a snapshot switch moves the location of the very record it captured. */
interface StoredObject {
  meta: ObjectMeta;
  loc: Location;
  /**
   * The object's manifest entry up to its offset (`{"id":…,"offset":`), serialised by the first snapshot
   * that lists it and reused by every later one: metadata never changes, only the offset does.
   */
  entry?: Buffer;
}

/** How a snapshot file is laid out: what snapshotPieces writes. */
interface Layout {
  /** Everything before the manifest (header, and pack list for v2). */
  head: Buffer;
  /** The manifest up to its first object entry. */
  open: Buffer;
  records: StoredObject[];
  locs: Location[];
  /** Each record's offset in the file's own data section, or -1: it stays in a pack the manifest names. */
  own: number[];
  /** What follows each entry's `"offset":`. */
  tail(i: number): string;
}

interface Capture extends Layout {
  key: string;
  meta: SnapshotMeta;
  /** Store generation at capture time: a restore in between makes the capture stale. */
  generation: number;
  /** Inode of the file written: the committed file is another one only if its (index, term) was already published. */
  ino: number;
  /** Where the file's own data section starts. */
  dataStart: number;
  /** The packs it names, kept from garbage collection until it is switched to (see pin). */
  pins: Set<string>;
}

/** The newest committed snapshot as this store holds it: what a lagging follower is sent. */
interface SnapshotView {
  meta: SnapshotMeta;
  open: Buffer;
  records: StoredObject[];
  /** Where each record's bytes were when the snapshot was committed. */
  locs: FileLocation[];
  /** Every pack `locs` points into; the view holds a reference on each. */
  packs: Set<Pack>;
  /**
   * The view as a self-contained v1 file (layout and size), computed by the first transfer to a follower
   * and reused by the next ones: two passes over every record on the consensus loop (sliced), done once
   * per snapshot rather than once per transfer.
   */
  rendered?: Promise<{ layout: Layout; size: number }>;
}

/** A received snapshot file ready to install, and what keeps the packs it names until then. */
export interface PreparedSnapshot {
  path: string;
  /** Releases the packs it names to garbage collection: after its install, or once it is dropped. */
  release(): void;
}

/** A retained snapshot, as the durable log lists them. */
export interface RetainedSnapshot {
  meta: SnapshotMeta;
  path: string;
}

export class ObjectStore {
  private objects = new Map<string, StoredObject>();
  /** (owner, idempotency key) → id of the newest object created under it. */
  private keyIndex = new Map<string, string>();
  /** Stored bytes per owner, for quotas. */
  private ownerBytes = new Map<string, number>();
  private memberAddrs = new Map<NodeId, string>();
  /** Members removed (and not added again): their links are refused with reason 'removed'. */
  private removedIds = new Set<NodeId>();
  /** Open packs by name: every pack a current object or the view points into, and some unused until collected. */
  private packs = new Map<string, Pack>();
  private view: SnapshotView | undefined;
  /** Bumped by every restore: captures and switches from before it no longer apply. */
  private generation = 0;
  /** The last snapshot written, waiting for its commit to switch objects onto the committed file. */
  private written: Capture | undefined;
  /** Pack names held by captures not switched to yet (see pin). */
  private pins = new Set<Set<string>>();
  private lastPins: Set<string> | undefined;
  /** Switches, loads and garbage collection run one at a time, in call order. */
  private serialTail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(private readonly packsDir: string | undefined) {}

  /**
   * `packsDir`: where committed snapshot files are linked as packs (created if absent); a store that
   * never snapshots (tests of apply alone) may go without. `legacyObjectsDir`: the one-file-per-object
   * directory of earlier versions; nothing reads it any more (the snapshot and the log hold every
   * object), so it is removed.
   */
  static async open(opts: { packsDir?: string; legacyObjectsDir?: string } = {}): Promise<ObjectStore> {
    if (opts.legacyObjectsDir) await fs.rm(opts.legacyObjectsDir, { recursive: true, force: true });
    if (opts.packsDir) await ensurePacksDir(opts.packsDir);
    return new ObjectStore(opts.packsDir);
  }

  get size(): number {
    return this.objects.size;
  }

  /** Objects whose bytes are held in memory (applied since the last committed snapshot). */
  get inMemory(): number {
    let n = 0;
    for (const o of this.objects.values()) if ('bytes' in o.loc) n++;
    return n;
  }

  get(id: string): ObjectMeta | undefined {
    return this.objects.get(id)?.meta;
  }

  /** The object created under `key` by `owner` if the key is still remembered at time `now`. */
  byIdempotencyKey(owner: string, key: string, now = Date.now()): ObjectMeta | undefined {
    const id = this.keyIndex.get(keySlot(owner, key));
    const meta = id === undefined ? undefined : this.objects.get(id)?.meta;
    return meta && now - meta.createdAt < IDEMPOTENCY_KEY_TTL_MS ? meta : undefined;
  }

  /** Bytes of objects stored by `owner`. */
  bytesOwnedBy(owner: string): number {
    return this.ownerBytes.get(owner) ?? 0;
  }

  list(): ObjectMeta[] {
    return this.sortedRecords().map((o) => o.meta);
  }

  isRemoved(id: NodeId): boolean {
    return this.removedIds.has(id);
  }

  members(): Map<NodeId, string> {
    return new Map(this.memberAddrs);
  }

  /** Seeds member addresses from configuration; replicated setMember commands override them. */
  seedMembers(members: Map<NodeId, string>): void {
    for (const [id, addr] of members) if (!this.memberAddrs.has(id)) this.memberAddrs.set(id, addr);
  }

  async read(id: string): Promise<Buffer | undefined> {
    return this.readRecord(id, true);
  }

  /**
   * The object's bytes as pieces of at most `pieceBytes`, read from where they live (a positional read
   * per piece from the pack, or views of the in-memory command buffer), one piece per `next()`:
   * a slow reader holds about one piece, not the object. The pack stays open for this reader
   * even if a newer snapshot supersedes it meanwhile, until the last piece was read or `close()`.
   */
  openPieces(id: string, pieceBytes = 64 * 1024): PieceReader | undefined {
    const rec = this.objects.get(id);
    if (!rec) return undefined;
    if (this.closed) throw new ClusterError('unavailable', 'the object store is closed (node stopping)');
    return new PieceReader(rec.meta, rec.loc, pieceBytes);
  }

  /** openPieces as a byte stream (backpressure: the next piece is read when the consumer wants one). */
  openRead(id: string, pieceBytes = 64 * 1024): { meta: ObjectMeta; stream: Readable } | undefined {
    const reader = this.openPieces(id, pieceBytes);
    if (!reader) return undefined;
    const stream = new Readable({
      highWaterMark: pieceBytes,
      read() {
        reader.next().then(
          (piece) => this.push(piece ?? null),
          (e: unknown) => this.destroy(e as Error),
        );
      },
      destroy(err, cb) {
        reader.close();
        cb(err);
      },
    });
    return { meta: reader.meta, stream };
  }

  /**
   * The object's bytes in a buffer nobody else holds, so it can be moved to another thread: a copy of an
   * object still in memory (its buffer is the raft log entry's), the freshly read buffer of one in a file.
   */
  async readDetached(id: string): Promise<Uint8Array | undefined> {
    const rec = this.objects.get(id);
    if (!rec) return undefined;
    if ('bytes' in rec.loc) return new Uint8Array(rec.loc.bytes);
    const b = await this.readRecord(id, true);
    if (!b) return undefined;
    return b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
  }

  private async readRecord(id: string, mayRetry: boolean): Promise<Buffer | undefined> {
    const rec = this.objects.get(id);
    if (!rec) return undefined;
    const loc = rec.loc;
    if ('bytes' in loc) return Buffer.from(loc.bytes.buffer, loc.bytes.byteOffset, loc.bytes.byteLength);
    if (this.closed) throw new ClusterError('unavailable', 'the object store is closed (node stopping)');
    loc.file.acquire();
    try {
      return await loc.file.readExactly(loc.offset, rec.meta.size);
    } catch (e) {
      // belt and braces: the handle is held open for us, but if the location moved meanwhile, follow it
      if (mayRetry && this.objects.get(id)?.loc !== loc) return this.readRecord(id, false);
      throw e;
    } finally {
      loc.file.release();
    }
  }

  /**
   * Applies a command to the in-memory state, synchronously and without I/O: a put keeps a reference to
   * the command's bytes until a snapshot covers it. Idempotent: replaying the log after a restart
   * converges.
   */
  apply(cmd: Command): PutOutcome | undefined {
    switch (cmd.kind) {
      case 'put': {
        // First write wins: a put for an id that exists is a retry (an idempotency key, or a write the
        // service re-proposed across a leader change), and must neither duplicate nor replace the object.
        const existing = this.objects.get(cmd.id);
        if (existing) return { kind: 'exists', meta: existing.meta };
        const refused = this.refuseClientPut(cmd);
        if (refused) return refused;
        const rec: StoredObject = {
          meta: {
            id: cmd.id,
            sha256: Buffer.from(cmd.sha256).toString('hex'),
            size: cmd.bytes.length,
            contentType: cmd.contentType,
            createdAt: cmd.createdAt,
            ...(cmd.owner ? { owner: cmd.owner } : {}),
            ...(cmd.owner && cmd.idempotencyKey ? { idempotencyKey: cmd.idempotencyKey } : {}),
            ...(cmd.fingerprint ? { fingerprint: Buffer.from(cmd.fingerprint).toString('hex') } : {}),
          },
          loc: { bytes: cmd.bytes },
        };
        this.insert(rec);
        return { kind: 'stored', meta: rec.meta };
      }
      case 'delete': {
        // the next snapshot no longer lists the object; bytes in a pack leave once that pack is
        // compacted (its live bytes counted here fall below half of it) and collected
        const rec = this.objects.get(cmd.id);
        if (!rec) return undefined;
        this.objects.delete(cmd.id);
        count(rec.loc, rec.meta.size, -1);
        const { owner, idempotencyKey } = rec.meta;
        if (owner !== undefined) this.ownerBytes.set(owner, this.bytesOwnedBy(owner) - rec.meta.size);
        if (owner !== undefined && idempotencyKey !== undefined && this.keyIndex.get(keySlot(owner, idempotencyKey)) === cmd.id) {
          this.keyIndex.delete(keySlot(owner, idempotencyKey));
        }
        return undefined;
      }
      case 'setMember':
        this.memberAddrs.set(cmd.id, cmd.address);
        this.removedIds.delete(cmd.id);
        return undefined;
      case 'removeMember':
        this.memberAddrs.delete(cmd.id);
        this.removedIds.add(cmd.id);
        return undefined;
    }
  }

  /**
   * Deterministic (log-time) admission of a client's put: a key still remembered as of the command's
   * createdAt makes it a retry (answered with the object stored under the key), and a put that would take
   * its owner over the quota is refused.
   */
  private refuseClientPut(cmd: Extract<Command, { kind: 'put' }>): PutOutcome | undefined {
    if (cmd.owner === undefined) return undefined;
    const prior = cmd.idempotencyKey === undefined ? undefined : this.byIdempotencyKey(cmd.owner, cmd.idempotencyKey, cmd.createdAt);
    if (prior) return { kind: 'keyed', meta: prior };
    if (cmd.quotaBytes && this.bytesOwnedBy(cmd.owner) + cmd.bytes.length > cmd.quotaBytes) return { kind: 'over_quota', ownedBytes: this.bytesOwnedBy(cmd.owner) };
    return undefined;
  }

  private insert(rec: StoredObject): void {
    index({ objects: this.objects, keyIndex: this.keyIndex, ownerBytes: this.ownerBytes }, rec);
    count(rec.loc, rec.meta.size, 1);
  }

  /** Resolves once switches, loads and collections in progress are done (no object I/O is pending otherwise). */
  async flush(): Promise<void> {
    await this.serialTail;
  }

  /** Closes the pack handles once pending reads and streams finish (node shutdown). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    this.setView(undefined);
    for (const p of this.packs.values()) p.supersede();
    this.packs.clear();
  }

  /**
   * Writes a snapshot of the state as it is *now* (the caller calls this right after applying
   * `meta.index`, before applying anything else). Returns the number of bytes written. Once the file is
   * committed, call `snapshotCommitted` so the objects it holds move from memory onto it.
   *
   * The file holds the bytes of the objects in memory and of those in packs being compacted (see
   * packsToKeep); every other object is listed by (pack, offset) and not copied.
   *
   * It runs beside consensus on the same event loop, so no step may hold the loop for long. Only the
   * capture is synchronous: the records in apply order, their locations, the packs kept (which are
   * pinned) and a reference on every pack they point into, O(objects) without sorting or serialising
   * (objects are immutable, so the bytes need no copy). The rest runs a few milliseconds at a time: each
   * object's manifest entry is serialised once in its lifetime (see StoredObject.entry), the manifest is
   * assembled a chunk at a time into one reused buffer, and object bytes go to the file through the same
   * buffer (large objects straight from the buffers that hold them), as do bytes of compacted packs.
   * Nothing proportional to the store is allocated per snapshot beyond the capture.
   */
  async writeSnapshot(file: string, meta: SnapshotMeta): Promise<number> {
    this.packsDirOrThrow();
    const generation = this.generation;
    const records = [...this.objects.values()];
    const locs = records.map((r) => r.loc);
    const kept = packsToKeep(this.packs.values());
    const names = [...kept].map((p) => p.name).sort();
    const pins = this.pin(names);
    const open = manifestOpen({ index: meta.index, term: meta.term, conf: meta.conf, members: [...this.memberAddrs.entries()], removed: [...this.removedIds].sort() });
    const files = new Set<Pack>();
    for (const loc of locs) if ('file' in loc) files.add(loc.file);
    for (const f of files) f.acquire();
    try {
      const written = await writeV2(file, open, records, locs, names, kept);
      this.written = { ...written, key: snapKey(meta), meta, generation, pins };
      return written.size;
    } finally {
      for (const f of files) f.release();
    }
  }

  /**
   * Keeps the packs a snapshot being written names from garbage collection until that snapshot is
   * switched to, or the next one is written (the driver writes one at a time): until then it may have
   * been published without being on the list of retained snapshots a collection already read. The
   * previous capture's pins are dropped through the serial queue, after any collection already running.
   */
  private pin(names: string[]): Set<string> {
    const pins = new Set(names);
    this.pins.add(pins);
    const previous = this.lastPins;
    this.lastPins = pins;
    if (previous) void this.serial(async () => this.pins.delete(previous));
    return pins;
  }

  /**
   * The snapshot last written for `meta` is committed at `file` (its final path): it becomes a pack, and
   * objects it holds that are still current move onto it and their in-memory bytes are dropped; objects
   * applied since stay in memory, objects it names in other packs stay there. It becomes the snapshot
   * sent to lagging followers.
   */
  async snapshotCommitted(file: string, meta: SnapshotMeta): Promise<void> {
    const capture = this.written;
    if (!capture || capture.key !== snapKey(meta)) return;
    this.written = undefined;
    await this.serial(async () => {
      try {
        await this.switchTo(file, capture);
      } finally {
        this.pins.delete(capture.pins);
      }
    });
  }

  private async switchTo(file: string, capture: Capture): Promise<void> {
    if (capture.generation !== this.generation || this.closed) return;
    const name = packName(capture.meta.index, capture.meta.term);
    await linkPack(this.packsDirOrThrow(), name, file);
    const [pack] = await this.openPacks([name]);
    if (pack!.ino !== capture.ino) {
      // the durable log kept the copy it had already published for this (index, term), whose layout may
      // differ: the objects stay where they are (memory or their packs, the next snapshot writes them
      // again), and that copy is what followers are sent
      this.setView((await this.openSnapshot(file)).view);
      return;
    }
    // a slice at a time, like the capture; switches, loads and collections never interleave
    const locs = new Array<FileLocation>(capture.records.length);
    const packs = new Set<Pack>();
    const slice = new TimeSlice();
    for (let i = 0; i < capture.records.length; i++) {
      if ((i & 255) === 0) await slice.maybeYield();
      const rec = capture.records[i]!;
      const at = capture.own[i]!;
      const loc = at >= 0 ? { file: pack!, offset: capture.dataStart + at } : (capture.locs[i] as FileLocation);
      locs[i] = loc;
      packs.add(loc.file);
      if (at >= 0 && this.objects.get(rec.meta.id) === rec) this.place(rec, loc);
    }
    this.setView({ meta: capture.meta, open: capture.open, records: capture.records, locs, packs });
  }

  /** Replaces the whole state with the snapshot's (install from the leader). Returns its manifest. */
  async restore(file: string): Promise<SnapshotManifest> {
    return this.loadFromSnapshot(file);
  }

  /**
   * Loads a committed snapshot's manifest (not its bytes): the file becomes a pack (linked if it is not
   * yet), every pack it names is opened (a missing one is corruption: nothing is dropped silently), and
   * every object points into them. It becomes the snapshot sent to lagging followers. Used at start and
   * for installs from the leader.
   */
  async loadFromSnapshot(file: string): Promise<SnapshotManifest> {
    return this.serial(() => this.load(file));
  }

  private async load(file: string): Promise<SnapshotManifest> {
    const { manifest, view } = await this.openSnapshot(file);
    // the new index is built a slice at a time beside the current state, which it then replaces in one
    // synchronous step: reads and applies in between see the old state whole, and captures taken in
    // between are stale (generation)
    const next: Index = { objects: new Map(), keyIndex: new Map(), ownerBytes: new Map() };
    const live = new Map<Pack, { objects: number; bytes: number }>();
    const slice = new TimeSlice();
    for (let i = 0; i < view.records.length; i++) {
      if ((i & 255) === 0) await slice.maybeYield();
      const rec = view.records[i]!;
      index(next, rec);
      const file = view.locs[i]!.file;
      let n = live.get(file);
      if (!n) live.set(file, (n = { objects: 0, bytes: 0 }));
      n.objects++;
      n.bytes += rec.meta.size;
    }
    this.generation++;
    this.written = undefined;
    for (const p of this.packs.values()) p.liveObjects = p.liveBytes = 0;
    for (const [p, n] of live) {
      p.liveObjects = n.objects;
      p.liveBytes = n.bytes;
    }
    ({ objects: this.objects, keyIndex: this.keyIndex, ownerBytes: this.ownerBytes } = next);
    this.memberAddrs = new Map(manifest.members);
    this.removedIds = new Set(Array.isArray(manifest.removed) ? manifest.removed.filter((id) => typeof id === 'string') : []);
    this.setView(view);
    return manifest;
  }

  /**
   * Reads a committed snapshot file for use: links it as a pack if it is not yet, opens every pack it
   * names (a missing one is corruption) and returns its manifest and its view, whose records point into
   * those packs. The manifest is read and parsed a slice at a time (readManifest), and so are the records
   * built from it.
   */
  private async openSnapshot(file: string): Promise<{ manifest: SnapshotManifest; view: SnapshotView }> {
    const read = await readManifest(file);
    const { manifest } = read;
    const self = packName(manifest.index, manifest.term);
    await linkPack(this.packsDirOrThrow(), self, file);
    const [own, ...named] = await this.openPacks([self, ...read.packs]);
    const records = new Array<StoredObject>(manifest.objects.length);
    const locs = new Array<FileLocation>(manifest.objects.length);
    const packs = new Set<Pack>();
    const slice = new TimeSlice();
    for (let i = 0; i < manifest.objects.length; i++) {
      if ((i & 255) === 0) await slice.maybeYield();
      const o = manifest.objects[i]!;
      if (o.held) throw new SnapshotFormatError(`${file}: a delta is installed only once completed (prepareInstall)`);
      const loc = o.pack === undefined ? { file: own!, offset: read.dataStart + o.offset } : { file: named[o.pack]!, offset: o.offset };
      if (loc.offset + o.size > loc.file.size) throw new SnapshotFormatError(`${file}: object ${o.id} lies beyond the end of pack ${loc.file.name}`);
      records[i] = { meta: placementless(o), loc };
      locs[i] = loc;
      packs.add(loc.file);
    }
    const meta: SnapshotMeta = { index: manifest.index, term: manifest.term, conf: manifest.conf };
    const removed = Array.isArray(manifest.removed) ? manifest.removed.filter((id) => typeof id === 'string').sort() : [];
    const open = manifestOpen({ ...meta, members: manifest.members, removed });
    return { manifest, view: { meta, open, records, locs, packs } };
  }

  /**
   * Deletes every pack that nothing needs: not a retained snapshot's own file or one it names (read from
   * the files' headers, so the disk decides, not memory), not holding a current object, not in the view
   * (what followers are sent), not pinned by a snapshot being written. `retained` is asked inside the
   * serial queue, after the switches and loads before it. Run after every snapshot commit or install,
   * and at start. Reads and streams in flight keep their packs open: unlinking is safe on POSIX. Returns
   * the names deleted.
   */
  async collectGarbage(retained: () => readonly RetainedSnapshot[]): Promise<string[]> {
    return this.serial(async () => {
      if (this.closed) return [];
      const dir = this.packsDirOrThrow();
      const keep = await this.packsInUse(retained());
      const removed: string[] = [];
      for (const name of await listPacks(dir)) {
        if (keep.has(name)) continue;
        await fs.rm(packPath(dir, name), { force: true });
        this.packs.get(name)?.supersede();
        this.packs.delete(name);
        removed.push(name);
      }
      return removed;
    });
  }

  private async packsInUse(retained: readonly RetainedSnapshot[]): Promise<Set<string>> {
    const keep = new Set<string>();
    for (const s of retained) {
      keep.add(packName(s.meta.index, s.meta.term));
      try {
        for (const name of await readPackList(s.path)) keep.add(name);
      } catch (e) {
        // pruned since the list was taken: it no longer needs anything
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    for (const p of this.packs.values()) if (p.liveObjects > 0) keep.add(p.name);
    for (const p of this.view?.packs ?? []) keep.add(p.name);
    for (const pins of this.pins) for (const name of pins) keep.add(name);
    return keep;
  }

  /**
   * The newest committed snapshot as a file for a follower, rendered on the fly from the packs (undefined
   * before the first one). Its size is known up front and any suffix can be streamed, as the transport's
   * resumable transfer needs; the packs stay open until `close()`.
   *
   * `heldThrough` is the index the follower has applied through. The objects of every pack of a snapshot
   * at or below it are then left out (a snapshot at index i holds only objects entries up to i created,
   * and the follower applied those entries): the file is a delta (v3) listing them as held, which the
   * follower completes from its own store (prepareInstall). Without such a pack it is the self-contained
   * v1 file. A follower that installed a large snapshot and was then outrun by the log is thus sent what
   * was written since, not the store again.
   */
  async snapshotSource(heldThrough = 0): Promise<SnapshotStream | undefined> {
    const view = this.view;
    if (!view || this.closed) return undefined;
    const held = new Set([...view.packs].filter((p) => packIndex(p.name) <= heldThrough));
    for (const p of view.packs) p.acquire();
    try {
      let rendered: { layout: Layout; size: number };
      if (held.size > 0) {
        rendered = await renderFlat(view, held, heldThrough);
      } else {
        view.rendered ??= renderFlat(view, held, 0);
        rendered = await view.rendered;
      }
      return new SnapshotStream(view.meta, rendered.layout, rendered.size, view.packs, held.size > 0);
    } catch (e) {
      for (const p of view.packs) p.release();
      if (held.size === 0) view.rendered = undefined; // the next transfer tries again
      throw e;
    }
  }

  /**
   * Readies a snapshot file received from a leader for install. A v1 file is installable as it is. A
   * delta (v3) lists objects this store holds without their bytes: it becomes a v2 file beside it
   * whose manifest names this store's packs for those objects and whose data section holds the bytes the
   * leader sent, plus those of held objects still in memory or in sparse packs (the choice a snapshot of
   * our own makes, packsToKeep). The packs it names are pinned until `release()`. The delta is deleted.
   *
   * A held object this store lacks, or holds with other bytes, is SnapshotFormatError: nothing is
   * installed, and the leader is to send a whole file. Which objects are held is captured in one
   * synchronous step, pins included, so no collection can remove a pack between the two.
   */
  async prepareInstall(file: string): Promise<PreparedSnapshot> {
    // a whole file's manifest is read once, by the install
    if ((await readDeltaBase(file)) === undefined) return { path: file, release: () => undefined };
    const read = await readManifest(file);
    const { manifest } = read;
    const delta = await Pack.openFile(file, 'delta');
    const out = `${file.replace(/\.snap$/, '')}-completed.snap`;
    let pins: Set<string> | undefined;
    const used = new Set<Pack>([delta]);
    for (const p of used) p.acquire();
    try {
      const records = new Array<StoredObject>(manifest.objects.length);
      const locs = new Array<Location>(manifest.objects.length);
      const mine = new Set<Pack>();
      for (let i = 0; i < manifest.objects.length; i++) {
        const o = manifest.objects[i]!;
        let loc: Location;
        if (o.held) {
          const rec = this.objects.get(o.id);
          if (!rec || rec.meta.sha256 !== o.sha256 || rec.meta.size !== o.size) {
            throw new SnapshotFormatError(`${file}: object ${o.id} is marked held, but this member does not hold it`);
          }
          loc = rec.loc;
          if ('file' in loc) mine.add(loc.file);
        } else {
          loc = { file: delta, offset: read.dataStart + o.offset };
          if (loc.offset + o.size > delta.size) throw new SnapshotFormatError(`${file}: object ${o.id} lies beyond the end of the file`);
        }
        records[i] = { meta: placementless(o), loc };
        locs[i] = loc;
      }
      const kept = packsToKeep(mine);
      const names = [...kept].map((p) => p.name).sort();
      pins = new Set(names);
      this.pins.add(pins);
      for (const p of mine) {
        if (used.has(p)) continue;
        used.add(p);
        p.acquire();
      }
      // the rest is a snapshot of our own
      const removed = Array.isArray(manifest.removed) ? manifest.removed : [];
      const open = manifestOpen({ index: manifest.index, term: manifest.term, conf: manifest.conf, members: manifest.members, removed });
      await writeV2(out, open, records, locs, names, kept);
    } catch (e) {
      if (pins) this.pins.delete(pins);
      await fs.rm(out, { force: true });
      throw e;
    } finally {
      for (const p of used) p.release();
      delta.supersede();
    }
    await fs.rm(file, { force: true });
    const held = pins;
    return { path: out, release: () => void this.pins.delete(held) };
  }

  /** Names of the packs current objects are read from. */
  livePacks(): string[] {
    return [...this.packs.values()].filter((p) => p.liveObjects > 0).map((p) => p.name).sort();
  }

  private setView(view: SnapshotView | undefined): void {
    for (const p of view?.packs ?? []) p.acquire();
    for (const p of this.view?.packs ?? []) p.release();
    this.view = view;
  }

  /** The packs named, from the table or opened (and added to it). */
  private async openPacks(names: string[]): Promise<Pack[]> {
    const out: Pack[] = [];
    for (const name of names) {
      let pack = this.packs.get(name);
      if (!pack) {
        pack = await Pack.open(this.packsDirOrThrow(), name);
        this.packs.set(name, pack);
      }
      out.push(pack);
    }
    return out;
  }

  /** Points `rec` at `loc`, keeping the packs' live counts. */
  private place(rec: StoredObject, loc: Location): void {
    count(rec.loc, rec.meta.size, -1);
    rec.loc = loc;
    count(loc, rec.meta.size, 1);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.serialTail.then(work);
    this.serialTail = run.catch(() => undefined);
    return run;
  }

  private packsDirOrThrow(): string {
    if (!this.packsDir) throw new Error('this object store was opened without a packs directory: it cannot snapshot');
    return this.packsDir;
  }

  private sortedRecords(): StoredObject[] {
    return [...this.objects.values()].sort((a, b) => a.meta.createdAt - b.meta.createdAt || a.meta.id.localeCompare(b.meta.id));
  }
}

/** The store's indexes of its objects: by id, by (owner, idempotency key), bytes per owner. */
interface Index {
  objects: Map<string, StoredObject>;
  keyIndex: Map<string, string>;
  ownerBytes: Map<string, number>;
}

/** Adds an object to the indexes (not to its pack's live counts: see count). */
function index(into: Index, rec: StoredObject): void {
  into.objects.set(rec.meta.id, rec);
  const { owner, idempotencyKey } = rec.meta;
  if (owner === undefined) return;
  into.ownerBytes.set(owner, (into.ownerBytes.get(owner) ?? 0) + rec.meta.size);
  if (idempotencyKey === undefined) return;
  const slot = keySlot(owner, idempotencyKey);
  const prior = into.objects.get(into.keyIndex.get(slot) ?? '');
  if (!prior || prior.meta.createdAt <= rec.meta.createdAt) into.keyIndex.set(slot, rec.meta.id);
}

/** Adds (or removes) an object's bytes to the live counts of the pack it is in, if any. */
function count(loc: Location, size: number, sign: 1 | -1): void {
  if (!('file' in loc)) return;
  loc.file.liveObjects += sign;
  loc.file.liveBytes += sign * size;
}

/**
 * The packs the next snapshot names instead of copying their objects: those whose live objects fill at
 * least half of the file (so the packs never hold more than about twice the live bytes, manifests
 * included), the MAX_PACKS - 1 with the most live bytes of them. The live objects of every other pack
 * are copied into the new snapshot's own data section, and the pack is collected once no retained
 * snapshot names it.
 */
function packsToKeep(packs: Iterable<Pack>): Set<Pack> {
  const dense = [...packs].filter((p) => p.liveObjects > 0 && 2 * p.liveBytes >= p.size);
  dense.sort((a, b) => b.liveBytes - a.liveBytes);
  return new Set(dense.slice(0, MAX_PACKS - 1));
}

/** Each record's offset in the file's own data section (-1: it stays in a pack of `kept`), and the section's size. */
async function ownLayout(records: StoredObject[], locs: Location[], kept: Set<Pack>): Promise<{ own: number[]; bytes: number }> {
  const own = new Array<number>(records.length);
  let bytes = 0;
  const slice = new TimeSlice();
  for (let i = 0; i < records.length; i++) {
    if ((i & 1023) === 0) await slice.maybeYield();
    const loc = locs[i]!;
    if ('file' in loc && kept.has(loc.file)) {
      own[i] = -1;
    } else {
      own[i] = bytes;
      bytes += records[i]!.meta.size;
    }
  }
  return { own, bytes };
}

/**
 * Writes an incremental (v2) snapshot of `records`: the objects of `kept` packs named by (pack, offset),
 * every other one's bytes in the file's own data section. `names` are the kept packs' names, sorted: the
 * file's pack list. Returns its layout, where its data section starts, its size and its inode.
 */
async function writeV2(
  file: string,
  open: Buffer,
  records: StoredObject[],
  locs: Location[],
  names: string[],
  kept: Set<Pack>,
): Promise<Layout & { dataStart: number; size: number; ino: number }> {
  const { own, bytes } = await ownLayout(records, locs, kept);
  const packAt = new Map(names.map((name, i) => [name, i]));
  const tail = (i: number): string => {
    const loc = locs[i]!;
    return own[i]! >= 0 || !('file' in loc) ? entryTail(own[i]!) : entryTail(loc.offset, packAt.get(loc.file.name));
  };
  const manifestBytes = await manifestLength(open, records, tail);
  const head = v2Header(names, manifestBytes);
  const layout: Layout = { head, open, records, locs, own, tail };
  const dataStart = head.length + manifestBytes;
  const size = dataStart + bytes;
  const ino = await writeSynced(file, snapshotPieces(layout), size);
  return { ...layout, dataStart, size, ino };
}

/**
 * A view's layout as one file for a follower: every object in the file's own data section but those of
 * `held` packs, listed as held (a delta, v3); with no held pack, the self-contained v1 file.
 */
async function renderFlat(view: SnapshotView, held: Set<Pack>, heldThrough: number): Promise<{ layout: Layout; size: number }> {
  const { own, bytes } = await ownLayout(view.records, view.locs, held);
  const tail = (i: number): string => (own[i]! >= 0 ? entryTail(own[i]!) : HELD_TAIL);
  const manifestBytes = await manifestLength(view.open, view.records, tail);
  const head = held.size > 0 ? deltaHeader(manifestBytes, heldThrough) : v1Header(manifestBytes);
  return { layout: { head, open: view.open, records: view.records, locs: view.locs, own, tail }, size: head.length + manifestBytes + bytes };
}

/** The manifest's length in bytes; serialises the entries of records that have none yet. */
async function manifestLength(open: Buffer, records: StoredObject[], tail: (i: number) => string): Promise<number> {
  let bytes = open.length + MANIFEST_CLOSE.length;
  const slice = new TimeSlice();
  for (let i = 0; i < records.length; i++) {
    if ((i & 255) === 0) await slice.maybeYield();
    const r = records[i]!;
    const entry = (r.entry ??= manifestEntry(r.meta));
    bytes += entry.length + tail(i).length + (i > 0 ? 1 : 0); // `,` before every entry but the first
  }
  return bytes;
}


/**
 * A committed snapshot rendered as one file (v1, or a v3 delta) for a lagging follower: the manifest is
 * assembled from the cached entries with offsets back to back, the object bytes are read from the packs
 * a chunk at a time as the consumer asks for them, never a whole object.
 * Holds a reference on every pack until close().
 */
export class SnapshotStream {
  private closed = false;

  constructor(
    readonly meta: SnapshotMeta,
    private readonly layout: Layout,
    /** Total bytes of the file. */
    readonly size: number,
    private readonly packs: Set<Pack>,
    /** A delta: objects the follower holds are listed but not in the file. */
    readonly delta = false,
  ) {}

  /**
   * The file's bytes from the first, one buffer at a time as the consumer asks (SnapshotSource.read): a
   * piece may be a view of a buffer reused for the next one, so nothing is copied here.
   */
  async *read(): AsyncGenerator<Buffer> {
    if (this.closed) throw new Error('snapshot stream already closed');
    for await (const group of snapshotPieces(this.layout)) yield* group;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.packs) p.release();
  }
}

/**
 * Sequential pieces of one object. For an object in a pack it holds a reference on the pack
 * from the open until the last piece or close(), whichever comes first.
 */
export class PieceReader {
  private at = 0;
  private closed = false;

  constructor(
    readonly meta: ObjectMeta,
    private readonly loc: Location,
    private readonly pieceBytes: number,
  ) {
    if ('file' in loc) loc.file.acquire();
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.closed ? 0 : this.meta.size - this.at;
  }

  /** The next piece, or undefined once every byte was read. One call at a time. */
  async next(): Promise<Buffer | undefined> {
    if (this.closed || this.at >= this.meta.size) {
      this.close();
      return undefined;
    }
    const n = Math.min(this.pieceBytes, this.meta.size - this.at);
    const start = this.at;
    this.at += n;
    if ('bytes' in this.loc) {
      const b = this.loc.bytes;
      return Buffer.from(b.buffer, b.byteOffset + start, n);
    }
    try {
      return await this.loc.file.readExactly(this.loc.offset + start, n);
    } catch (e) {
      this.close();
      throw e;
    } finally {
      // the file is released as soon as the last piece is read
      if (this.at >= this.meta.size) this.close();
    }
  }

  /** Releases the pack (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if ('file' in this.loc) this.loc.file.release();
  }
}

/** In-memory objects smaller than this are copied into the write buffer; larger ones are written in place. */
const COPY_BELOW_BYTES = 64 * 1024;

/**
 * The snapshot's bytes as groups of buffers for writev: header and manifest (assembled a chunk at a time
 * into one buffer), then the bytes of every record in the file's own data section. Small objects in memory
 * are copied into that buffer (a writev of thousands of 1 KiB pieces cost more CPU on the event loop than
 * the copy), large ones are passed as they are; runs of bytes in a pack are read a chunk at a time into
 * the same buffer. Reusing it is safe because the consumer is done with a group before it asks for the
 * next (the writer writes it, a snapshot sender writes it to the link). The consumer's awaits between groups are the
 * event-loop turns that keep each synchronous step to one chunk's work.
 */
async function* snapshotPieces(layout: Layout): AsyncGenerator<Buffer[]> {
  const { head, open, records, locs, own, tail } = layout;
  const scratch = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  yield [head, open];
  let used = 0;
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!.entry!;
    const end = tail(i);
    const need = 1 + entry.length + end.length;
    if (used + need > scratch.length) {
      yield [scratch.subarray(0, used)];
      used = 0;
    }
    if (need > scratch.length) {
      // an entry larger than the buffer (metadata is bounded far below it, but stay correct)
      yield [Buffer.from(i > 0 ? ',' : ''), entry, Buffer.from(end)];
      continue;
    }
    if (i > 0) scratch[used++] = 0x2c; // ','
    used += entry.copy(scratch, used);
    used += scratch.write(end, used, 'latin1');
  }
  if (used > 0) yield [scratch.subarray(0, used)];
  yield [MANIFEST_CLOSE];

  // small objects are copied into the buffer (one write per chunk); large ones are written from where they are
  used = 0;
  for (let i = 0; i < locs.length; ) {
    if (own[i]! < 0) {
      i++; // stays in a pack the manifest names
      continue;
    }
    const loc = locs[i]!;
    if ('bytes' in loc) {
      const bytes = Buffer.from(loc.bytes.buffer, loc.bytes.byteOffset, loc.bytes.byteLength);
      i++;
      if (bytes.length >= COPY_BELOW_BYTES) {
        yield used > 0 ? [scratch.subarray(0, used), bytes] : [bytes];
        used = 0;
      } else {
        if (used + bytes.length > scratch.length) {
          yield [scratch.subarray(0, used)];
          used = 0;
        }
        used += bytes.copy(scratch, used);
      }
      continue;
    }
    if (used > 0) {
      yield [scratch.subarray(0, used)];
      used = 0;
    }
    // objects of one pack mostly lie back to back in the same order: copy runs of them at once
    const start = loc.offset;
    let end = start + records[i]!.meta.size;
    i++;
    for (let next = locs[i]; next && own[i]! >= 0 && 'file' in next && next.file === loc.file && next.offset === end; next = locs[i]) {
      end += records[i]!.meta.size;
      i++;
    }
    for (let pos = start; pos < end; pos += CHUNK_BYTES) {
      yield [await loc.file.readInto(scratch.subarray(0, Math.min(CHUNK_BYTES, end - pos)), pos)];
    }
  }
  if (used > 0) yield [scratch.subarray(0, used)];
}

/**
 * A snapshot file is made durable as it is written, SNAPSHOT_SYNC_BYTES at a time, instead of by one
 * fsync of the whole file at commit. The raft log's fdatasyncs share the disk and the filesystem journal
 * with it: tens of MB of dirty snapshot data flushed at once held every log save (and so every write's
 * acknowledgement) behind it, the replication tail latency of bench:raft; a bounded amount in flight
 * bounds that wait. The commit's own fsync then finds almost nothing left to write.
 */
const SNAPSHOT_SYNC_BYTES = 1 << 20;

/** Writes the groups back to back with writev; checks the total against `expected`. Returns the file's inode. */
async function writeSynced(file: string, groups: AsyncIterable<Buffer[]>, expected: number): Promise<number> {
  const fh = await fs.open(file, 'w');
  try {
    let position = 0;
    let unsynced = 0;
    for await (const group of groups) {
      const bytesWritten = await writevSliced(fh, group, position);
      position += bytesWritten;
      unsynced += bytesWritten;
      if (unsynced >= SNAPSHOT_SYNC_BYTES) {
        await fh.datasync();
        unsynced = 0;
      }
    }
    if (position !== expected) throw new Error(`snapshot ${file}: wrote ${position} bytes, expected ${expected}`);
    return (await fh.stat()).ino;
  } finally {
    await fh.close();
  }
}

function snapKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}

/** The object's metadata without where the manifest placed it. */
function placementless(o: ManifestObject): ObjectMeta {
  const { offset: _offset, pack: _pack, held: _held, ...meta } = o;
  return meta;
}
