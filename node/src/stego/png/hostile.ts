// Hostile PNG files for tests and the abuse benchmark: valid framing and CRCs around the shapes that
// used to cost time or memory (many chunks, huge ancillary chunks, decompression bombs, truncation).
import zlib from 'node:zlib';
import { encodeSmallChunks, idatChunkParts } from './chunks.js';
import { PNG_SIGNATURE } from './header.js';

const IEND_BYTES = 12;

/** `png` with `count` tEXt chunks of `bytesEach` data bytes inserted after IHDR. */
export function withTextChunks(png: Uint8Array, count: number, bytesEach = 8): Buffer {
  const data = Buffer.alloc(bytesEach, 0x61);
  data.write('k\0', 0, 'latin1');
  const one = Buffer.from(encodeSmallChunks([{ name: 'tEXt', data }], false));
  const afterIhdr = PNG_SIGNATURE.length + 25;
  const parts: Uint8Array[] = [png.subarray(0, afterIhdr)];
  for (let i = 0; i < count; i++) parts.push(one);
  parts.push(png.subarray(afterIhdr));
  return Buffer.concat(parts);
}

/** `png` with one tEXt chunk of `bytes` data bytes after IHDR. */
export function withBigTextChunk(png: Uint8Array, bytes: number): Buffer {
  return withTextChunks(png, 1, bytes);
}

/** `png` cut `bytes` before its end (inside IEND or deeper). */
export function truncated(png: Uint8Array, bytes = IEND_BYTES): Buffer {
  return Buffer.from(png.subarray(0, Math.max(0, png.length - bytes)));
}

/**
 * A small file that inflates to height × (1 + width × 4) bytes of zeros (8-bit RGBA): a decompression
 * bomb with an honest IHDR. The zeros are streamed through deflate, never held whole.
 */
export async function decompressionBomb(width: number, height: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const row = Buffer.alloc(1 + width * 4);
  const deflate = zlib.createDeflate({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (b: Buffer) => out.push(b));
  const ended = new Promise((resolve, reject) => {
    deflate.on('end', resolve);
    deflate.on('error', reject);
  });
  for (let y = 0; y < height; y++) {
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  }
  deflate.end();
  await ended;
  const head = encodeSmallChunks([{ name: 'IHDR', data: ihdr }], true);
  const tail = encodeSmallChunks([{ name: 'IEND', data: new Uint8Array(0) }], false);
  return Buffer.concat([head, ...idatChunkParts([Buffer.concat(out)]), tail]);
}

/** Pseudo-random bytes (seeded) behind a PNG signature: what used to be stored as an object. */
export function randomBehindSignature(bytes: number, seed = 7): Buffer {
  const junk = Buffer.alloc(bytes);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    junk[i] = x & 0xff;
  }
  return Buffer.concat([PNG_SIGNATURE, junk]);
}
