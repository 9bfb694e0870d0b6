// PNG -> Raster. Chunk walk, native inflate, then unfilter. A non-interlaced image is unfiltered in
// place, inside the inflated buffer (each row moves left over its filter byte as it is reconstructed),
// so for 8-bit images that buffer becomes the Raster's samples with no second image-sized allocation and
// no per-pixel work beyond the filter arithmetic; Adam7 goes through pngjs's own unfilter
// (lib/filter-parse). 16-bit is byte-swapped; palette, 1/2/4-bit gray and Adam7 are unpacked by one
// linear loop. pngjs's public PNG.sync.read (always RGBA, per-pixel bitmapper) took twice the CPU.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { StegoError, isStegoError } from '../errors.js';
import type { PngHeader, Raster } from '../raster.js';
import { carryOver } from './carry.js';
import { releaseBuffer } from './release.js';
import { checkIdatCrcs, splitPng, type SplitPng } from './chunks.js';
import { RowUnfilter } from './unfilter.js';
import { assertWithinPixelLimit, readHeader, storedChannels } from './header.js';

interface BitmapInfo {
  width: number;
  height: number;
  depth: number;
  bpp: number;
  interlace: boolean;
}
const require = createRequire(import.meta.url);
type RowRead = (length: number, onRow: (row: Buffer) => void) => void;
interface FilterSink {
  read: RowRead;
  write: (unfilteredRow: Buffer) => void;
  complete: () => void;
}
/** pngjs's scanline unfilter (lib/filter-parse.js): pulls filtered rows via read, pushes unfiltered rows to write. */
const PngjsFilter = require('pngjs/lib/filter-parse.js') as new (info: BitmapInfo, sink: FilterSink) => { start(): void };
const interlace = require('pngjs/lib/interlace.js') as {
  getImagePasses(width: number, height: number): { width: number; height: number; index: number }[];
};

export interface DecodeOptions {
  maxPixels: number;
  /**
   * The caller gives `buf` up: its memory is returned as soon as the compressed data is no longer needed
   * (its ArrayBuffer is detached, so every view of it reads as empty afterwards). Only honoured when
   * `buf` spans its whole ArrayBuffer; the chunks carried over are copied first. For the engine running
   * on a transferred input, where the input would otherwise stay resident beside the raster and the
   * encoded output for the whole embed (19 MB of a 12 MP photo).
   */
  consumeInput?: boolean;
  /** decodePngStreamed only: stream images with at least this many bytes of filtered data (tests set 0). */
  streamFromBytes?: number;
}

/**
 * Below this much filtered data (64 MiB: a 21 MP RGB photo; 1080p RGBA has 8 MB, 12 MP RGB 36 MB)
 * extract decodes on one thread. Each streamed chunk is a hand-off between two threads (two wake-ups),
 * and on this shared 2-core machine at load average 10-20 a wake-up cost several ms of wall time: the
 * 1080p extract streamed in eight chunks took 4.7x its CPU time in wall time (stepic's single thread
 * 3x), and the 12 MP extract streamed in three joined writes lost to the one-thread decode in 6 of 7
 * same-window pairs (median 1.0x vs 0.74x stepic's wall time). Streaming saves the unfilter time that
 * overlaps inflate (~15% of inflate) against a fixed number of hand-offs, so it can only pay off on
 * larger images; this threshold is where that estimate breaks even, not a measurement.
 */
const STREAM_FROM_BYTES = 64 << 20;

export function decodePng(buf: Uint8Array, opts: DecodeOptions): Raster {
  const source = readHeader(buf);
  assertWithinPixelLimit(source, opts.maxPixels);
  try {
    const split = splitPng(buf, source.colorType);
    const info = bitmapInfo(source);
    const consume = opts.consumeInput === true && isWholeBuffer(buf);
    if (consume) ownChunkData(split);
    const inflated = inflateImageData(split, info, consume ? buf : undefined);
    const unfiltered = info.interlace ? unfilterInterlaced(inflated, info) : unfilterInPlace(inflated, info);
    return toRaster(split, source, info, unfiltered);
  } catch (e) {
    throw asDecodeError(e);
  }
}

/**
 * decodePng for extract: the same Raster. A large non-interlaced image (at least `streamFromBytes` of
 * filtered data) is inflated on the libuv threadpool as a stream while this thread unfilters the rows
 * already inflated, straight into the Raster: inflate and unfilter overlap, and the inflated stream is
 * never held whole. Every chunk of that stream is a hand-off between two threads (two wake-ups), which
 * on a loaded machine cost more wall time than the overlap saves on a small image: those, and Adam7
 * images, take decodePng's single-threaded path. Every CRC is checked (decodePngForExtract, then
 * checkImageDataCrcs).
 */
export async function decodePngStreamed(buf: Uint8Array, opts: DecodeOptions): Promise<Raster> {
  const decoded = await decodePngForExtract(buf, opts);
  try {
    decoded.checkImageDataCrcs();
    return decoded.raster;
  } finally {
    decoded.release();
  }
}

/** What extract's decode returns: the Raster, and the IDAT CRC check it has left to its caller. */
export interface ExtractDecoded {
  raster: Raster;
  /**
   * Throws what decodePng throws for the same bytes (corrupt_png, "IDAT CRC mismatch") if a CRC stored
   * with the image data does not match it. Call it before reporting any failure that follows the decode,
   * so every failing input answers as under decodePng; a success does not need it. Before release().
   */
  checkImageDataCrcs(): void;
  /** Returns a consumed input's memory (`consumeInput`); call once, when done with checkImageDataCrcs. */
  release(): void;
}

/**
 * Extract's decode: decodePngStreamed's Raster without the IDAT CRCs checked (~4 ms of a 12 MP photo's
 * extract, 2-3% of it). The image data stays covered: zlib checks the Adler-32 of the whole inflated
 * stream (a damaged stream also fails to inflate or inflates to the wrong size), and a payload carries
 * its own CRC-32 or authentication tag. Failures answer as before: a failing decode checks the IDAT
 * CRCs before reporting, and the caller does so for anything that fails after it (checkImageDataCrcs;
 * the consumed input is therefore kept until release(), which does not raise the peak: input and
 * inflated data are resident together during inflate anyway). The one difference: an image whose only
 * defect is a wrong IDAT CRC, with image data that inflates correctly, can now be read, as Pillow reads
 * it; embed, capacity and object uploads still refuse it.
 */
export async function decodePngForExtract(buf: Uint8Array, opts: DecodeOptions): Promise<ExtractDecoded> {
  const source = readHeader(buf);
  assertWithinPixelLimit(source, opts.maxPixels);
  const info = bitmapInfo(source);
  // The streamed path hands views of the input to zlib's threadpool, so it never frees the input.
  const streamed = !info.interlace && filteredSize(info) >= (opts.streamFromBytes ?? STREAM_FROM_BYTES);
  const consume = opts.consumeInput === true && isWholeBuffer(buf) && !streamed;
  let split: SplitPng | undefined;
  const checkImageDataCrcs = (): void => {
    if (split !== undefined) checkIdatCrcs(split.idat, split.idatCrcs!);
  };
  const release = (): void => {
    if (consume) releaseBuffer(buf);
  };
  try {
    split = splitPng(buf, source.colorType, undefined, true);
    if (consume) ownChunkData(split);
    let unfiltered: Buffer;
    if (streamed) {
      unfiltered = await inflateUnfiltered(split, info);
    } else {
      const inflated = inflateImageData(split, info, consume ? buf : undefined, false);
      unfiltered = info.interlace ? unfilterInterlaced(inflated, info) : unfilterInPlace(inflated, info);
    }
    return { raster: toRaster(split, source, info, unfiltered), checkImageDataCrcs, release };
  } catch (e) {
    try {
      checkImageDataCrcs();
    } finally {
      release();
    }
    throw asDecodeError(e);
  }
}

function isWholeBuffer(buf: Uint8Array): boolean {
  return buf.byteOffset === 0 && buf.byteLength === buf.buffer.byteLength;
}

/** Copies the palette and the ancillary chunks out of the input (they are views of it), so it can be freed. */
function ownChunkData(split: SplitPng): void {
  // new Uint8Array(view) copies (Buffer#slice would not)
  if (split.palette) split.palette = new Uint8Array(split.palette);
  for (const chunk of split.ancillary) chunk.data = new Uint8Array(chunk.data);
}

function asDecodeError(e: unknown): StegoError {
  if (isStegoError(e)) return e;
  // pngjs internals and zlib throw plain Errors/RangeErrors on damaged data
  return new StegoError('corrupt_png', `corrupt PNG: ${(e as Error).message}`);
}

function bitmapInfo(source: PngHeader): BitmapInfo {
  return {
    width: source.width,
    height: source.height,
    depth: source.bitDepth,
    bpp: storedChannels(source.colorType),
    interlace: source.interlace === 1,
  };
}

function toRaster(split: SplitPng, source: PngHeader, info: BitmapInfo, unfiltered: Buffer): Raster {
  const palette = source.colorType === 3 ? parsePalette(split) : undefined;
  const layout = outputLayout(source, palette);
  const data = toRasterSamples(unfiltered, info, source, layout, palette);
  const grayScale = source.colorType === 0 && source.bitDepth < 8 ? 255 / (2 ** source.bitDepth - 1) : 1;
  const raster: Raster = {
    width: source.width,
    height: source.height,
    colorType: layout.colorType,
    bitDepth: layout.bitDepth,
    channels: layout.channels,
    hasAlpha: layout.channels === 2 || layout.channels === 4,
    data,
    chunks: carryOver(split.ancillary, { source, palette: split.palette, outputHasAlpha: layout.channels === 4, grayScale }),
    source,
  };
  const key = transparentKey(split, source, grayScale);
  if (key) raster.transparentKey = key;
  return raster;
}

function rowBytes(width: number, info: BitmapInfo): number {
  return Math.ceil((width * info.bpp * info.depth) / 8);
}

/** Exact size of the filtered stream IHDR implies, so inflate can be bounded (decompression bombs). */
export function filteredSize(info: BitmapInfo): number {
  const images = info.interlace ? interlace.getImagePasses(info.width, info.height) : [info];
  return images.reduce((n, img) => n + img.height * (1 + rowBytes(img.width, info)), 0);
}

/**
 * Inflates the image data in one call. Many IDAT chunks are joined first: an input the caller gave up
 * (`owned`, a whole ArrayBuffer) is joined in place, each chunk's data moved left over the framing
 * before it (a memmove: no new buffer and no page faults, ~3 ms instead of ~12 ms for a 12 MP photo's
 * 36 chunks), and freed once inflated unless `releaseOwned` is false (the caller frees it); anything
 * else is joined into a copy.
 */
function inflateImageData(split: SplitPng, info: BitmapInfo, owned?: Uint8Array, releaseOwned = true): Buffer {
  const expected = filteredSize(info);
  const joined = split.idat.length > 1;
  const compressed = !joined ? split.idat[0]! : owned ? joinInPlace(owned, split) : Buffer.concat(split.idat, split.idatBytes);
  let inflated: Buffer;
  try {
    // One byte more than the image needs: with the output buffer not full when the stream ends, Node's
    // inflateSync returns that buffer; a full one makes it allocate a second image-sized buffer (untouched,
    // but counted as external memory: on a 12 MP photo that started a 13 ms mark-compact inside extract).
    inflated = zlib.inflateSync(compressed, { maxOutputLength: expected, chunkSize: Math.max(64, Math.min(expected + 1, 64 << 20)) });
  } finally {
    // The input we own, or a joined copy of many IDAT chunks, is nobody else's: return its memory now
    // (damaged or not) rather than at the next GC, which would leave it resident through the encode.
    if (owned) {
      if (releaseOwned) releaseBuffer(owned);
    } else if (joined) releaseBuffer(compressed);
  }
  if (inflated.length !== expected) {
    throw new StegoError('corrupt_png', `corrupt PNG: image data inflates to ${inflated.length} bytes, IHDR implies ${expected}`);
  }
  return inflated;
}

/**
 * The IDAT chunks' data made contiguous inside the input itself. IDAT chunks are consecutive (splitPng),
 * so every move goes left, past bytes already moved, onto framing and data already read (CRCs are
 * checked, or recorded in `idatCrcs`, by then). `split.idat` then views each chunk's data where it now
 * is. The input is unusable afterwards: only for an input the caller gave up.
 */
function joinInPlace(owned: Uint8Array, split: SplitPng): Uint8Array {
  const whole = new Uint8Array(owned.buffer, 0, owned.buffer.byteLength);
  const start = split.idat[0]!.byteOffset;
  let at = start;
  for (let i = 0; i < split.idat.length; i++) {
    const part = split.idat[i]!;
    whole.copyWithin(at, part.byteOffset, part.byteOffset + part.length);
    split.idat[i] = whole.subarray(at, at + part.length);
    at += part.length;
  }
  return whole.subarray(start, at);
}

/**
 * Reverses the PNG filters of a non-interlaced image inside `inflated` and returns the unfiltered rows,
 * packed, as a view of its start. Row y's filtered bytes sit at y·(n+1)+1, its output goes to y·n: every
 * write lands at or before the byte being read and after the previous output row, which is still intact
 * for the Up, Average and Paeth predictors. pngjs's filter-parse did the same work through one Buffer
 * and closure per row, into a second image-sized buffer.
 */
function unfilterInPlace(inflated: Buffer, info: BitmapInfo): Buffer {
  const n = rowBytes(info.width, info);
  // With the byte after the image data (inflateImageData's output buffer has one to spare), RowUnfilter
  // reads every row of 3-byte pixels where it is, the last one included, instead of copying it.
  const room = inflated.byteOffset + inflated.length < inflated.buffer.byteLength;
  const rows = room ? new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.length + 1) : inflated;
  const unfilter = new RowUnfilter(rows, n, filterBpp(info));
  for (let y = 0; y < info.height; y++) unfilter.row(rows, y * (n + 1), y * n, y);
  return inflated.subarray(0, info.height * n);
}

/** Bytes per complete pixel, at least 1: how far back the Sub, Average and Paeth predictors look. */
function filterBpp(info: BitmapInfo): number {
  return Math.max(1, (info.bpp * info.depth) >> 3);
}

/**
 * Size of the inflater's output chunks: a third of the image, within [1 MiB, 16 MiB]. Every chunk costs
 * two thread wake-ups (the threadpool thread hands it over, this thread queues the next inflate), while
 * only the last chunk's unfilter does not overlap inflate: three chunks keep both small. At most two
 * chunks wait to be unfiltered (then the stream pauses), so memory is the Raster plus three chunks.
 */
function streamChunkBytes(expected: number): number {
  return Math.max(64, Math.min(expected, Math.max(1 << 20, Math.min(16 << 20, Math.ceil(expected / 3)))));
}

/** Writes to the inflater: each is one threadpool job at least, so one hand-off at least. */
const STREAM_GROUPS = 3;

/**
 * The IDAT chunks' data joined into about `groups` buffers of similar size. Encoders cut the stream into
 * many chunks (libpng 8 KB, Pillow 64 KB, ours 1 MB), and zlib runs one job per write: joined, the
 * writes hand off a few times rather than once per chunk. Only the first group's copy delays inflate;
 * the later ones are made while it runs.
 */
function* idatGroups(split: SplitPng, groups: number): Generator<Uint8Array> {
  const target = Math.ceil(split.idatBytes / groups);
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < split.idat.length; i++) {
    bytes += split.idat[i]!.length;
    if (bytes >= target || i === split.idat.length - 1) {
      yield i === start ? split.idat[i]! : Buffer.concat(split.idat.slice(start, i + 1), bytes);
      start = i + 1;
      bytes = 0;
    }
  }
}

/**
 * Streams the IDAT data through zlib's async inflater and unfilters complete rows into one buffer as
 * output arrives. Each chunk is handled in a later macrotask, so zlib already inflates the next one on
 * the threadpool meanwhile. Output beyond what IHDR implies stops the stream (decompression bombs).
 */
function inflateUnfiltered(split: SplitPng, info: BitmapInfo): Promise<Buffer> {
  const n = rowBytes(info.width, info);
  const stride = n + 1;
  const bpp = filterBpp(info);
  const expected = info.height * stride;
  // one byte more than the image: RowUnfilter's 3-byte-pixel word loop writes a byte past each row
  const out = Buffer.allocUnsafeSlow(info.height * n + 1);
  const rows = new RowUnfilter(out, n, bpp);
  const partial = Buffer.alloc(stride); // a row split across two chunks (a Buffer like the chunks: one element kind keeps unfilterRow monomorphic)
  let partialBytes = 0;
  let y = 0;
  let received = 0;
  const take = (chunk: Buffer): void => {
    let at = 0;
    if (partialBytes > 0) {
      const need = Math.min(stride - partialBytes, chunk.length);
      partial.set(chunk.subarray(0, need), partialBytes);
      partialBytes += need;
      at = need;
      if (partialBytes < stride) return;
      rows.row(partial, 0, y * n, y);
      y++;
      partialBytes = 0;
    }
    for (; at + stride <= chunk.length; at += stride, y++) rows.row(chunk, at, y * n, y);
    partial.set(chunk.subarray(at), 0);
    partialBytes = chunk.length - at;
    // A chunk that ends at the end of zlib's output buffer means zlib has moved on to a fresh one, and
    // every earlier chunk of that buffer is already done: free it now rather than at the next GC.
    if (chunk.byteOffset + chunk.length === chunk.buffer.byteLength) releaseBuffer(chunk);
  };
  return new Promise((resolve, reject) => {
    const inflater = zlib.createInflate({ chunkSize: streamChunkBytes(expected) });
    let failed = false;
    const fail = (e: unknown): void => {
      if (failed) return;
      failed = true;
      inflater.destroy();
      reject(e);
    };
    let pending = Promise.resolve();
    let queued = 0; // chunks inflated but not yet unfiltered: at most 2 (then the stream is paused)
    inflater.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > expected) {
        fail(new StegoError('corrupt_png', `corrupt PNG: image data inflates to more than the ${expected} bytes IHDR implies`));
        return;
      }
      if (++queued >= 2) inflater.pause();
      pending = pending.then(
        () =>
          new Promise<void>((done) =>
            setImmediate(() => {
              if (!failed) {
                try {
                  take(chunk);
                } catch (e) {
                  fail(e);
                }
              }
              if (--queued < 2 && !failed) inflater.resume();
              done();
            }),
          ),
      );
    });
    inflater.on('error', fail);
    inflater.on('end', () => {
      void pending.then(() => {
        if (failed) return;
        if (received !== expected || y !== info.height) {
          fail(new StegoError('corrupt_png', `corrupt PNG: image data inflates to ${received} bytes, IHDR implies ${expected}`));
          return;
        }
        resolve(out.subarray(0, info.height * n));
      });
    });
    for (const group of idatGroups(split, STREAM_GROUPS)) inflater.write(group);
    inflater.end();
  });
}

/**
 * Adam7: drives pngjs's unfilter the way its filter-parse-sync.js does, writing each row straight into
 * one preallocated buffer instead of collecting row Buffers and concatenating them.
 */
function unfilterInterlaced(inflated: Buffer, info: BitmapInfo): Buffer {
  const out = Buffer.allocUnsafeSlow(unfilteredSize(info));
  let readAt = 0;
  let writeAt = 0;
  const pending: { length: number; onRow: (row: Buffer) => void }[] = [];
  const filter = new PngjsFilter(info, {
    read: (length, onRow) => pending.push({ length, onRow }),
    write: (row) => {
      out.set(row, writeAt);
      writeAt += row.length;
    },
    complete: () => undefined,
  });
  filter.start();
  for (let next = pending.shift(); next; next = pending.shift()) {
    if (readAt + next.length > inflated.length) throw new StegoError('corrupt_png', 'corrupt PNG: image data ends inside a scanline');
    next.onRow(inflated.subarray(readAt, readAt + next.length));
    readAt += next.length;
  }
  if (writeAt !== out.length) throw new StegoError('corrupt_png', 'corrupt PNG: image data does not fill the image');
  return out;
}

function unfilteredSize(info: BitmapInfo): number {
  const images = info.interlace ? interlace.getImagePasses(info.width, info.height) : [info];
  return images.reduce((n, img) => n + img.height * rowBytes(img.width, info), 0);
}

interface Palette {
  rgba: Uint8Array; // 4 bytes per entry
  entries: number;
  hasAlpha: boolean;
}

function parsePalette(split: SplitPng): Palette {
  const plte = split.palette!;
  if (plte.length === 0 || plte.length % 3 !== 0 || plte.length > 256 * 3) {
    throw new StegoError('corrupt_png', `corrupt PNG: PLTE of ${plte.length} bytes (must be 3..768, a multiple of 3)`);
  }
  const entries = plte.length / 3;
  const trns = split.ancillary.find((c) => c.name === 'tRNS')?.data ?? new Uint8Array(0);
  const rgba = new Uint8Array(entries * 4);
  let hasAlpha = false;
  for (let i = 0; i < entries; i++) {
    rgba.set(plte.subarray(i * 3, i * 3 + 3), i * 4);
    const alpha = i < trns.length ? trns[i]! : 255;
    rgba[i * 4 + 3] = alpha;
    if (alpha !== 255) hasAlpha = true;
  }
  return { rgba, entries, hasAlpha };
}

interface Layout {
  colorType: Raster['colorType'];
  channels: Raster['channels'];
  bitDepth: Raster['bitDepth'];
}

function outputLayout(source: PngHeader, palette: Palette | undefined): Layout {
  const bitDepth = source.bitDepth === 16 ? 16 : 8;
  if (source.colorType === 3) return palette!.hasAlpha ? { colorType: 6, channels: 4, bitDepth: 8 } : { colorType: 2, channels: 3, bitDepth: 8 };
  return { colorType: source.colorType, channels: storedChannels(source.colorType), bitDepth };
}

function toRasterSamples(
  unfiltered: Buffer,
  info: BitmapInfo,
  source: PngHeader,
  layout: Layout,
  palette: Palette | undefined,
): Uint8Array | Uint16Array {
  const direct = !info.interlace && source.colorType !== 3;
  if (direct && info.depth === 8) return ownedBytes(unfiltered);
  if (direct && info.depth === 16) return bigEndianToUint16(unfiltered);
  const stored = unpackSamples(unfiltered, info);
  if (palette) return depalette(stored as Uint8Array, palette, layout.channels);
  if (info.depth < 8) return promoteGray(stored as Uint8Array, info.depth);
  return stored;
}

/**
 * Small Buffers live in Node's shared pool; the Raster must own its memory (it may be transferred). The
 * in-place unfilter leaves a view of the inflated buffer that is `height` bytes (the filter bytes) short
 * of its end: that slack is kept rather than copying the image.
 */
function ownedBytes(b: Buffer): Uint8Array {
  if (b.byteOffset === 0 && b.buffer.byteLength - b.length <= (b.length >> 8) + 1 && b.buffer.byteLength >= 4096) {
    return new Uint8Array(b.buffer, 0, b.length);
  }
  return new Uint8Array(b);
}

function bigEndianToUint16(b: Buffer): Uint16Array {
  const out = new Uint16Array(b.length >> 1);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) out[i] = (b[j]! << 8) | b[j + 1]!;
  return out;
}

/** Where each Adam7 pass starts and how far apart its pixels are (PNG spec, section 8.2). */
const ADAM7 = [
  { x0: 0, y0: 0, dx: 8, dy: 8 },
  { x0: 4, y0: 0, dx: 8, dy: 8 },
  { x0: 0, y0: 4, dx: 4, dy: 8 },
  { x0: 2, y0: 0, dx: 4, dy: 4 },
  { x0: 0, y0: 2, dx: 2, dy: 4 },
  { x0: 1, y0: 0, dx: 2, dy: 2 },
  { x0: 0, y0: 1, dx: 1, dy: 2 },
];

/**
 * Stored samples (gray, palette indices or channels; 1-16 bits) in raster order, de-interlaced.
 * pngjs's bitmapper does this through RGBA with a per-pixel closure and array slicing for sub-byte
 * depths: 1.9 s for a 2 MP 1-bit image (a few-KB file could hold a worker for a minute at the pixel
 * limit), 0.8 s for 2 MP 16-bit RGBA. This loop is linear and allocation-free; pngjs still provides the
 * pass geometry (lib/interlace.js) and its full decode is the reference in the tests.
 */
function unpackSamples(unfiltered: Buffer, info: BitmapInfo): Uint8Array | Uint16Array {
  const { width, height, depth, bpp: channels } = info;
  const out = depth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  const passes = info.interlace
    ? interlace.getImagePasses(width, height).map((p) => ({ ...p, ...ADAM7[p.index]! }))
    : [{ width, height, x0: 0, y0: 0, dx: 1, dy: 1 }];
  let at = 0;
  for (const pass of passes) {
    const samples = pass.width * channels;
    for (let py = 0; py < pass.height; py++) {
      const rowStart = ((pass.y0 + py * pass.dy) * width + pass.x0) * channels;
      const step = pass.dx * channels;
      for (let i = 0; i < samples; i++) {
        const px = (i / channels) | 0;
        out[rowStart + px * step + (i - px * channels)] = readSample(unfiltered, at, i, depth);
      }
      at += rowBytes(pass.width, info);
    }
  }
  return out;
}

/** Sample i of the row starting at byte `at`: big-endian for 16 bits, most significant bits first below 8. */
function readSample(buf: Buffer, at: number, i: number, depth: number): number {
  if (depth === 8) return buf[at + i]!;
  if (depth === 16) return (buf[at + 2 * i]! << 8) | buf[at + 2 * i + 1]!;
  const bit = i * depth;
  return (buf[at + (bit >> 3)]! >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
}

function depalette(indices: Uint8Array, palette: Palette, channels: number): Uint8Array {
  const out = new Uint8Array(indices.length * channels);
  const table = palette.rgba;
  for (let p = 0, o = 0; p < indices.length; p++, o += channels) {
    const index = indices[p]!;
    if (index >= palette.entries) {
      throw new StegoError('corrupt_png', `corrupt PNG: palette index ${index} outside the ${palette.entries}-entry PLTE`);
    }
    for (let c = 0; c < channels; c++) out[o + c] = table[index * 4 + c]!;
  }
  return out;
}

/** 1/2/4-bit gray becomes 8-bit by the PNG spec's exact scaling (x * 255 / (2^d - 1)): 255, 85, 17. */
function promoteGray(gray: Uint8Array, depth: number): Uint8Array {
  const scale = 255 / (2 ** depth - 1);
  for (let p = 0; p < gray.length; p++) gray[p] = gray[p]! * scale;
  return gray;
}

function transparentKey(split: SplitPng, source: PngHeader, grayScale: number): number[] | undefined {
  if (source.colorType !== 0 && source.colorType !== 2) return undefined;
  const trns = split.ancillary.find((c) => c.name === 'tRNS')?.data;
  const samples = source.colorType === 0 ? 1 : 3;
  if (!trns || trns.length < samples * 2) return undefined;
  const mask = 2 ** source.bitDepth - 1;
  return Array.from({ length: samples }, (_, i) => (((trns[i * 2]! << 8) | trns[i * 2 + 1]!) & mask) * grayScale);
}
