// The snapshot file format (docs/cluster.md, "Commands and the snapshot format"):
//
//   v1 (self-contained; what a follower is always sent, and what older versions wrote):
//     "STEGOSNP" | u32 BE 1 | u32 BE manifest length | manifest JSON | object bytes back to back
//   v2 (incremental; only ever written to the local disk):
//     "STEGOSNP" | u32 BE 2 | u32 BE pack list length | u32 BE manifest length | pack list JSON | manifest JSON
//     | object bytes back to back
//
// A v2 manifest object without `pack` is in this file's data section at `offset`; one with `pack: k` is
// at byte `offset` of the file of pack `packs[k]` (an earlier snapshot's data file, see packs.ts). The
// pack list sits before the manifest so that garbage collection can read which packs a snapshot needs
// without parsing a manifest of tens of MB.
import fs from 'node:fs/promises';
import type { ConfState, NodeId } from '../raft/types.js';

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

export function isPackName(name: string): boolean {
  return PACK_NAME.test(name);
}

const MAGIC = Buffer.from('STEGOSNP', 'ascii');
const SELF_CONTAINED = 1;
const INCREMENTAL = 2;
const V1_HEADER_BYTES = MAGIC.length + 8;
const V2_HEADER_BYTES = MAGIC.length + 12;

/** The fixed part of a file, enough to find its sections. */
export interface SnapshotHead {
  version: number;
  /** Names of the packs the manifest refers to (always empty for v1). */
  packs: string[];
  manifestStart: number;
  manifestBytes: number;
  dataStart: number;
}

export function v1Header(manifestBytes: number): Buffer {
  const head = Buffer.alloc(V1_HEADER_BYTES);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(SELF_CONTAINED, MAGIC.length);
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

async function readHead(fh: fs.FileHandle, file: string): Promise<SnapshotHead> {
  const head = Buffer.alloc(V2_HEADER_BYTES);
  const { bytesRead } = await fh.read(head, 0, V2_HEADER_BYTES, 0);
  if (bytesRead < V1_HEADER_BYTES || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SnapshotFormatError(`${file} is not a StegoCluster snapshot`);
  }
  const version = head.readUInt32BE(MAGIC.length);
  if (version === SELF_CONTAINED) {
    const manifestBytes = head.readUInt32BE(MAGIC.length + 4);
    return { version, packs: [], manifestStart: V1_HEADER_BYTES, manifestBytes, dataStart: V1_HEADER_BYTES + manifestBytes };
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
 */
export async function readManifest(file: string): Promise<ReadSnapshot> {
  const fh = await fs.open(file, 'r');
  try {
    const head = await readHead(fh, file);
    const json = await readExactly(fh, file, head.manifestStart, head.manifestBytes, 'manifest');
    const manifest = JSON.parse(json.toString('utf8')) as SnapshotManifest;
    let dataEnd = 0;
    for (const o of manifest.objects) {
      if (o.pack === undefined) dataEnd = Math.max(dataEnd, o.offset + o.size);
      else if (head.version !== INCREMENTAL || !Number.isInteger(o.pack) || o.pack < 0 || o.pack >= head.packs.length) {
        throw new SnapshotFormatError(`${file}: object ${o.id} refers to pack ${o.pack}, which the file does not list`);
      }
    }
    const st = await fh.stat();
    if (st.size < head.dataStart + dataEnd) {
      throw new SnapshotFormatError(`${file}: data truncated (${st.size} < ${head.dataStart + dataEnd} bytes)`);
    }
    return { ...head, manifest };
  } finally {
    await fh.close();
  }
}

async function readExactly(fh: fs.FileHandle, file: string, position: number, length: number, what: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new SnapshotFormatError(`${file}: ${what} truncated`);
  return buf;
}
