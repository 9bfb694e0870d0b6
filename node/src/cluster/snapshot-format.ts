// The snapshot file format (docs/cluster.md, "Commands and the snapshot format"):
//
//   v1 (self-contained; what a follower is sent when it holds none of the objects, and what older
//   versions wrote):
//     "STEGOSNP" | u32 BE 1 | u32 BE manifest length | manifest JSON | object bytes back to back
//   v3 (a delta; only ever sent to a follower, which turns it into a v2 file before installing it):
//     "STEGOSNP" | u32 BE 3 | u32 BE manifest length | u64 BE held-through index | manifest JSON
//     | object bytes back to back
//   v2 (incremental; only ever written to the local disk):
//     "STEGOSNP" | u32 BE 2 | u32 BE pack list length | u32 BE manifest length | pack list JSON | manifest JSON
//     | object bytes back to back
//
// A v2 manifest object without `pack` is in this file's data section at `offset`; one with `pack: k` is
// at byte `offset` of the file of pack `packs[k]` (an earlier snapshot's data file, see packs.ts). The
// pack list sits before the manifest so that garbage collection can read which packs a snapshot needs
// without parsing a manifest of tens of MB. A v3 manifest lists every object too, but one with
// `held: true` has no bytes in the file: the follower it was made for already holds that object (same id
// and sha256), as it had applied the entry that created it (ObjectStore.snapshotSource).
import fs from 'node:fs/promises';
import type { ConfState, NodeId } from '../raft/types.js';
import { readSliced } from '../storage/sliced-io.js';
import { TimeSlice } from '../storage/yielding.js';

/** An object's metadata, as the store serves it and as the manifest records it. */
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

export interface ManifestObject extends ObjectMeta {
  offset: number;
  /** v2 only: index into the snapshot's pack list; absent when the bytes are in the file itself. */
  pack?: number;
  /** v3 only: the receiver already holds the object; its bytes are not in the file (`offset` is 0). */
  held?: true;
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

const PACK_NAME = /^\d{20}-\d{20}$/;
const pad = (n: number) => n.toString().padStart(20, '0');

/** The name of the pack a snapshot's data file becomes once committed (packs.ts). */
export function packName(index: number, term: number): string {
  return `${pad(index)}-${pad(term)}`;
}

/**
 * The index of the snapshot whose data file a pack is. A snapshot at index i holds only objects that
 * entries up to i created, so a member that has applied i holds every object of the pack still current.
 */
export function packIndex(name: string): number {
  return Number(name.slice(0, 20));
}

export function isPackName(name: string): boolean {
  return PACK_NAME.test(name);
}

const MAGIC = Buffer.from('STEGOSNP', 'ascii');
const SELF_CONTAINED = 1;
const INCREMENTAL = 2;
const DELTA = 3;
const V1_HEADER_BYTES = MAGIC.length + 8;
const V2_HEADER_BYTES = MAGIC.length + 12;
const DELTA_HEADER_BYTES = V1_HEADER_BYTES + 8;

/** The fixed part of a file, enough to find its sections. */
export interface SnapshotHead {
  version: number;
  /** Names of the packs the manifest refers to (always empty for v1). */
  packs: string[];
  manifestStart: number;
  manifestBytes: number;
  dataStart: number;
  /** v3 only: the index the receiver had applied through when it was made (objects held). */
  heldThrough?: number;
}

export function v1Header(manifestBytes: number): Buffer {
  return flatHeader(SELF_CONTAINED, manifestBytes);
}

/** The header of a delta (v3): v1's, then the index the receiver holds objects through. */
export function deltaHeader(manifestBytes: number, heldThrough: number): Buffer {
  const head = flatHeader(DELTA, manifestBytes, DELTA_HEADER_BYTES);
  head.writeBigUInt64BE(BigInt(heldThrough), V1_HEADER_BYTES);
  return head;
}

function flatHeader(version: number, manifestBytes: number, bytes = V1_HEADER_BYTES): Buffer {
  const head = Buffer.alloc(bytes);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(version, MAGIC.length);
  head.writeUInt32BE(manifestBytes, MAGIC.length + 4);
  return head;
}

/** The v2 header followed by the pack list: everything before the manifest. */
export function v2Header(packs: string[], manifestBytes: number): Buffer {
  const list = Buffer.from(JSON.stringify(packs), 'utf8');
  const head = Buffer.alloc(V2_HEADER_BYTES + list.length);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(INCREMENTAL, MAGIC.length);
  head.writeUInt32BE(list.length, MAGIC.length + 4);
  head.writeUInt32BE(manifestBytes, MAGIC.length + 8);
  list.copy(head, V2_HEADER_BYTES);
  return head;
}

/** `{"index":…,…,"objects":[`: the manifest up to its first object entry. */
export function manifestOpen(base: Omit<SnapshotManifest, 'objects'>): Buffer {
  return Buffer.from(`${JSON.stringify(base).slice(0, -1)},"objects":[`, 'utf8');
}

export const MANIFEST_CLOSE = Buffer.from(']}', 'utf8');

/** `{"id":…,"offset":` of the entry `{ ...meta, offset }`: followed by the offset's digits and a tail. */
export function manifestEntry(meta: ObjectMeta): Buffer {
  return Buffer.from(`${JSON.stringify(meta).slice(0, -1)},"offset":`, 'utf8');
}

/** What follows an entry's `"offset":`: the offset, the pack reference if any, and the closing brace. */
export function entryTail(offset: number, pack?: number): string {
  return pack === undefined ? `${offset}}` : `${offset},"pack":${pack}}`;
}

/** What follows the `"offset":` of a v3 entry whose object the receiver holds. */
export const HELD_TAIL = '0,"held":true}';

async function readHead(fh: fs.FileHandle, file: string): Promise<SnapshotHead> {
  const head = Buffer.alloc(Math.max(V2_HEADER_BYTES, DELTA_HEADER_BYTES));
  const { bytesRead } = await fh.read(head, 0, head.length, 0);
  if (bytesRead < V1_HEADER_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotFormatError(`${file} is not a StegoCluster snapshot`);
  }
  const version = head.readUInt32BE(MAGIC.length);
  if (version === SELF_CONTAINED) {
    const manifestBytes = head.readUInt32BE(MAGIC.length + 4);
    return { version, packs: [], manifestStart: V1_HEADER_BYTES, manifestBytes, dataStart: V1_HEADER_BYTES + manifestBytes };
  }
  if (version === DELTA) {
    if (bytesRead < DELTA_HEADER_BYTES) throw new SnapshotFormatError(`${file}: header truncated`);
    const manifestBytes = head.readUInt32BE(MAGIC.length + 4);
    const heldThrough = Number(head.readBigUInt64BE(V1_HEADER_BYTES));
    return { version, packs: [], manifestStart: DELTA_HEADER_BYTES, manifestBytes, dataStart: DELTA_HEADER_BYTES + manifestBytes, heldThrough };
  }
  if (version !== INCREMENTAL) throw new SnapshotFormatError(`${file}: unsupported snapshot version ${version}`);
  if (bytesRead < V2_HEADER_BYTES) throw new SnapshotFormatError(`${file}: header truncated`);
  const listBytes = head.readUInt32BE(MAGIC.length + 4);
  const manifestBytes = head.readUInt32BE(MAGIC.length + 8);
  const list = await readExactly(fh, file, V2_HEADER_BYTES, listBytes, 'pack list');
  const packs = parsePackList(list, file);
  const manifestStart = V2_HEADER_BYTES + listBytes;
  return { version, packs, manifestStart, manifestBytes, dataStart: manifestStart + manifestBytes };
}

function parsePackList(list: Buffer, file: string): string[] {
  let packs: unknown;
  try {
    packs = JSON.parse(list.toString('utf8'));
  } catch {
    throw new SnapshotFormatError(`${file}: pack list unreadable`);
  }
  if (!Array.isArray(packs) || !packs.every((p) => typeof p === 'string' && isPackName(p))) {
    throw new SnapshotFormatError(`${file}: invalid pack list`);
  }
  return packs as string[];
}

/** The index a delta (v3) was made against, or undefined for any other file: reads only the header. */
export async function readDeltaBase(file: string): Promise<number | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    return (await readHead(fh, file)).heldThrough;
  } finally {
    await fh.close();
  }
}

/** The names of the packs a snapshot file refers to (none for v1): reads only the header. */
export async function readPackList(file: string): Promise<string[]> {
  const fh = await fs.open(file, 'r');
  try {
    return (await readHead(fh, file)).packs;
  } finally {
    await fh.close();
  }
}

export interface ReadSnapshot extends SnapshotHead {
  manifest: SnapshotManifest;
}

/**
 * Reads and checks a snapshot's header and manifest (not its object bytes): the data section must hold
 * every object the file holds itself, and every pack reference must name a listed pack.
 *
 * It runs on the consensus thread (start-up, installs from the leader) and a manifest may be ~100 MB of
 * JSON, so it is never parsed in one go: the manifest is read MANIFEST_CHUNK bytes at a time and a
 * scanner of JSON structure (ManifestScanner) cuts the `objects` array into its entries, which are parsed
 * in batches of about ENTRY_BATCH bytes, a TimeSlice at a time. Everything else in the manifest (index,
 * term, conf, members, removed: small) is parsed as one JSON text with `objects` left empty.
 */
export async function readManifest(file: string): Promise<ReadSnapshot> {
  const fh = await fs.open(file, 'r');
  try {
    const head = await readHead(fh, file);
    const objects: ManifestObject[] = [];
    let dataEnd = 0;
    const check = (value: unknown): void => {
      const o = manifestObject(value, file);
      if (o.held) {
        if (head.version !== DELTA) throw new SnapshotFormatError(`${file}: object ${o.id} is marked held outside a delta`);
      } else if (o.pack === undefined) dataEnd = Math.max(dataEnd, o.offset + o.size);
      else if (head.version !== INCREMENTAL || o.pack >= head.packs.length) {
        throw new SnapshotFormatError(`${file}: object ${o.id} refers to pack ${o.pack}, which the file does not list`);
      }
      objects.push(o);
    };
    const scanner = new ManifestScanner(file, (batch) => {
      let entries: unknown;
      try {
        entries = JSON.parse(`[${batch}]`);
      } catch {
        throw new SnapshotFormatError(`${file}: manifest entry unreadable`);
      }
      for (const e of entries as unknown[]) check(e);
    });
    const chunk = Buffer.alloc(Math.min(MANIFEST_CHUNK, head.manifestBytes));
    const slice = new TimeSlice();
    for (let at = 0; at < head.manifestBytes; ) {
      const want = Math.min(chunk.length, head.manifestBytes - at);
      const { bytesRead } = await fh.read(chunk, 0, want, head.manifestStart + at);
      if (bytesRead === 0) throw new SnapshotFormatError(`${file}: manifest truncated`);
      at += bytesRead;
      await scanner.push(chunk.subarray(0, bytesRead), slice);
    }
    const manifest = scanner.end();
    manifest.objects = objects;
    const st = await fh.stat();
    if (st.size < head.dataStart + dataEnd) {
      throw new SnapshotFormatError(`${file}: data truncated (${st.size} < ${head.dataStart + dataEnd} bytes)`);
    }
    return { ...head, manifest };
  } finally {
    await fh.close();
  }
}

/** How much of a manifest is read at a time. */
const MANIFEST_CHUNK = 1 << 20;
/** About how many bytes of object entries are handed to one JSON.parse (well under a millisecond). */
const ENTRY_BATCH = 64 << 10;
/** Bytes scanned between two chances to yield, when no batch completes (a long entry or header). */
const SCAN_STEP = 256 << 10;

const isNonNegativeInteger = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isOptionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';

/** An object entry as the store reads it, or SnapshotFormatError. */
function manifestObject(value: unknown, file: string): ManifestObject {
  const o = value as Partial<ManifestObject> | null;
  if (
    typeof o !== 'object' || o === null || Array.isArray(o) ||
    typeof o.id !== 'string' || typeof o.sha256 !== 'string' || !isNonNegativeInteger(o.size) ||
    typeof o.contentType !== 'string' || typeof o.createdAt !== 'number' || !isNonNegativeInteger(o.offset) ||
    !(o.pack === undefined || isNonNegativeInteger(o.pack)) || !(o.held === undefined || o.held === true) ||
    !isOptionalString(o.owner) || !isOptionalString(o.idempotencyKey) || !isOptionalString(o.fingerprint)
  ) {
    throw new SnapshotFormatError(`${file}: invalid manifest entry ${JSON.stringify(value)?.slice(0, 200)}`);
  }
  return o as ManifestObject;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COLON = 0x3a;
const COMMA = 0x2c;
const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
const OBJECTS_KEY = Buffer.from('objects', 'ascii');

/**
 * Cuts a manifest's JSON text, fed a piece at a time, into the entries of its top-level `objects` array
 * (handed to `onBatch` as the text of several entries joined by commas) and the rest of the manifest,
 * kept as JSON text with `"objects":[]` and parsed by end(). It follows the structure only as far as
 * needed to find those boundaries: string and escape state (a `{`, `}` or `"` inside a string is text),
 * nesting depth, and between entries the separators themselves (an element of `objects` that is not an
 * object, a missing or extra comma, is refused). The syntax inside an entry and of the rest is left to
 * JSON.parse. UTF-8 is scanned as bytes: no byte of a multi-byte sequence is ASCII.
 */
class ManifestScanner {
  /** Nesting depth of objects and arrays; the manifest itself is depth 1, `objects` 2, an entry 3. */
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Inside `objects`, between entries: what may come next. */
  private expect: 'entry' | 'entry-or-end' | 'comma-or-end' = 'entry-or-end';
  private inObjects = false;
  private objectsSeen = false;
  /** The manifest outside `objects`, as JSON text. */
  private rest: Buffer[] = [];
  /** A depth-1 string in progress or just closed: its length and whether it could be `"objects"`. */
  private keyLength = 0;
  private keyMatches = false;
  /** A depth-1 key `"objects"` followed by `:`: its value is the array to stream. */
  private state: 'none' | 'key' | 'colon' = 'none';
  /** Where the current piece starts in the manifest. */
  private pieceStart = 0;
  /** Where the batch of entries being collected starts (the `{` of its first entry), or -1. */
  private batchStart = -1;
  /** Where its last complete entry ends, or -1 while none is complete. */
  private batchEnd = -1;
  /** The batch's bytes from earlier pieces (the current one may be reused once push resolves). */
  private carry: Buffer[] = [];

  constructor(
    private readonly file: string,
    private readonly onBatch: (entries: string) => void,
  ) {}

  /** Scans the next piece of the manifest (it may be reused once this resolves), yielding as `slice` says. */
  async push(piece: Buffer, slice: TimeSlice): Promise<void> {
    for (let from = 0; from < piece.length; ) {
      const to = Math.min(piece.length, from + SCAN_STEP);
      this.scan(piece, from, to);
      from = to;
      await slice.maybeYield();
    }
    if (this.batchStart >= 0) this.carry.push(Buffer.from(piece.subarray(Math.max(0, this.batchStart - this.pieceStart))));
    this.pieceStart += piece.length;
  }

  /** The manifest without its objects (`objects` is empty), once every piece was pushed. */
  end(): SnapshotManifest {
    if (this.depth > 0 || this.inString || this.inObjects) throw new SnapshotFormatError(`${this.file}: manifest truncated`);
    if (!this.objectsSeen) throw new SnapshotFormatError(`${this.file}: manifest lists no objects`);
    let manifest: unknown;
    try {
      manifest = JSON.parse(Buffer.concat(this.rest).toString('utf8'));
    } catch {
      throw new SnapshotFormatError(`${this.file}: manifest unreadable`);
    }
    const m = manifest as Partial<SnapshotManifest> | null;
    if (typeof m !== 'object' || m === null || !Number.isSafeInteger(m.index) || !Number.isSafeInteger(m.term) || typeof m.conf !== 'object' || m.conf === null || !Array.isArray(m.members)) {
      throw new SnapshotFormatError(`${this.file}: invalid manifest`);
    }
    return m as SnapshotManifest;
  }

  private scan(piece: Buffer, from: number, to: number): void {
    let restFrom = this.inObjects ? -1 : from;
    let i = from;
    while (i < to) {
      if (this.inObjects) {
        i = this.scanObjects(piece, i, to);
        if (!this.inObjects) restFrom = i; // its `]` is part of the rest, scanned below
        continue;
      }
      const c = piece[i]!;
      const continued = this.inString;
      if (this.stringByte(c)) {
        if (continued) {
          if (this.depth === 1) this.keyCharacter(c);
        } else {
          if (this.depth === 1) {
            this.keyLength = 0;
            this.keyMatches = true;
          }
          this.state = 'none';
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (c === OPEN_BRACKET && this.depth === 1 && this.state === 'colon') {
          if (this.objectsSeen) throw new SnapshotFormatError(`${this.file}: manifest lists objects twice`);
          this.objectsSeen = this.inObjects = true;
          this.expect = 'entry-or-end';
          this.rest.push(Buffer.from(piece.subarray(restFrom, i + 1)));
          restFrom = -1;
        }
        this.depth++;
        this.state = 'none';
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        this.depth--;
        this.state = 'none';
      } else if (c === COLON && this.depth === 1 && this.state === 'key') {
        this.state = 'colon';
      } else if (!isSpace(c)) {
        this.state = 'none';
      }
      i++;
    }
    if (restFrom >= 0 && restFrom < to) this.rest.push(Buffer.from(piece.subarray(restFrom, to)));
  }

  /**
   * Follows JSON strings, for both scans: true when `c` is part of a string (its quotes included), which
   * makes it nothing structural; false when the caller has to look at it.
   */
  private stringByte(c: number): boolean {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === BACKSLASH) this.escaped = true;
      else if (c === QUOTE) this.inString = false;
      return true;
    }
    if (c !== QUOTE) return false;
    this.inString = true;
    return true;
  }

  /** Follows a depth-1 string, which closed if `inString` is now false: was it the key `"objects"`? */
  private keyCharacter(c: number): void {
    if (this.inString) {
      if (this.keyLength >= OBJECTS_KEY.length || OBJECTS_KEY[this.keyLength] !== c) this.keyMatches = false;
      this.keyLength++;
    } else {
      this.state = this.keyMatches && this.keyLength === OBJECTS_KEY.length ? 'key' : 'none';
    }
  }

  /**
   * Scans inside `objects` from `i` until `to` or the array's closing `]` (left for scan()); returns
   * where it stopped. Complete entries are handed over about ENTRY_BATCH bytes at a time, as the text
   * from the first one's `{` to the last one's `}` (the separators between them were checked here).
   */
  private scanObjects(piece: Buffer, i: number, to: number): number {
    for (; i < to; i++) {
      const c = piece[i]!;
      if (this.depth > 2) {
        if (this.stringByte(c)) {
          // inside an entry's string: nothing structural
        } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          this.depth++;
        } else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --this.depth === 2) {
          this.batchEnd = this.pieceStart + i + 1;
          this.expect = 'comma-or-end';
          if (this.batchEnd - this.batchStart >= ENTRY_BATCH) this.flush(piece);
        }
      } else if (isSpace(c)) {
        // between entries
      } else if (c === OPEN_BRACE && this.expect !== 'comma-or-end') {
        this.depth++;
        if (this.batchStart < 0) this.batchStart = this.pieceStart + i;
      } else if (c === COMMA && this.expect === 'comma-or-end') {
        this.expect = 'entry';
      } else if (c === CLOSE_BRACKET && this.expect !== 'entry') {
        this.flush(piece);
        this.inObjects = false;
        return i;
      } else {
        throw new SnapshotFormatError(`${this.file}: manifest objects unreadable at byte ${this.pieceStart + i}`);
      }
    }
    return i;
  }

  /** Hands over the complete entries collected (all of them: flush is called right after one ends, or at `]`). */
  private flush(piece: Buffer): void {
    if (this.batchEnd < 0) return;
    const end = this.batchEnd - this.pieceStart;
    let text: string;
    if (this.carry.length === 0) {
      text = piece.toString('utf8', this.batchStart - this.pieceStart, end);
    } else {
      const bytes = Buffer.concat([...this.carry, piece.subarray(0, Math.max(0, end))]);
      text = bytes.toString('utf8', 0, this.batchEnd - this.batchStart);
    }
    this.carry = [];
    this.batchStart = this.batchEnd = -1;
    this.onBatch(text);
  }
}

async function readExactly(fh: fs.FileHandle, file: string, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const bytesRead = await readSliced(fh, buf, position);
  if (bytesRead !== length) throw new SnapshotFormatError(`${file}: ${what} truncated`);
  return buf;
}
