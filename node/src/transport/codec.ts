// Binary frames of the raft link.
//
//   [u8 version][u8 kind][u32 BE header length][header: UTF-8 JSON][blobs]
//
// The header is the frame object (minus its kind) as JSON, with every Uint8Array anywhere in it
// replaced by the marker {"$b": byteLength}; the bytes themselves follow the header, concatenated in
// the order the markers appear in the JSON text. This keeps payloads (entry data, snapshot chunks, RPC
// bodies) out of JSON and lets the raft message gain fields without a codec change.
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { CodecError } from './errors.js';
import { MESSAGE_TYPES, type Message, type MessageType } from '../raft/message.js';

const MESSAGE_TYPE_SET = new Set<MessageType>(MESSAGE_TYPES);
const ENTRY_TYPES = new Set(['normal', 'conf', 'noop']);

export const WIRE_VERSION = 1;
const PREAMBLE_BYTES = 6;

export type Frame =
  | { t: 'raft'; msg: Message }
  | { t: 'req'; id: number; kind: string; body: Uint8Array }
  | { t: 'res'; id: number; body: Uint8Array }
  | { t: 'err'; id: number; code: string; message: string }
  | { t: 'snapOffer'; sid: string; meta: SnapshotMeta; size: number }
  | { t: 'snapAccept'; sid: string; offset: number }
  | { t: 'snapChunk'; sid: string; offset: number; data: Uint8Array }
  | { t: 'snapAck'; sid: string; offset: number }
  | { t: 'snapEnd'; sid: string; sha256: string }
  | { t: 'snapDone'; sid: string; ok: boolean; code?: string; message?: string }
  | { t: 'challenge'; cluster: string; id: NodeId; nonce: string }
  | { t: 'auth'; cluster: string; from: NodeId; to: NodeId; nonce: string; incarnation: string; mac: string }
  | { t: 'welcome'; incarnation: string; mac: string }
  | { t: 'deny'; code: string; message: string }
  /**
   * A slice of a large frame (see docs/transport.md, "Head-of-line blocking"); `last` completes it. The
   * first part of a frame names the frame's `total` size, so the receiver fills one buffer as parts come.
   */
  | { t: 'part'; id: number; last: boolean; data: Uint8Array; total?: number };

export type FrameKind = Frame['t'];
export type FrameOf<K extends FrameKind> = Extract<Frame, { t: K }>;

// Wire numbers are part of the format: never renumber, only append.
const KIND_CODES: Record<FrameKind, number> = {
  raft: 1,
  req: 2,
  res: 3,
  err: 4,
  snapOffer: 5,
  snapAccept: 6,
  snapChunk: 7,
  snapAck: 8,
  snapEnd: 9,
  snapDone: 10,
  challenge: 11,
  auth: 12,
  welcome: 13,
  deny: 14,
  part: 15,
};
const KIND_BY_CODE = new Map<number, FrameKind>(
  Object.entries(KIND_CODES).map(([k, c]) => [c, k as FrameKind]),
);

export function encodeFrame(frame: Frame): Buffer {
  const segments = encodeFrameSegments(frame);
  // a frame without blobs is its header buffer alone
  return segments.length === 1 ? (segments[0] as Buffer) : Buffer.concat(segments, segmentsLength(segments));
}

/**
 * The frame's bytes as segments whose concatenation is encodeFrame's output: the preamble and header in
 * a new buffer, then the blobs themselves, not copied. A large frame is sent from these in parts, so a
 * 45 MB append costs its peers a 256 KiB copy per part instead of one 45 MB copy (~80 ms of the
 * consensus loop per peer on this machine, more under load) before the first byte leaves.
 */
export function encodeFrameSegments(frame: Frame): Uint8Array[] {
  const blobs: Uint8Array[] = [];
  const { t, ...fields } = frame;
  const json = JSON.stringify(withBlobMarkers(fields, blobs));
  const headerLen = Buffer.byteLength(json, 'utf8');
  const head = Buffer.allocUnsafe(PREAMBLE_BYTES + headerLen);
  head[0] = WIRE_VERSION;
  head[1] = KIND_CODES[t];
  head.writeUInt32BE(headerLen, 2);
  head.write(json, PREAMBLE_BYTES, 'utf8');
  return [head, ...blobs.filter((b) => b.byteLength > 0)];
}

/**
 * Encodes a `part` frame into `scratch` (reused by the caller once the previous part was written) and
 * returns the bytes used, a view of `scratch`; a new buffer only if `scratch` is too small. Same bytes as
 * encodeFrame. A 45 MB append to two peers otherwise allocates 90 MB of short-lived part buffers, and
 * that external memory is what triggers the consensus thread's major GCs.
 */
export function encodePartInto(scratch: Buffer | undefined, part: FrameOf<'part'>): Buffer {
  const { t, ...fields } = part;
  const data = part.data;
  const json = JSON.stringify(withBlobMarkers(fields, []));
  const headerLen = Buffer.byteLength(json, 'utf8');
  const size = PREAMBLE_BYTES + headerLen + data.byteLength;
  const out = scratch && scratch.length >= size ? scratch.subarray(0, size) : Buffer.allocUnsafe(size);
  out[0] = WIRE_VERSION;
  out[1] = KIND_CODES[t];
  out.writeUInt32BE(headerLen, 2);
  out.write(json, PREAMBLE_BYTES, 'utf8');
  out.set(data, PREAMBLE_BYTES + headerLen);
  return out;
}

export function segmentsLength(segments: readonly Uint8Array[]): number {
  let n = 0;
  for (const s of segments) n += s.byteLength;
  return n;
}

/** Entry payload bytes of a raft message: what the per-peer in-flight cap is about (see docs/transport.md). */
export function payloadBytesOf(m: Message): number {
  let n = 0;
  for (const e of m.entries ?? []) n += e.data.byteLength;
  return n;
}

// A copy of `value` with every Uint8Array swapped for a marker (pushed to `blobs` in JSON text order).
// Done before JSON.stringify because Buffer.toJSON would otherwise expand a 1 MiB chunk into an array
// of a million numbers before any replacer saw it.
function withBlobMarkers(value: unknown, blobs: Uint8Array[]): unknown {
  if (value instanceof Uint8Array) {
    blobs.push(value);
    return { $b: value.byteLength };
  }
  if (Array.isArray(value)) return value.map((v) => withBlobMarkers(v, blobs));
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withBlobMarkers(v, blobs);
  return out;
}

export function decodeFrame(buf: Uint8Array): Frame {
  if (buf.byteLength < PREAMBLE_BYTES) throw new CodecError(`frame of ${buf.byteLength} bytes is shorter than its preamble`);
  if (buf[0] !== WIRE_VERSION) throw new CodecError(`unsupported wire version ${buf[0]} (we speak ${WIRE_VERSION})`);
  const t = KIND_BY_CODE.get(buf[1]!);
  if (t === undefined) throw new CodecError(`unknown frame kind ${buf[1]}`);
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = view.readUInt32BE(2);
  const blobStart = PREAMBLE_BYTES + headerLen;
  if (blobStart > view.length) throw new CodecError(`header length ${headerLen} exceeds the frame`);
  const fields = parseHeader(view, blobStart);
  const frame = { t, ...fields } as Frame;
  validateFrame(frame);
  return frame;
}

function parseHeader(view: Buffer, blobStart: number): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(view.toString('utf8', PREAMBLE_BYTES, blobStart));
  } catch (err) {
    throw new CodecError(`header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(parsed)) throw new CodecError('header is not a JSON object');
  const cursor = { at: blobStart };
  const header = restoreBlobs(parsed, view, cursor, 0) as Record<string, unknown>;
  if (cursor.at !== view.length) throw new CodecError(`${view.length - cursor.at} trailing bytes after the last blob`);
  return header;
}

const MAX_DEPTH = 64;

// Walks in the same property order as withBlobMarkers did (JS property order on both sides), so the
// markers meet their blobs in encoding order. A walk after a plain JSON.parse is several times faster
// than a reviver.
function restoreBlobs(value: unknown, view: Buffer, cursor: { at: number }, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth > MAX_DEPTH) throw new CodecError(`header nests deeper than ${MAX_DEPTH}`);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = restoreBlobs(value[i], view, cursor, depth + 1);
    return value;
  }
  const rec = value as Record<string, unknown>;
  if (isBlobMarker(rec)) {
    const end = cursor.at + rec.$b;
    if (end > view.length) throw new CodecError(`blob of ${rec.$b} bytes runs past the frame end`);
    const blob = new Uint8Array(view.buffer, view.byteOffset + cursor.at, rec.$b);
    cursor.at = end;
    return blob;
  }
  for (const k of Object.keys(rec)) rec[k] = restoreBlobs(rec[k], view, cursor, depth + 1);
  return rec;
}

function isBlobMarker(v: unknown): v is { $b: number } {
  if (!isPlainObject(v)) return false;
  const keys = Object.keys(v);
  return keys.length === 1 && keys[0] === '$b' && isUint(v['$b']);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isUint(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

type FieldType = 'uint' | 'string' | 'bytes' | 'bool' | 'meta' | 'msg' | 'string?' | 'uint?';
const FIELDS: { [K in FrameKind]: Record<Exclude<keyof FrameOf<K>, 't'>, FieldType> } = {
  raft: { msg: 'msg' },
  req: { id: 'uint', kind: 'string', body: 'bytes' },
  res: { id: 'uint', body: 'bytes' },
  err: { id: 'uint', code: 'string', message: 'string' },
  snapOffer: { sid: 'string', meta: 'meta', size: 'uint' },
  snapAccept: { sid: 'string', offset: 'uint' },
  snapChunk: { sid: 'string', offset: 'uint', data: 'bytes' },
  snapAck: { sid: 'string', offset: 'uint' },
  snapEnd: { sid: 'string', sha256: 'string' },
  snapDone: { sid: 'string', ok: 'bool', code: 'string?', message: 'string?' },
  challenge: { cluster: 'string', id: 'string', nonce: 'string' },
  auth: { cluster: 'string', from: 'string', to: 'string', nonce: 'string', incarnation: 'string', mac: 'string' },
  welcome: { incarnation: 'string', mac: 'string' },
  deny: { code: 'string', message: 'string' },
  part: { id: 'uint', last: 'bool', data: 'bytes', total: 'uint?' },
};

function validateFrame(frame: Frame): void {
  const spec = FIELDS[frame.t] as Record<string, FieldType>;
  const rec = frame as unknown as Record<string, unknown>;
  for (const [name, type] of Object.entries(spec)) {
    if (!fieldMatches(rec[name], type)) throw new CodecError(`${frame.t} frame: field '${name}' is not a valid ${type}`);
  }
}

function fieldMatches(v: unknown, type: FieldType): boolean {
  switch (type) {
    case 'uint':
      return isUint(v);
    case 'string':
      return typeof v === 'string';
    case 'string?':
      return v === undefined || typeof v === 'string';
    case 'uint?':
      return v === undefined || isUint(v);
    case 'bytes':
      return v instanceof Uint8Array;
    case 'bool':
      return typeof v === 'boolean';
    case 'meta':
      return isSnapshotMeta(v);
    case 'msg':
      return isWireMessage(v);
  }
}

export function isSnapshotMeta(v: unknown): v is SnapshotMeta {
  if (!isPlainObject(v) || !isUint(v['index']) || !isUint(v['term'])) return false;
  const conf = v['conf'];
  return isPlainObject(conf) && isStringArray(conf['voters']) && isStringArray(conf['learners']);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

// Checks the fields raft/message.ts declares; fields added later pass through unchecked.
function isWireMessage(v: unknown): v is Message {
  if (!isPlainObject(v)) return false;
  if (!MESSAGE_TYPE_SET.has(v['type'] as MessageType) || typeof v['from'] !== 'string' || typeof v['to'] !== 'string') return false;
  for (const f of ['term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) if (!isUint(v[f])) return false;
  if (typeof v['reject'] !== 'boolean') return false;
  if (v['ctx'] !== undefined && !(v['ctx'] instanceof Uint8Array)) return false;
  if (v['snapshot'] !== undefined && !isSnapshotMeta(v['snapshot'])) return false;
  const entries = v['entries'];
  if (entries === undefined) return true;
  return Array.isArray(entries) && entries.every(isEntry);
}

function isEntry(e: unknown): boolean {
  return (
    isPlainObject(e) && isUint(e['index']) && isUint(e['term']) && ENTRY_TYPES.has(e['type'] as string) && e['data'] instanceof Uint8Array
  );
}
