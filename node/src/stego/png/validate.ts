// The structural check a PNG must pass before it is stored as an object: signature and IHDR, pixel
// limit, chunk framing, order, every CRC and the chunk limits (splitPng), and an image-data stream that
// inflates, checksum included, to exactly the size IHDR implies. Cheaper than a decode (no unfiltering,
// no raster: the inflated bytes are counted and dropped as they stream), so it proves the bytes are an
// image any decoder can open, not data behind a PNG signature. Runs in the worker pool, never on the
// event loop.
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
  const got = await inflatedLength(split.idat, expected);
  if (got !== expected) throw new StegoError('corrupt_png', `corrupt PNG: image data inflates to ${got} bytes, IHDR implies ${expected}`);
  return header;
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
