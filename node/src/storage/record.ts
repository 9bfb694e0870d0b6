// WAL record framing: [len u32 LE][crc32 u32 LE][type u8][payload (len bytes)].
// The CRC covers type and payload, which are contiguous, so replay needs one crc32 call per record (3x
// faster than also hashing len separately). A damaged len is still caught: the CRC is then computed over a
// different byte range and does not match.
import { crc32 } from 'node:zlib';
import { nextTurn } from './yielding.js';
import type { Entry, EntryType, HardState } from '../raft/types.js';

export const RECORD_HEADER_BYTES = 9;
/** Entries are PNG objects of at most 16 MiB; anything far larger is a damaged length field. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

export const enum RecordType {
  Entry = 0x45, // 'E'
  HardState = 0x48, // 'H'
}

const ENTRY_META_BYTES = 17; // term f64, index f64, entry type u8
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'conf', 'noop'];

export function isRecordType(t: number): t is RecordType {
  return t === RecordType.Entry || t === RecordType.HardState;
}

/** Buffers to write for one record; the payload is not copied (entries can be 16 MiB). */
function frame(type: RecordType, parts: Uint8Array[], crc?: number): Buffer[] {
  let len = 0;
  for (const p of parts) len += p.byteLength;
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
  header.writeUInt32LE(len, 0);
  header.writeUInt8(type, 8);
  if (crc === undefined) {
    crc = crc32(header.subarray(8, 9));
    for (const p of parts) crc = crc32(p, crc);
  }
  header.writeUInt32LE(crc, 4);
  return [header, ...parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)))];
}

function entryMeta(e: Entry): Buffer {
  const meta = Buffer.allocUnsafe(ENTRY_META_BYTES);
  meta.writeDoubleLE(e.term, 0);
  meta.writeDoubleLE(e.index, 8);
  meta.writeUInt8(ENTRY_TYPES.indexOf(e.type), 16);
  return meta;
}

export function encodeEntry(e: Entry): Buffer[] {
  return frame(RecordType.Entry, e.data.byteLength > 0 ? [entryMeta(e), e.data] : [entryMeta(e)]);
}

const CRC_SLICE_BYTES = 1024 * 1024;
const TYPE_BYTE = Buffer.from([RecordType.Entry]);

/**
 * Same bytes as encodeEntry, but a large entry's CRC is computed 1 MiB per event-loop turn: a 16 MiB
 * PNG would otherwise hold the loop (which belongs to consensus: ticks, heartbeats) for ~10-20 ms.
 */
export async function encodeEntryYielding(e: Entry): Promise<Buffer[]> {
  if (e.data.byteLength <= CRC_SLICE_BYTES) return encodeEntry(e);
  const meta = entryMeta(e);
  let crc = crc32(meta, crc32(TYPE_BYTE));
  for (let off = 0; off < e.data.byteLength; off += CRC_SLICE_BYTES) {
    crc = crc32(e.data.subarray(off, off + CRC_SLICE_BYTES), crc);
    await nextTurn();
  }
  return frame(RecordType.Entry, [meta, e.data], crc);
}

export function encodeHardState(hs: HardState): Buffer[] {
  return frame(RecordType.HardState, [Buffer.from(JSON.stringify({ term: hs.term, vote: hs.vote, commit: hs.commit }))]);
}

export type DecodedRecord =
  | { type: RecordType.Entry; entry: Entry }
  | { type: RecordType.HardState; hardState: HardState };

export type ParseResult =
  | { ok: true; record: DecodedRecord; next: number }
  /** `incomplete`: the record runs past the end of the buffer; `bad`: header or CRC invalid. */
  | { ok: false; reason: 'incomplete' | 'bad'; detail: string };

/** Parses the record at `off`. Never throws on damaged bytes: the caller decides torn-tail vs corruption. */
export function parseRecord(buf: Buffer, off: number): ParseResult {
  if (buf.length - off < RECORD_HEADER_BYTES) return { ok: false, reason: 'incomplete', detail: 'truncated header' };
  const len = buf.readUInt32LE(off);
  const type = buf.readUInt8(off + 8);
  if (!isRecordType(type)) return { ok: false, reason: 'bad', detail: `unknown record type 0x${type.toString(16)}` };
  if (len > MAX_PAYLOAD_BYTES) return { ok: false, reason: 'bad', detail: `implausible record length ${len}` };
  const end = off + RECORD_HEADER_BYTES + len;
  if (end > buf.length) return { ok: false, reason: 'incomplete', detail: `record of ${len} bytes runs past end of file` };
  if (crc32(buf.subarray(off + 8, end)) !== buf.readUInt32LE(off + 4)) return { ok: false, reason: 'bad', detail: 'CRC mismatch' };
  const payload = buf.subarray(off + RECORD_HEADER_BYTES, end);
  const record = decodePayload(type, payload);
  if (record === undefined) return { ok: false, reason: 'bad', detail: 'undecodable payload with valid CRC' };
  return { ok: true, record, next: end };
}

function decodePayload(type: RecordType, payload: Buffer): DecodedRecord | undefined {
  if (type === RecordType.Entry) {
    if (payload.length < ENTRY_META_BYTES) return undefined;
    const entryType = ENTRY_TYPES[payload.readUInt8(16)];
    if (entryType === undefined) return undefined;
    // a view, not a copy: copying every entry doubled recovery time; live entries keep their segment's
    // buffer alive, which is the same memory the core's log holds anyway
    const data = payload.subarray(ENTRY_META_BYTES);
    return { type, entry: { term: payload.readDoubleLE(0), index: payload.readDoubleLE(8), type: entryType, data } };
  }
  try {
    const hs = JSON.parse(payload.toString('utf8')) as HardState;
    if (typeof hs.term !== 'number' || typeof hs.commit !== 'number' || !(hs.vote === null || typeof hs.vote === 'string')) return undefined;
    return { type, hardState: { term: hs.term, vote: hs.vote, commit: hs.commit } };
  } catch {
    return undefined;
  }
}

/** After a damaged record at `from`: does any intact record start later? If so, the damage is not a torn tail. */
export function findIntactRecordAfter(buf: Buffer, from: number): number | undefined {
  for (let off = from + 1; off + RECORD_HEADER_BYTES <= buf.length; off++) {
    if (!isRecordType(buf[off + 8]!)) continue;
    const r = parseRecord(buf, off);
    if (r.ok) return off;
  }
  return undefined;
}
