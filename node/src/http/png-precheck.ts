// The header check of a complete PNG on the main thread: the signature and IHDR (the first 33 bytes), to
// refuse non-PNG input and decompression bombs before a job is queued, so a worker and a queue slot are
// never spent on an upload that cannot succeed. Uploads already had these bytes checked while arriving
// (png/upload-scan.ts); this covers the default cover and bodies shorter than the header.
import { readHeader, assertWithinPixelLimit } from '../stego/png/header.js';
import type { PngHeader } from '../stego/raster.js';

export function precheckPng(png: Uint8Array, maxPixels: number): PngHeader {
  const header = readHeader(png);
  assertWithinPixelLimit(header, maxPixels);
  return header;
}
