// Raster -> PNG, the hot half of every embed. The filtered scanlines are cut into ~1 MiB pieces and
// each piece is deflated by zlib's async API, which runs on the libuv threadpool: pieces compress in
// parallel with each other and with the main thread filtering the next piece. Each piece is a raw
// deflate stream primed with the previous piece's last 32 KiB (so matches across the cut survive)
// and ended with Z_SYNC_FLUSH (byte-aligned, not final), so the pieces concatenate into one valid
// zlib stream behind a 2-byte header and the combined Adler-32.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { CarriedChunk, Raster } from '../raster.js';
import { adler32, adler32Combine } from './adler32.js';
import { releaseBuffer } from './release.js';
import { encodeSmallChunks, idatChunkParts } from './chunks.js';
import { BAND_ROWS, chooseFilter, filterRow, type FilterType } from './filter.js';

type Deflated = { buffer: Buffer; engine: zlib.Zlib };
const deflateRawInfo = promisify(zlib.deflateRaw) as unknown as (buf: Uint8Array, opts: zlib.ZlibOptions & { info: true }) => Promise<Deflated>;
const deflateInfo = promisify(zlib.deflate) as unknown as (buf: Uint8Array, opts: zlib.ZlibOptions & { info: true }) => Promise<Deflated>;

/**
 * zlib's async one-shot API copies its output out of the stream's own output buffer, so every call
 * leaves two megabyte-sized buffers behind; `info: true` hands back the stream too, so both can be
 * released as soon as the output is used (see release.ts).
 */
async function deflateOnce(raw: boolean, buf: Uint8Array, opts: zlib.ZlibOptions): Promise<{ buffer: Buffer; release(): void }> {
  const { buffer, engine } = await (raw ? deflateRawInfo : deflateInfo)(buf, { ...opts, info: true });
  return {
    buffer,
    release: () => {
      releaseBuffer(buffer);
      const own = (engine as unknown as { _outBuffer?: unknown })._outBuffer; // the stream has ended: nothing reads it again
      if (own instanceof Uint8Array) releaseBuffer(own);
    },
  };
}

const PIECE_BYTES = 1 << 20;
/**
 * Pieces queued on the libuv threadpool per encode (each is a deflate job plus a short checksum job).
 * Two keep both cores busy next to the filtering thread (8 measured no faster on 2 cores), bound the
 * memory, and matter because the pool is process-wide: the main thread's fs calls (the Raft log's
 * fsync) wait behind whatever deflate work is queued ahead of them.
 */
const MAX_PIECES_IN_FLIGHT = 2;
const WINDOW_BYTES = 32 * 1024;
/** Middle-of-image sample used to choose the deflate strategy. */
const STRATEGY_SAMPLE_BYTES = 256 * 1024;
/** A faster strategy is chosen when it costs at most this much size over the default strategy. */
const SIZE_TOLERANCE = 1.02;

const CHANNELS_OF: Record<Raster['colorType'], number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

interface Compression {
  level: number;
  strategy: number;
  /** zlib header for that level (FLEVEL is informative only). */
  header: Uint8Array;
}
const DEFAULT_COMPRESSION: Compression = { level: 6, strategy: zlib.constants.Z_DEFAULT_STRATEGY, header: Uint8Array.of(0x78, 0x9c) };
const RLE_COMPRESSION: Compression = { level: 6, strategy: zlib.constants.Z_RLE, header: Uint8Array.of(0x78, 0x01) };
const HUFFMAN_COMPRESSION: Compression = { level: 6, strategy: zlib.constants.Z_HUFFMAN_ONLY, header: Uint8Array.of(0x78, 0x01) };
/** Fastest first; the first within SIZE_TOLERANCE of the default strategy's size wins. */
const FAST_CANDIDATES = [HUFFMAN_COMPRESSION, RLE_COMPRESSION];

export async function encodePng(r: Raster): Promise<Buffer> {
  assertRasterShape(r);
  const rows = new RowReader(r);
  const compression = chooseCompression(rows);
  const { head, tail } = smallChunks(r);
  const out = new PngWriter(head.length + tail.length + 2 * IDAT_FRAMING + compression.header.length + 4 + deflateBound(rows));
  out.append(head);
  await deflatePieces(rows, compression, out);
  out.append(tail);
  return out.finish();
}

const IDAT_FRAMING = 12; // length, type, CRC

/**
 * The output PNG, written as pieces finish into a resizable ArrayBuffer: V8 reserves address space for
 * the upper bound once and commits memory only as the buffer grows, so the PNG is never copied and never
 * over-allocated. Each compressed piece is copied in and dropped as soon as it is done, instead of all
 * pieces being kept until a final concatenation (which held the compressed image twice, plus each
 * piece's oversized deflate output buffer). The result owns its whole buffer, so a worker can transfer it.
 */
class PngWriter {
  private readonly backing: ResizableArrayBuffer;
  private at = 0;

  constructor(bound: number) {
    this.backing = new (ArrayBuffer as unknown as ResizableArrayBufferConstructor)(0, { maxByteLength: bound });
  }

  append(bytes: Uint8Array): void {
    this.backing.resize(this.at + bytes.length);
    new Uint8Array(this.backing, this.at, bytes.length).set(bytes);
    this.at += bytes.length;
  }

  appendIdat(parts: Uint8Array[]): void {
    for (const part of idatChunkParts(parts)) this.append(part);
  }

  finish(): Buffer {
    return Buffer.from(this.backing, 0, this.at);
  }
}

// Resizable ArrayBuffers (ES2024) are in Node >= 20 but not yet in TypeScript's ES2023 lib.
type ResizableArrayBuffer = ArrayBuffer & { resize(length: number): void };
type ResizableArrayBufferConstructor = new (length: number, options: { maxByteLength: number }) => ResizableArrayBuffer;

/** Upper bound of the deflated pieces: zlib's stored-block fallback never exceeds this on any input. */
function deflateBound(rows: RowReader): number {
  const stride = rows.rowBytes + 1;
  const rowsPerPiece = Math.max(1, Math.floor(PIECE_BYTES / stride));
  const pieces = Math.ceil(rows.height / rowsPerPiece);
  const total = stride * rows.height;
  return total + (total >> 8) + pieces * (1024 + IDAT_FRAMING);
}

function assertRasterShape(r: Raster): void {
  const channels = CHANNELS_OF[r.colorType];
  const sampleType = r.bitDepth === 16 ? Uint16Array : Uint8Array;
  if (!Number.isInteger(r.width) || !Number.isInteger(r.height) || r.width < 1 || r.height < 1) {
    throw new TypeError(`encodePng: bad dimensions ${r.width}x${r.height}`);
  }
  if (channels !== r.channels || !(r.data instanceof sampleType) || r.data.length !== r.width * r.height * channels) {
    throw new TypeError(
      `encodePng: raster data does not match colour type ${r.colorType}, ${r.bitDepth}-bit, ${r.width}x${r.height}`,
    );
  }
}

/** Scanlines as PNG bytes: views into 8-bit data, big-endian copies of 16-bit samples. */
class RowReader {
  readonly rowBytes: number;
  readonly bpp: number;
  readonly height: number;
  private readonly zeros: Uint8Array;
  private readonly scratch: [Uint8Array, Uint8Array];

  constructor(private readonly r: Raster) {
    this.bpp = r.channels * (r.bitDepth / 8);
    this.rowBytes = r.width * this.bpp;
    this.height = r.height;
    this.zeros = new Uint8Array(this.rowBytes);
    this.scratch = [new Uint8Array(this.rowBytes), new Uint8Array(this.rowBytes)];
  }

  /** Row y; for 16-bit the view is only valid until row y+2 is read (two scratch rows alternate). */
  row(y: number): Uint8Array {
    if (y < 0) return this.zeros;
    const samples = this.r.width * this.r.channels;
    if (this.r.data instanceof Uint8Array) return this.r.data.subarray(y * samples, (y + 1) * samples);
    const out = this.scratch[y & 1];
    const data = this.r.data;
    for (let i = 0, s = y * samples; i < samples; i++, s++) {
      const v = data[s]!;
      out[2 * i] = v >> 8;
      out[2 * i + 1] = v & 0xff;
    }
    return out;
  }

  /** Filters rows [from, to) into `into` (or a new buffer), filter byte first on each row. */
  filter(from: number, to: number, into?: Buffer): Buffer {
    const stride = this.rowBytes + 1;
    const out = into ? into.subarray(0, (to - from) * stride) : Buffer.allocUnsafe((to - from) * stride);
    let prev = this.row(from - 1);
    let type: FilterType = 0;
    for (let y = from; y < to; y++) {
      const cur = this.row(y);
      if (y === from || y % BAND_ROWS === 0) type = chooseFilter(cur, prev, this.bpp);
      const o = (y - from) * stride;
      out[o] = type;
      filterRow(type, cur, prev, this.bpp, out, o + 1);
      prev = cur;
    }
    return out;
  }
}

/**
 * Camera noise leaves LZ77 almost nothing to match, so Huffman-only or RLE coding compresses photos as
 * well as the default strategy at a third of the time; on graphics they lose badly. A sample from the
 * middle of the image decides.
 */
function chooseCompression(rows: RowReader): Compression {
  const stride = rows.rowBytes + 1;
  if (stride * rows.height <= STRATEGY_SAMPLE_BYTES) return DEFAULT_COMPRESSION;
  const count = Math.max(1, Math.floor(STRATEGY_SAMPLE_BYTES / stride));
  const from = Math.floor((rows.height - count) / 2);
  const sample = rows.filter(from, from + count);
  const sizeWith = (c: Compression) => zlib.deflateRawSync(sample, { level: c.level, strategy: c.strategy }).length;
  const budget = sizeWith(DEFAULT_COMPRESSION) * SIZE_TOLERANCE;
  return FAST_CANDIDATES.find((c) => sizeWith(c) <= budget) ?? DEFAULT_COMPRESSION;
}

/** Deflates the rows piece by piece into IDAT chunks of `out`: the first carries the zlib header, a last one the Adler-32. */
async function deflatePieces(rows: RowReader, compression: Compression, out: PngWriter): Promise<void> {
  const stride = rows.rowBytes + 1;
  const rowsPerPiece = Math.max(1, Math.floor(PIECE_BYTES / stride));
  const jobs: (Promise<{ buffer: Buffer; release(): void }> | undefined)[] = [];
  const checksums: Promise<number>[] = [];
  const lengths: number[] = [];
  let written = 0;
  const writeNext = async (): Promise<void> => {
    const piece = await jobs[written]!;
    jobs[written] = undefined;
    out.appendIdat(written === 0 ? [compression.header, piece.buffer] : [piece.buffer]);
    piece.release();
    written++;
  };
  let dictionary: Uint8Array | undefined;
  const ring: Buffer[] = [];
  for (let from = 0, piece = 0; from < rows.height; from += rowsPerPiece, piece++) {
    // Bound the filtered bytes waiting for the threadpool (memory per request), keep the pool busy.
    if (piece >= MAX_PIECES_IN_FLIGHT) await Promise.all([writeNext(), checksums[piece - MAX_PIECES_IN_FLIGHT]]);
    const to = Math.min(rows.height, from + rowsPerPiece);
    // Piece i reuses the buffer of piece i - 3, whose deflate and checksum jobs are done by now (piece
    // i - 2's were awaited above); piece i - 1's buffer is still the dictionary of this piece's deflate.
    // Reuse instead of a fresh megabyte per piece keeps garbage, and so peak memory, down.
    const slot = piece % (MAX_PIECES_IN_FLIGHT + 1);
    ring[slot] ??= Buffer.allocUnsafeSlow(rowsPerPiece * stride);
    const filtered = rows.filter(from, to, ring[slot]);
    const last = to === rows.height;
    jobs.push(
      deflateOnce(true, filtered, {
        level: compression.level,
        strategy: compression.strategy,
        finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
        // one threadpool round trip per piece instead of one per 16 KiB of output
        chunkSize: filtered.length + (filtered.length >> 8) + 1024,
        ...(dictionary ? { dictionary } : {}),
      }),
    );
    checksums.push(pieceAdler32(filtered));
    // If one piece fails, the loop stops awaiting the rest: mark them handled so a second failure
    // cannot become an unhandled rejection (which kills a worker thread); the first one is thrown.
    jobs.at(-1)!.catch(() => undefined);
    checksums.at(-1)!.catch(() => undefined);
    lengths.push(filtered.length);
    dictionary = filtered.subarray(Math.max(0, filtered.length - WINDOW_BYTES));
  }
  while (written < jobs.length) await writeNext();
  const adlers = await Promise.all(checksums);
  const trailer = Buffer.alloc(4);
  trailer.writeUInt32BE(adlers.reduce((acc, a, i) => adler32Combine(acc, a, lengths[i]!), 1), 0);
  out.appendIdat([trailer]);
}

/**
 * Adler-32 of a piece, computed by zlib on the threadpool rather than by a JS loop on the thread that
 * filters: a level-0 zlib stream is a copy of its input plus the Adler-32 in its last 4 bytes. This
 * took the checksum (~6% of an encode) off the critical path.
 */
async function pieceAdler32(piece: Buffer): Promise<number> {
  if (piece.length < 64 * 1024) return adler32(piece);
  const stored = await deflateOnce(false, piece, { level: 0, chunkSize: piece.length + (piece.length >> 10) + 1024 });
  const adler = stored.buffer.readUInt32BE(stored.buffer.length - 4);
  stored.release();
  return adler;
}


/** Signature, IHDR and the carried chunks before IDAT; the carried chunks after it and IEND. */
function smallChunks(r: Raster): { head: Uint8Array; tail: Uint8Array } {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(r.width, 0);
  ihdr.writeUInt32BE(r.height, 4);
  ihdr[8] = r.bitDepth;
  ihdr[9] = r.colorType; // compression, filter method and interlace stay 0: output is never interlaced
  const carried = legalChunks(r);
  const head = encodeSmallChunks([{ name: 'IHDR', data: ihdr }, ...carried.beforeIdat], true);
  const tail = encodeSmallChunks([...carried.afterIdat, { name: 'IEND', data: new Uint8Array(0) }], false);
  return { head, tail };
}

/**
 * Carried chunks in legal places. The output never has a PLTE, so chunks that must precede PLTE and
 * those that must follow it both go before IDAT, in input order. Critical chunks are never carried,
 * and tRNS is illegal with an alpha channel.
 */
function legalChunks(r: Raster): { beforeIdat: CarriedChunk[]; afterIdat: CarriedChunk[] } {
  const carried = r.chunks.filter((c) => {
    const critical = (c.name.charCodeAt(0) & 0x20) === 0;
    return !critical && c.name.length === 4 && !(c.name === 'tRNS' && r.hasAlpha) && c.name !== 'hIST';
  });
  return {
    beforeIdat: [
      ...carried.filter((c) => c.position === 'beforePLTE'),
      ...carried.filter((c) => c.position === 'beforeIDAT'),
    ],
    afterIdat: carried.filter((c) => c.position === 'afterIDAT'),
  };
}
