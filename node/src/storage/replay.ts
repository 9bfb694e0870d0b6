// Startup recovery of the WAL directory (synchronous: the node does nothing else until it is done).
import { existsSync, ftruncateSync, fsyncSync, closeSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Entry, HardState } from '../raft/types.js';
import { StorageCorruptError } from './errors.js';
import { syncDirSync } from './fsutil.js';
import type { StorageLogger } from './options.js';
import { findIntactRecordAfter, parseRecord, RecordType } from './record.js';
import { readFileSlicedSync } from './sliced-io.js';

export const COMPACT_FILE = 'compact.json';
const SEGMENT = /^(\d{16})\.wal$/;

export const segmentName = (seq: number) => `${seq.toString().padStart(16, '0')}.wal`;

/** Durable compaction point: replay starts after `index`; segments before `firstSeq` are garbage. */
export interface CompactPoint {
  index: number;
  term: number;
  firstSeq: number;
}

export interface SegmentState {
  seq: number;
  path: string;
  size: number;
  /** Highest entry index ever written to the segment (it stays deletable only once compaction covers it). */
  maxIndex: number;
}

export interface ReplayResult {
  compact: CompactPoint;
  hardState: HardState;
  /** Entries after the compaction point, in index order. */
  entries: Entry[];
  segments: SegmentState[];
}

export function readCompactPoint(walDir: string): CompactPoint {
  const file = path.join(walDir, COMPACT_FILE);
  if (!existsSync(file)) return { index: 0, term: 0, firstSeq: 1 };
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as CompactPoint;
    if (![c.index, c.term, c.firstSeq].every((n) => Number.isSafeInteger(n) && n >= 0) || c.firstSeq < 1) throw new Error('bad fields');
    return c;
  } catch (err) {
    throw new StorageCorruptError('compaction record unreadable', { file }, { cause: err });
  }
}

export function replayWal(walDir: string, logger: StorageLogger | undefined): ReplayResult {
  const compact = readCompactPoint(walDir);
  const seqs = listSegments(walDir, compact.firstSeq, logger);
  checkContiguous(walDir, seqs, compact.firstSeq);

  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  const entries: Entry[] = [];
  const segments: SegmentState[] = [];
  const lastIndex = () => (entries.length === 0 ? compact.index : entries[entries.length - 1]!.index);

  seqs.forEach((seq, i) => {
    const file = path.join(walDir, segmentName(seq));
    const buf = readFileSlicedSync(file);
    const isLast = i === seqs.length - 1;
    let off = 0;
    let maxIndex = 0;
    while (off < buf.length) {
      const r = parseRecord(buf, off);
      if (!r.ok) {
        // segments are preallocated: a zero tail is unused space, not damage
        if (!isAllZero(buf, off)) off = handleDamage(file, buf, off, r.detail, isLast, logger);
        break;
      }
      if (r.record.type === RecordType.HardState) {
        hardState = r.record.hardState;
      } else {
        const e = r.record.entry;
        maxIndex = Math.max(maxIndex, e.index);
        if (e.index > lastIndex() + 1) {
          throw new StorageCorruptError(`index gap: entry ${e.index} follows ${lastIndex()} (a segment or record is missing)`, { file, offset: off });
        }
        // An index at or below the tail overwrites the conflicting suffix (Raft log truncation). That holds
        // for entries at or below the compaction point too: their payload is covered by the snapshot, but
        // the truncation they caused must still drop stale entries above it from older segments.
        entries.length = Math.max(0, e.index - compact.index - 1);
        if (e.index > compact.index) entries.push(e);
      }
      off = r.next;
    }
    releaseUnusedTail(buf, off, entries);
    segments.push({ seq, path: file, size: off, maxIndex });
  });
  return { compact, hardState, entries, segments };
}

/** A zero tail longer than this is not kept in memory after replay. */
const KEEP_TAIL_BYTES = 1 << 20;

/**
 * Replayed entries are views into their segment's buffer (copying each one doubled recovery time), so
 * they keep all of it alive. The last segment is preallocated (64 MiB by default) and mostly zeros. Its
 * buffer is shrunk to the live records (`ArrayBuffer.transfer`, which releases the old memory at once
 * instead of at some later collection) and this segment's entries re-pointed at the new one. Before, a
 * restarted node carried the unused space (+64 MiB of RSS), which also delayed the closing of its links
 * on a kill -9: the kernel tears the address space down before it closes the sockets.
 */
function releaseUnusedTail(buf: Buffer, end: number, entries: Entry[]): void {
  const whole = buf.buffer;
  if (buf.length - end <= KEEP_TAIL_BYTES || !(whole instanceof ArrayBuffer) || buf.byteOffset !== 0 || buf.length !== whole.byteLength) return;
  // this segment's entries are a suffix of `entries`: earlier segments' entries come before them
  let first = entries.length;
  while (first > 0 && entries[first - 1]!.data.buffer === whole) first--;
  // the views detach with the old buffer: note where each one was first
  const spans = entries.slice(first).map((e) => [e.data.byteOffset, e.data.byteOffset + e.data.byteLength] as const);
  const live = Buffer.from(whole.transfer(end));
  spans.forEach(([from, to], k) => {
    const e = entries[first + k]!;
    entries[first + k] = { ...e, data: live.subarray(from, to) };
  });
}

/** Returns the offset the segment ends at after a torn tail is cut off; throws for any other damage. */
function handleDamage(file: string, buf: Buffer, off: number, detail: string, isLast: boolean, logger: StorageLogger | undefined): number {
  const later = findIntactRecordAfter(buf, off);
  if (!isLast || later !== undefined) {
    const why = isLast ? `intact record follows at offset ${later}` : 'not the last segment';
    throw new StorageCorruptError(`corrupt WAL record (${detail}; ${why})`, { file, offset: off });
  }
  // A crash mid-append leaves a partial last record. It was never fsync'd, hence never acknowledged.
  logger?.warn({ file, offset: off, droppedBytes: buf.length - off, detail }, 'truncating torn final WAL record');
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return off;
}

const ZEROS = Buffer.alloc(64 * 1024);

function isAllZero(buf: Buffer, from: number): boolean {
  for (let off = from; off < buf.length; off += ZEROS.length) {
    const chunk = buf.subarray(off, Math.min(buf.length, off + ZEROS.length));
    if (!chunk.equals(ZEROS.subarray(0, chunk.length))) return false;
  }
  return true;
}

function listSegments(walDir: string, firstSeq: number, logger: StorageLogger | undefined): number[] {
  const seqs: number[] = [];
  let removed = false;
  for (const name of readdirSync(walDir)) {
    const m = SEGMENT.exec(name);
    if (!m) continue;
    const seq = Number(m[1]);
    if (seq < firstSeq) {
      // compaction was recorded but the crash came before the old segments were unlinked
      rmSync(path.join(walDir, name));
      logger?.warn({ file: name }, 'removed segment left over from an interrupted compaction');
      removed = true;
      continue;
    }
    seqs.push(seq);
  }
  if (removed) syncDirSync(walDir);
  return seqs.sort((a, b) => a - b);
}

function checkContiguous(walDir: string, seqs: number[], firstSeq: number): void {
  if (seqs.length === 0) {
    if (firstSeq > 1) throw new StorageCorruptError(`no WAL segments, but compaction record expects segment ${firstSeq}`, { file: walDir });
    return;
  }
  if (seqs[0] !== firstSeq) {
    throw new StorageCorruptError(`missing WAL segment ${segmentName(firstSeq)} (first present is ${segmentName(seqs[0]!)})`, { file: walDir });
  }
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1]! + 1) {
      throw new StorageCorruptError(`missing WAL segment ${segmentName(seqs[i - 1]! + 1)}`, { file: walDir });
    }
  }
}
