// PNG -> Raster. Chunk walk, native inflate, then pngjs's own unfilter (lib/filter-parse) and,
// only where the stored layout differs from the Raster layout (palette, 1/2/4-bit gray, Adam7), its
// bitmapper. Measured on a 12 MP RGB photo: PNG.sync.read (always RGBA) plus an RGBA->RGB narrowing
// loop costs the public API's per-pixel bitmapper (~450 ms) and the narrowing (~150 ms), while a
// non-interlaced 8-bit image's unfiltered rows already are the Raster's samples, so that path does
// no per-pixel work at all. See docs/benchmarks.md.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { StegoError, isStegoError } from '../errors.js';
import type { PngHeader, Raster } from '../raster.js';
import { carryOver } from './carry.js';
import { splitPng, type SplitPng } from './chunks.js';
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
const bitmapper = require('pngjs/lib/bitmapper.js') as { dataToBitMap(data: Buffer, info: BitmapInfo): Buffer | Uint16Array };
const interlace = require('pngjs/lib/interlace.js') as {
  getImagePasses(width: number, height: number): { width: number; height: number }[];
};

export interface DecodeOptions {
  maxPixels: number;
}

export function decodePng(buf: Uint8Array, opts: DecodeOptions): Raster {
  const source = readHeader(buf);
  assertWithinPixelLimit(source, opts.maxPixels);
  try {
    return decodeChecked(buf, source);
  } catch (e) {
    if (isStegoError(e)) throw e;
    // pngjs internals and zlib throw plain Errors/RangeErrors on damaged data
    throw new StegoError('corrupt_png', `corrupt PNG: ${(e as Error).message}`);
  }
}

function decodeChecked(buf: Uint8Array, source: PngHeader): Raster {
  const split = splitPng(buf, source.colorType);
  const info: BitmapInfo = {
    width: source.width,
    height: source.height,
    depth: source.bitDepth,
    bpp: storedChannels(source.colorType),
    interlace: source.interlace === 1,
  };
  const unfiltered = unfilter(inflateImageData(split, info), info);
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

function inflateImageData(split: SplitPng, info: BitmapInfo): Buffer {
  const expected = filteredSize(info);
  const compressed = split.idat.length === 1 ? split.idat[0]! : Buffer.concat(split.idat, split.idatBytes);
  const inflated = zlib.inflateSync(compressed, { maxOutputLength: expected, chunkSize: Math.max(64, Math.min(expected, 64 << 20)) });
  if (inflated.length !== expected) {
    throw new StegoError('corrupt_png', `corrupt PNG: image data inflates to ${inflated.length} bytes, IHDR implies ${expected}`);
  }
  return inflated;
}

/**
 * Drives pngjs's unfilter the way its filter-parse-sync.js does, but writes each row straight into one
 * preallocated buffer instead of collecting row Buffers and concatenating them: that saved two full
 * copies of the image at peak (72 MB on a 12 MP RGB photo).
 */
function unfilter(inflated: Buffer, info: BitmapInfo): Buffer {
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
  const rgba = bitmapper.dataToBitMap(unfiltered, info);
  if (palette) return depalette(rgba as Buffer, palette, layout.channels);
  if (info.depth < 8) return promoteGray(rgba as Buffer, info.depth);
  return narrowRgba(rgba, layout.channels);
}

/** Small Buffers live in Node's shared pool; the Raster must own its memory (it may be transferred). */
function ownedBytes(b: Buffer): Uint8Array {
  if (b.byteOffset === 0 && b.buffer.byteLength === b.length) return new Uint8Array(b.buffer, 0, b.length);
  return new Uint8Array(b);
}

function bigEndianToUint16(b: Buffer): Uint16Array {
  const out = new Uint16Array(b.length >> 1);
  for (let i = 0, j = 0; i < out.length; i++, j += 2) out[i] = (b[j]! << 8) | b[j + 1]!;
  return out;
}

/** bitmapper leaves palette indices in the R slot of its RGBA output. */
function depalette(rgba: Buffer, palette: Palette, channels: number): Uint8Array {
  const pixels = rgba.length >> 2;
  const out = new Uint8Array(pixels * channels);
  const table = palette.rgba;
  for (let p = 0, o = 0; p < pixels; p++, o += channels) {
    const index = rgba[p * 4]!;
    if (index >= palette.entries) {
      throw new StegoError('corrupt_png', `corrupt PNG: palette index ${index} outside the ${palette.entries}-entry PLTE`);
    }
    for (let c = 0; c < channels; c++) out[o + c] = table[index * 4 + c]!;
  }
  return out;
}

/** 1/2/4-bit gray becomes 8-bit by the PNG spec's exact scaling (x * 255 / (2^d - 1)): 255, 85, 17. */
function promoteGray(rgba: Buffer, depth: number): Uint8Array {
  const scale = 255 / (2 ** depth - 1);
  const out = new Uint8Array(rgba.length >> 2);
  for (let p = 0; p < out.length; p++) out[p] = rgba[p * 4]! * scale;
  return out;
}

/** bitmapper expands gray to R=G=B and gray+alpha to R=G=B,A; keep the stored channels only. */
function narrowRgba(rgba: Buffer | Uint16Array, channels: number): Uint8Array | Uint16Array {
  const pixels = rgba.length >> 2;
  const out = rgba instanceof Uint16Array ? new Uint16Array(pixels * channels) : new Uint8Array(pixels * channels);
  const pick = channels === 2 ? [0, 3] : [0, 1, 2, 3].slice(0, channels);
  for (let p = 0, o = 0; p < pixels; p++) {
    for (const c of pick) out[o++] = rgba[p * 4 + c]!;
  }
  return out;
}

function transparentKey(split: SplitPng, source: PngHeader, grayScale: number): number[] | undefined {
  if (source.colorType !== 0 && source.colorType !== 2) return undefined;
  const trns = split.ancillary.find((c) => c.name === 'tRNS')?.data;
  const samples = source.colorType === 0 ? 1 : 3;
  if (!trns || trns.length < samples * 2) return undefined;
  const mask = 2 ** source.bitDepth - 1;
  return Array.from({ length: samples }, (_, i) => (((trns[i * 2]! << 8) | trns[i * 2 + 1]!) & mask) * grayScale);
}
