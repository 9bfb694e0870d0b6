// The replicated state machine: stego PNG objects plus the members' raft addresses.
//
// There is no file per object. An applied put keeps a reference to the command's bytes (the same buffer
// the raft log holds, no copy) and is served from memory. When a snapshot is committed, every object it
// covers is switched to (snapshot file, offset) and its in-memory reference dropped; later reads are
// positional reads on one open handle per snapshot file. Durability comes from elsewhere: the raft log
// (fsync'd) holds every put until a snapshot covers it, and the snapshot file (fsync'd) holds every
// object's bytes. After a crash the store loads the newest snapshot's manifest (not its bytes) and the
// driver replays the log after it. Memory held by objects is therefore bounded by the snapshot
// thresholds (entries / bytes since the last snapshot).
//
// Snapshot file (see docs/cluster.md):
//   "STEGOSNP" | u32 BE version (1) | u32 BE manifest length | manifest JSON | object bytes back to back
// The manifest records the applied index/term, the ConfState, the member addresses and, per object,
// its metadata and offset into the data section. The data section is the raw PNG bytes: no encoding.

import fs, { type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { ConfState, NodeId, SnapshotMeta } from '../raft/types.js';
import type { Command } from './commands.js';
import { ClusterError } from './errors.js';
import { TimeSlice } from '../storage/yielding.js';

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

export interface ObjectMeta {
  id: string;
  sha256: string;
  size: number;
  contentType: string;
  createdAt: number;
  /** API token id that stored it (absent for objects written before access control). */
  owner?: string;
  /** Idempotency-Key it was created under, scoped by `owner`. */
  idempotencyKey?: string;
  /** Hex HMAC of the creating request (see ClusterService.putObjectFor). */
  fingerprint?: string;
}

/**
 * How long an Idempotency-Key is remembered: a put under a key whose object is younger than this is a
 * retry and is dropped; after it (or once the object is deleted) the key may create a new object. A
 * constant, not a setting, because every replica must decide the same way when applying the log.
 */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;

function keySlot(owner: string, key: string): string {
  return `${owner}\0${key}`;
}

interface ManifestObject extends ObjectMeta {
  offset: number;
}

export interface SnapshotManifest {
  index: number;
  term: number;
  conf: ConfState;
  members: [NodeId, string][];
  /** Ids removed from the cluster and not added again (absent in snapshots of older versions). */
  removed?: NodeId[];
  objects: ManifestObject[];
}

export class SnapshotFormatError extends Error {
  readonly code = 'corrupt_snapshot';
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFormatError';
  }
}

const MAGIC = Buffer.from('STEGOSNP', 'ascii');
const VERSION = 1;
const HEADER_BYTES = MAGIC.length + 8;
/** Snapshot streaming batches small objects and splits big ranges into chunks of this size. */
const CHUNK_BYTES = 1 << 20;
export const OBJECT_ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * One open read handle on a snapshot file. Readers take a reference for the duration of a read, so a
 * file superseded (and perhaps already unlinked by snapshot retention) stays readable through its open
 * descriptor until the last pending read finishes; only then is the handle closed.
 */
class SnapshotFile {
  private refs = 0;
  private superseded = false;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(file: string): Promise<SnapshotFile> {
    return new SnapshotFile(file, await fs.open(file, 'r'));
  }

  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    this.closeIfUnused();
  }

  supersede(): void {
    this.superseded = true;
    this.closeIfUnused();
  }

  /** Reads exactly `length` bytes at `position` (call between acquire and release). */
  async readExactly(position: number, length: number): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafe(length), position);
  }

  /** Fills `buf` from `position` (call between acquire and release); returns it. */
  async readInto(buf: Buffer, position: number): Promise<Buffer> {
    let done = 0;
    while (done < buf.length) {
      const { bytesRead } = await this.handle.read(buf, done, buf.length - done, position + done);
      if (bytesRead === 0) throw new SnapshotFormatError(`${this.path}: unexpected end of file at ${position + done}`);
      done += bytesRead;
    }
    return buf;
  }

  async inode(): Promise<number> {
    return (await this.handle.stat()).ino;
  }

  private closeIfUnused(): void {
    if (this.superseded && this.refs === 0) void this.handle.close().catch(() => undefined);
  }
}

/** Where an object's bytes are: the applied command's buffer, or a range of a snapshot file. */
type Location = { bytes: Uint8Array } | { file: SnapshotFile; offset: number };

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

interface Capture {
  key: string;
  /** Store generation at capture time: a restore in between makes the capture stale. */
  generation: number;
  /** Inode of the file written: the committed file is another one only if its (index, term) was already published. */
  ino: number;
  /** Where the object bytes start in the file written. */
  dataStart: number;
  records: StoredObject[];
  offsets: number[];
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
  /** The newest snapshot file objects point into (undefined until the first snapshot is loaded). */
  private backing: SnapshotFile | undefined;
  /** Bumped by every restore: captures and switches from before it no longer apply. */
  private generation = 0;
  /** The last snapshot written, waiting for its commit to switch objects onto the committed file. */
  private written: Capture | undefined;
  private switching: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor() {}

  /**
   * `legacyObjectsDir`: the one-file-per-object directory of earlier versions; nothing reads it any
   * more (the snapshot and the log hold every object), so it is removed.
   */
  static async open(opts: { legacyObjectsDir?: string } = {}): Promise<ObjectStore> {
    if (opts.legacyObjectsDir) await fs.rm(opts.legacyObjectsDir, { recursive: true, force: true });
    return new ObjectStore();
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

  /** The snapshot file objects are read from, if any. */
  get backingFile(): string | undefined {
    return this.backing?.path;
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
   * per piece from the snapshot file, or views of the in-memory command buffer), one piece per `next()`:
   * a slow reader holds about one piece, not the object. The snapshot file stays open for this reader
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
        // the bytes leave with the next snapshot, which no longer lists the object
        const rec = this.objects.get(cmd.id);
        if (!rec) return undefined;
        this.objects.delete(cmd.id);
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
    this.objects.set(rec.meta.id, rec);
    const { owner, idempotencyKey } = rec.meta;
    if (owner === undefined) return;
    this.ownerBytes.set(owner, this.bytesOwnedBy(owner) + rec.meta.size);
    if (idempotencyKey === undefined) return;
    const slot = keySlot(owner, idempotencyKey);
    const prior = this.objects.get(this.keyIndex.get(slot) ?? '');
    if (!prior || prior.meta.createdAt <= rec.meta.createdAt) this.keyIndex.set(slot, rec.meta.id);
  }

  /** Resolves once a snapshot switch in progress is done (no object I/O is ever pending otherwise). */
  async flush(): Promise<void> {
    await this.switching;
  }

  /** Closes the snapshot read handle once pending reads finish (node shutdown). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    this.backing?.supersede();
    this.backing = undefined;
  }

  /**
   * Writes a snapshot of the state as it is *now* (the caller calls this right after applying
   * `meta.index`, before applying anything else). Returns the number of bytes written. Once the file is
   * committed, call `snapshotCommitted` so the objects move from memory onto it.
   *
   * It runs beside consensus on the same event loop, so no step may hold the loop for long. Only the
   * capture is synchronous: the records in apply order, their locations and a reference on every
   * snapshot file they point into, O(objects) without sorting or serialising (objects are immutable, so
   * the bytes need no copy). The rest runs a few milliseconds at a time: each object's manifest entry is
   * serialised once in its lifetime (see StoredObject.entry), the manifest is assembled a chunk at a
   * time into one reused buffer, and object bytes go to the file through the same buffer (large objects
   * straight from the buffers that hold them), as do bytes still in an older snapshot file. Nothing
   * proportional to the store is allocated per snapshot beyond the capture.
   */
  async writeSnapshot(file: string, meta: SnapshotMeta): Promise<number> {
    const generation = this.generation;
    const records = [...this.objects.values()];
    const locs = records.map((r) => r.loc);
    const members = [...this.memberAddrs.entries()];
    const removed = [...this.removedIds].sort();
    const files = new Set<SnapshotFile>();
    for (const loc of locs) if ('file' in loc) files.add(loc.file);
    for (const f of files) f.acquire();
    let ino: number;
    let dataStart: number;
    const offsets = new Array<number>(records.length);
    let offset = 0;
    try {
      const base: Omit<SnapshotManifest, 'objects'> = { index: meta.index, term: meta.term, conf: meta.conf, members, removed };
      const open = Buffer.from(`${JSON.stringify(base).slice(0, -1)},"objects":[`, 'utf8');
      // first pass: entries, offsets and the manifest's length (the header states it before the manifest)
      let manifestBytes = open.length + MANIFEST_CLOSE.length;
      const slice = new TimeSlice();
      for (let i = 0; i < records.length; i++) {
        if ((i & 255) === 0) await slice.maybeYield();
        const r = records[i]!;
        const entry = (r.entry ??= manifestEntry(r.meta));
        offsets[i] = offset;
        manifestBytes += entry.length + String(offset).length + (i > 0 ? 2 : 1); // `,` before, `}` after
        offset += r.meta.size;
      }
      dataStart = HEADER_BYTES + manifestBytes;
      const head = Buffer.alloc(HEADER_BYTES);
      MAGIC.copy(head, 0);
      head.writeUInt32BE(VERSION, MAGIC.length);
      head.writeUInt32BE(manifestBytes, MAGIC.length + 4);
      ino = await writeSynced(file, snapshotPieces(head, open, records, offsets, locs), dataStart + offset);
    } finally {
      for (const f of files) f.release();
    }
    this.written = { key: snapKey(meta), generation, ino, dataStart, records, offsets };
    return dataStart + offset;
  }

  /**
   * The snapshot last written for `meta` is committed at `file` (its final path): objects it covers
   * that are still current move onto it and their in-memory bytes are dropped; objects applied since
   * stay in memory. Every snapshot-resident object then points into this newest file, so older snapshot
   * files (which retention deletes) are no longer referenced, except by reads still in flight.
   */
  async snapshotCommitted(file: string, meta: SnapshotMeta): Promise<void> {
    const capture = this.written;
    if (!capture || capture.key !== snapKey(meta)) return;
    this.written = undefined;
    const run = this.switching.then(() => this.switchTo(file, capture));
    this.switching = run.catch(() => undefined);
    await run;
  }

  private async switchTo(file: string, capture: Capture): Promise<void> {
    if (capture.generation !== this.generation || this.closed) return;
    const next = await SnapshotFile.open(file);
    let dataStart = capture.dataStart;
    let offsets = capture.offsets;
    try {
      // E returns the already published copy when the same (index, term) exists; its layout may differ
      if ((await next.inode()) !== capture.ino) ({ dataStart, offsets } = await layoutFromFile(file, capture.records));
    } catch (e) {
      next.supersede();
      throw e;
    }
    if (capture.generation !== this.generation || this.closed) {
      next.supersede();
      return;
    }
    // a slice at a time, like the capture; the previous file stays open until every object moved
    const slice = new TimeSlice();
    for (let i = 0; i < capture.records.length; i++) {
      if ((i & 255) === 0 && (await slice.maybeYield())) {
        if (capture.generation !== this.generation || this.closed) {
          next.supersede();
          return;
        }
      }
      const rec = capture.records[i]!;
      if (this.objects.get(rec.meta.id) !== rec || offsets[i]! < 0) continue;
      rec.loc = { file: next, offset: dataStart + offsets[i]! };
    }
    this.backing?.supersede();
    this.backing = next;
  }

  /** Replaces the whole state with the snapshot's (install from the leader). Returns its manifest. */
  async restore(file: string): Promise<SnapshotManifest> {
    return this.loadFromSnapshot(file);
  }

  /**
   * Loads a snapshot's manifest (not its bytes): every object points into the file, which becomes the
   * store's backing file. Used at start and for installs from the leader.
   */
  async loadFromSnapshot(file: string): Promise<SnapshotManifest> {
    const { manifest, dataStart } = await readManifest(file);
    const next = await SnapshotFile.open(file);
    this.generation++;
    this.written = undefined;
    this.objects = new Map();
    this.keyIndex = new Map();
    this.ownerBytes = new Map();
    for (const o of manifest.objects) this.insert({ meta: stripOffset(o), loc: { file: next, offset: dataStart + o.offset } });
    this.memberAddrs = new Map(manifest.members);
    this.removedIds = new Set(Array.isArray(manifest.removed) ? manifest.removed.filter((id) => typeof id === 'string') : []);
    this.backing?.supersede();
    this.backing = next;
    return manifest;
  }

  private sortedRecords(): StoredObject[] {
    return [...this.objects.values()].sort((a, b) => a.meta.createdAt - b.meta.createdAt || a.meta.id.localeCompare(b.meta.id));
  }
}

const MANIFEST_CLOSE = Buffer.from(']}', 'utf8');

/** `{"id":…,"offset":` of the entry `{ ...meta, offset }`: followed by the offset's digits and `}`. */
function manifestEntry(meta: ObjectMeta): Buffer {
  return Buffer.from(`${JSON.stringify(meta).slice(0, -1)},"offset":`, 'utf8');
}

/**
 * Sequential pieces of one object. For an object in a snapshot file it holds a reference on the file
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

  /** Releases the snapshot file (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if ('file' in this.loc) this.loc.file.release();
  }
}

/** Offsets of `records` in a committed file other than the one we wrote (-1: not in it). */
async function layoutFromFile(file: string, records: StoredObject[]): Promise<{ dataStart: number; offsets: number[] }> {
  const { manifest, dataStart } = await readManifest(file);
  const byId = new Map(manifest.objects.map((o) => [o.id, o]));
  const offsets = records.map((r) => {
    const o = byId.get(r.meta.id);
    return o && o.size === r.meta.size && o.sha256 === r.meta.sha256 ? o.offset : -1;
  });
  return { dataStart, offsets };
}

/** In-memory objects smaller than this are copied into the write buffer; larger ones are written in place. */
const COPY_BELOW_BYTES = 64 * 1024;

/**
 * The snapshot's bytes as groups of buffers for writev: header and manifest (assembled a chunk at a time
 * into one buffer), then every object. Small objects in memory are copied into that buffer (a writev of
 * thousands of 1 KiB pieces cost more CPU on the event loop than the copy), large ones are passed as they
 * are; runs of bytes in an older snapshot file are read a chunk at a time into the same buffer. Reusing
 * it is safe because the writer finishes writing a group before it asks for the next. The consumer's writes between groups are the
 * event-loop turns that keep each synchronous step to one chunk's work.
 */
async function* snapshotPieces(head: Buffer, open: Buffer, records: StoredObject[], offsets: number[], locs: Location[]): AsyncGenerator<Buffer[]> {
  const scratch = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  yield [head, open];
  let used = 0;
  for (let i = 0; i < records.length; i++) {
    const entry = records[i]!.entry!;
    const tail = `${offsets[i]!}}`;
    const need = 1 + entry.length + tail.length;
    if (used + need > scratch.length) {
      yield [scratch.subarray(0, used)];
      used = 0;
    }
    if (need > scratch.length) {
      // an entry larger than the buffer (metadata is bounded far below it, but stay correct)
      yield [Buffer.from(i > 0 ? ',' : ''), entry, Buffer.from(tail)];
      continue;
    }
    if (i > 0) scratch[used++] = 0x2c; // ','
    used += entry.copy(scratch, used);
    used += scratch.write(tail, used, 'latin1');
  }
  if (used > 0) yield [scratch.subarray(0, used)];
  yield [MANIFEST_CLOSE];

  // small objects are copied into the buffer (one write per chunk); large ones are written from where they are
  used = 0;
  for (let i = 0; i < locs.length; ) {
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
    // objects of one snapshot file lie back to back in the same order: copy runs of them at once
    const start = loc.offset;
    let end = start + records[i]!.meta.size;
    i++;
    for (let next = locs[i]; next && 'file' in next && next.file === loc.file && next.offset === end; next = locs[i]) {
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
    for await (let group of groups) {
      let left = 0;
      for (const b of group) left += b.length;
      while (left > 0) {
        const { bytesWritten } = await fh.writev(group, position);
        position += bytesWritten;
        unsynced += bytesWritten;
        left -= bytesWritten;
        if (left > 0) group = dropWritten(group, bytesWritten);
      }
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

/** What is left of `group` after a short writev of `n` bytes. */
function dropWritten(group: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (n >= group[i]!.length) n -= group[i++]!.length;
  return [group[i]!.subarray(n), ...group.slice(i + 1)];
}

function snapKey(meta: SnapshotMeta): string {
  return `${meta.index}/${meta.term}`;
}

function stripOffset(o: ManifestObject): ObjectMeta {
  const { offset: _offset, ...meta } = o;
  return meta;
}

export async function readManifest(file: string): Promise<{ manifest: SnapshotManifest; dataStart: number }> {
  const fh = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(head, 0, HEADER_BYTES, 0);
    if (bytesRead < HEADER_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new SnapshotFormatError(`${file} is not a StegoCluster snapshot`);
    }
    const version = head.readUInt32BE(MAGIC.length);
    if (version !== VERSION) throw new SnapshotFormatError(`${file}: unsupported snapshot version ${version}`);
    const len = head.readUInt32BE(MAGIC.length + 4);
    const json = Buffer.alloc(len);
    const r = await fh.read(json, 0, len, HEADER_BYTES);
    if (r.bytesRead !== len) throw new SnapshotFormatError(`${file}: manifest truncated`);
    const manifest = JSON.parse(json.toString('utf8')) as SnapshotManifest;
    const dataStart = HEADER_BYTES + len;
    const dataBytes = manifest.objects.reduce((n, o) => n + o.size, 0);
    const st = await fh.stat();
    if (st.size < dataStart + dataBytes) {
      throw new SnapshotFormatError(`${file}: data truncated (${st.size} < ${dataStart + dataBytes} bytes)`);
    }
    return { manifest, dataStart };
  } finally {
    await fh.close();
  }
}
