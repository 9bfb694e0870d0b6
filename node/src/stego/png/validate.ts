// The structural check a PNG must pass before it is stored as an object: signature and IHDR, pixel
// limit, chunk framing, order, every CRC and the chunk limits (splitPng), and an image-data stream that
// inflates, checksum included, to exactly the size IHDR implies. Cheaper than a decode (no unfiltering,
// no raster: the inflated bytes are counted and dropped as they stream), so it proves the bytes are an
// image any decoder can open, not data behind a PNG signature. Large images are checked in the worker
// pool; small ones (workers/raw-png.ts, validatesInline) on the HTTP thread, where this costs microseconds.
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import type { PngHeader } from '../raster.js';
import { splitPng, type ChunkLimits } from './chunks.js';
import { filteredSize } from './decode.js';
import { assertWithinPixelLimit, readHeader, storedChannels } from './header.js';

export interface ValidateOptions {
  maxPixels: number;
  limits?: ChunkLimits;
}

export async function validatePng(buf: Uint8Array, opts: ValidateOptions): Promise<PngHeader> {
  const header = readHeader(buf);
  assertWithinPixelLimit(header, opts.maxPixels);
  const split = splitPng(buf, header.colorType, opts.limits);
  const expected = filteredSize({
    width: header.width,
    height: header.height,
    depth: header.bitDepth,
    bpp: storedChannels(header.colorType),
    interlace: header.interlace === 1,
  });
  const got = expected <= SYNC_INFLATE_MAX_BYTES ? inflatedLengthSync(split.idat, expected) : await inflatedLength(split.idat, expected);
  if (got !== expected) throw new StegoError('corrupt_png', `corrupt PNG: image data inflates to ${got} bytes, IHDR implies ${expected}`);
  return header;
}

/**
 * Image data that inflates to at most this many bytes is inflated in one synchronous call. A small object
 * upload (the common replicated write) then costs one zlib handle and one output buffer instead of a
 * stream's 64 KiB buffers, threadpool round trips and events: measured on bench:raft, the streamed
 * inflate of a ~1 KiB PNG was the largest single cost of a write on the leader's HTTP thread.
 */
const SYNC_INFLATE_MAX_BYTES = 1024 * 1024;

/** Inflates `parts` as one zlib stream in one call; the length, or corrupt_png past `limit` bytes. */
function inflatedLengthSync(parts: Uint8Array[], limit: number): number {
  const input = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  try {
    // one more byte than allowed is enough to tell "too long" from "exactly right"
    return zlib.inflateSync(input, { chunkSize: Math.max(64, limit + 1), maxOutputLength: limit + 1 }).byteLength;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new StegoError('corrupt_png', `corrupt PNG: image data inflates to more than the ${limit} bytes IHDR implies`);
    }
    throw new StegoError('corrupt_png', `corrupt PNG: bad image data: ${(e as Error).message}`);
  }
}

/** Inflates `parts` as one zlib stream, counting output without keeping it; stops past `limit` bytes. */
function inflatedLength(parts: Uint8Array[], limit: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const inflate = zlib.createInflate({ chunkSize: 64 * 1024 });
    let total = 0;
    let settled = false;
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      inflate.destroy();
      reject(new StegoError('corrupt_png', `corrupt PNG: ${message}`));
    };
    inflate.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > limit) fail(`image data inflates to more than the ${limit} bytes IHDR implies`);
    });
    inflate.on('error', (e) => fail(`bad image data: ${e.message}`));
    inflate.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(total);
    });
    for (const p of parts) inflate.write(p);
    inflate.end();
  });
}
