// The checks a PNG upload passes while it is still arriving, so a hostile file is refused at the byte
// that makes it hostile instead of after the whole body was received, parsed and queued:
//   - byte 8: the signature (not_png);
//   - byte 33: IHDR — a 13-byte first chunk with a valid CRC and legal fields (corrupt_png), and its
//     width × height within the pixel limit (image_too_large): a decompression bomb is refused from its
//     header, before a byte of its image data arrives;
//   - every chunk header (8 bytes): a plausible length and type (corrupt_png), the chunk count
//     (too_many_chunks) and the running sum of ancillary data bytes, counted from the declared lengths
//     (ancillary_too_large) — a 40 MB tEXt chunk is refused at its header.
// The same codes and messages as the full check (header.ts readHeader, chunks.ts splitPng), which still
// runs on the complete file: this scanner refuses early, it never accepts anything the full check would
// refuse. Cost: a few integer reads per chunk header, no allocation per chunk, so even a file made of
// nothing but chunk headers is walked at memory speed.
import { StegoError } from '../errors.js';
import type { ChunkLimits } from './chunks.js';
import { assertWithinPixelLimit, PNG_SIGNATURE, readHeader } from './header.js';

/** Signature + IHDR chunk (length, type, 13 data bytes, CRC). */
const HEADER_BYTES = 33;
const MAX_CHUNK_LENGTH = 2 ** 31 - 1;
/** Chunk types as big-endian integers. */
const IHDR = 0x49484452;
const PLTE = 0x504c5445;
const IDAT = 0x49444154;
const IEND = 0x49454e44;

export interface UploadScanLimits extends ChunkLimits {
  maxPixels: number;
}

function isLetter(b: number): boolean {
  const c = b | 0x20;
  return c >= 0x61 && c <= 0x7a;
}

export class PngUploadScanner {
  /** Bytes of the file seen so far. */
  private seen = 0;
  /** Offset (in the file) of the next chunk header. */
  private next = HEADER_BYTES;
  private readonly head = new Uint8Array(HEADER_BYTES);
  /** A chunk header split across two pieces. */
  private readonly partial = new Uint8Array(8);
  private partialFill = 0;
  private count = 1;
  private ancillary = 0;
  /** IEND reached (trailing bytes are ignored, as the full check does). */
  private done = false;

  constructor(private readonly limits: UploadScanLimits) {}

  /** Bytes of the file received so far. */
  get bytesSeen(): number {
    return this.seen;
  }

  /** Feeds the next bytes of the file; throws the StegoError of the first check that fails. */
  push(bytes: Uint8Array): void {
    let at = 0;
    if (this.seen < HEADER_BYTES) at = this.takeHeader(bytes);
    while (!this.done && at < bytes.length) {
      const pos = this.seen + at;
      if (pos < this.next) {
        at += Math.min(bytes.length - at, this.next - pos);
        continue;
      }
      if (this.partialFill === 0 && bytes.length - at >= 8) {
        this.onChunk(bytes, at, pos + 8);
        at += 8;
        continue;
      }
      const take = Math.min(8 - this.partialFill, bytes.length - at);
      this.partial.set(bytes.subarray(at, at + take), this.partialFill);
      this.partialFill += take;
      at += take;
      if (this.partialFill < 8) break;
      this.partialFill = 0;
      this.onChunk(this.partial, 0, this.seen + at);
    }
    this.seen += bytes.length;
  }

  /** Collects the first 33 bytes; checks the signature as soon as it is complete, IHDR once it is. */
  private takeHeader(bytes: Uint8Array): number {
    const take = Math.min(HEADER_BYTES - this.seen, bytes.length);
    this.head.set(bytes.subarray(0, take), this.seen);
    const have = this.seen + take;
    for (let i = this.seen; i < Math.min(have, PNG_SIGNATURE.length); i++) {
      if (this.head[i] !== PNG_SIGNATURE[i]) throw new StegoError('not_png', 'not a PNG image: the 8-byte PNG signature is missing or damaged');
    }
    if (have === HEADER_BYTES) assertWithinPixelLimit(readHeader(this.head), this.limits.maxPixels);
    return take;
  }

  private onChunk(b: Uint8Array, at: number, dataStart: number): void {
    const length = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
    if (length > MAX_CHUNK_LENGTH) throw new StegoError('corrupt_png', `corrupt PNG: chunk length ${length} exceeds 2^31-1`);
    if (!isLetter(b[at + 4]!) || !isLetter(b[at + 5]!) || !isLetter(b[at + 6]!) || !isLetter(b[at + 7]!)) {
      throw new StegoError('corrupt_png', `corrupt PNG: invalid chunk type bytes at offset ${dataStart - 4}`);
    }
    const type = ((b[at + 4]! << 24) | (b[at + 5]! << 16) | (b[at + 6]! << 8) | b[at + 7]!) >>> 0;
    if (++this.count > this.limits.maxChunks) {
      throw new StegoError('too_many_chunks', `PNG has more than ${this.limits.maxChunks} chunks (the limit is ${this.limits.maxChunks})`, { maxChunks: this.limits.maxChunks });
    }
    if (type !== IHDR && type !== PLTE && type !== IDAT && type !== IEND) {
      this.ancillary += length;
      if (this.ancillary > this.limits.maxAncillaryBytes) {
        throw new StegoError(
          'ancillary_too_large',
          `PNG ancillary chunks hold more than ${this.limits.maxAncillaryBytes} bytes (the limit is ${this.limits.maxAncillaryBytes})`,
          { maxAncillaryBytes: this.limits.maxAncillaryBytes },
        );
      }
    }
    if (type === IEND) this.done = true;
    this.next = dataStart + length + 4;
  }
}
