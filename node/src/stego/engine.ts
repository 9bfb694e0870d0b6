// The steganography engine as the HTTP layer and the CLI see it: PNG bytes in, PNG bytes or a payload out.
// Pure functions of buffers (no HTTP, no files); meant to run inside a worker thread. Each call decodes the
// image once (after refusing non-PNGs and oversized images from IHDR alone; for extract, very large
// images are unfiltered as they stream out of inflate), works on that one raster in place, and encodes it once:
// memory per call is the input, one raster and the output.

import { assertWithinPixelLimit, readHeader } from './png/header.js';
import { decodePng, decodePngForExtract, type ExtractDecoded } from './png/decode.js';
import { encodePng } from './png/encode.js';
import { hideInRaster, payloadSize as contentSize, rasterCapacity, revealFromRaster, type Payload } from './payload.js';
import type { Raster } from './raster.js';

export type { Payload } from './payload.js';

export interface EngineOptions {
  passphrase?: string | undefined;
  /** Refuse images with more pixels than this, before decoding (decompression bombs). */
  maxPixels?: number | undefined;
  /**
   * scrypt cost with a passphrase, N = 2^log2N (default 15; tests use less). Not stored in the image (a
   * sealed frame has nothing public), so extracting needs the value the image was embedded with.
   */
  scryptLog2N?: number | undefined;
  /**
   * embed and extract: the caller gives the input PNG up, and its memory is freed as soon as it is
   * decoded (its ArrayBuffer is detached; honoured only when the view spans the whole ArrayBuffer). The
   * worker, which receives every input transferred, sets it: the input then is not resident beside the
   * raster and the encoded output, which is what bounds an embed's peak memory, and its IDAT chunks are
   * joined in place rather than copied (an extract of a 12 MP photo: ~10 ms less).
   */
  consumeInput?: boolean | undefined;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

export async function embed(png: Uint8Array, payload: Payload, opts: EngineOptions = {}): Promise<Buffer> {
  const raster = decode(png, opts, opts.consumeInput === true);
  await hideInRaster(raster, payload, opts);
  return encodePng(raster);
}

/**
 * Without a passphrase, the IDAT CRCs are checked only if the extract fails (decodePngForExtract says
 * why and what that keeps); with one, scrypt's tens of ms dwarf them, and the input is freed before it
 * runs rather than kept for a later check.
 */
export async function extract(png: Uint8Array, opts: EngineOptions = {}): Promise<Payload> {
  const decoded = await decodeForExtract(png, opts);
  if (opts.passphrase !== undefined && opts.passphrase !== '') {
    try {
      decoded.checkImageDataCrcs();
    } finally {
      decoded.release();
    }
    return revealFromRaster(decoded.raster, opts);
  }
  try {
    return await revealFromRaster(decoded.raster, opts);
  } catch (e) {
    decoded.checkImageDataCrcs();
    throw e;
  } finally {
    decoded.release();
  }
}

/** capacityBytes is 0 both when exactly an empty payload fits and when the image is too small for any. */
export async function capacity(
  png: Uint8Array,
  opts: EngineOptions = {},
): Promise<{ width: number; height: number; capacityBytes: number }> {
  const raster = decode(png, opts);
  return { width: raster.width, height: raster.height, capacityBytes: Math.max(0, rasterCapacity(raster, opts)) };
}

/** Bytes a payload counts against `capacityBytes` (UTF-8 text; for a file 1 + filename bytes + data). */
export function payloadSize(payload: Payload, _opts: EngineOptions = {}): number {
  return contentSize(payload);
}

/**
 * Embed and capacity decode on the calling (worker) thread: its CPU priority is what keeps image work
 * behind the node's main loop, and the encode that follows already keeps the libuv threadpool busy.
 */
function decode(png: Uint8Array, opts: EngineOptions, consumeInput = false): Raster {
  return decodePng(png, { maxPixels: pixelLimit(png, opts), consumeInput });
}

/**
 * Extract is decode plus a read of a few thousand samples, so its time is the decode's. Very large
 * images stream (zlib inflates on the threadpool while this thread unfilters); the others decode on this
 * thread, which measured faster under load (png/decode.ts, STREAM_FROM_BYTES, says why).
 */
function decodeForExtract(png: Uint8Array, opts: EngineOptions): Promise<ExtractDecoded> {
  return decodePngForExtract(png, { maxPixels: pixelLimit(png, opts), consumeInput: opts.consumeInput === true });
}

function pixelLimit(png: Uint8Array, opts: EngineOptions): number {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  assertWithinPixelLimit(readHeader(png), maxPixels);
  return maxPixels;
}
