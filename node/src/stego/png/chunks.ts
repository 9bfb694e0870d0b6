// Chunk layer: one linear pass over the file's length/type/CRC framing, CRCs checked with Node's
// native zlib.crc32, chunk data handed on as views into the input (never copied). png-chunks-extract
// and png-chunks-encode (the references in codec.test.ts) copy byte by byte and CRC in JS, and the
// encoder turns every chunk's data into a JS array (a 40 MB tEXt chunk: 9 s and ~1 GB); the old
// extract path also looked each chunk up in the frame list (quadratic in the chunk count: 1M chunks ran
// for minutes). So framing is done here, in time linear in the file size, and hostile files are
// bounded by two limits checked during the walk, before any chunk data is touched:
//   - maxChunks: chunks of any kind (IDAT included: encoders split image data into 8-64 KiB chunks, so
//     a 50 MB file of 8 KiB IDAT chunks has ~6,400), default 20,000;
//   - maxAncillaryBytes: data bytes of every chunk other than IHDR/PLTE/IDAT/IEND (text, ICC profile,
//     Exif...), default 8 MiB: all of them are carried into the output, so they cost memory twice.
// Both answer 413 with their own code (too_many_chunks, ancillary_too_large).
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import type { CarriedChunk } from '../raster.js';
import { PNG_SIGNATURE, readUint32BE } from './header.js';

interface LibChunk {
  name: string;
  data: Uint8Array;
}

const MAX_CHUNK_LENGTH = 2 ** 31 - 1;
/** Critical chunks this decoder understands; any other critical chunk makes the image undecodable. */
const KNOWN_CRITICAL = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND']);

export interface ChunkLimits {
  /** Most chunks (of every kind) a PNG may have. */
  maxChunks: number;
  /** Most data bytes, summed over every ancillary chunk. */
  maxAncillaryBytes: number;
}

export const DEFAULT_CHUNK_LIMITS: Readonly<ChunkLimits> = { maxChunks: 20_000, maxAncillaryBytes: 8 * 1024 * 1024 };

let processLimits: ChunkLimits = { ...DEFAULT_CHUNK_LIMITS };

/**
 * Sets the limits every later splitPng call in this thread applies by default. The worker pool calls it
 * once per worker thread with the node's configuration (STEGO_MAX_PNG_CHUNKS, STEGO_MAX_ANCILLARY_BYTES),
 * so the engine's signatures need not carry them.
 */
export function configureChunkLimits(limits: Partial<ChunkLimits>): void {
  processLimits = { ...processLimits, ...limits };
}

export function chunkLimits(): Readonly<ChunkLimits> {
  return processLimits;
}

export interface SplitPng {
  /** IDAT payloads in order (views into the input, not copies). */
  idat: Uint8Array[];
  idatBytes: number;
  /** PLTE data when present. */
  palette: Uint8Array | undefined;
  /** Every other chunk except IHDR/IEND, CRC-checked, data as views into the input. */
  ancillary: CarriedChunk[];
  /**
   * With `deferIdatCrc`: the CRC stored with each IDAT chunk, unchecked (checkIdatCrcs checks them
   * against `idat`). Absent when splitPng checked them.
   */
  idatCrcs?: number[];
}

/** CRC-32 of the chunk type "IDAT": an IDAT chunk's CRC is this continued over its data. */
const IDAT_TYPE_CRC = zlib.crc32('IDAT');

const corrupt = (message: string): never => {
  throw new StegoError('corrupt_png', `corrupt PNG: ${message}`);
};

function isChunkName(buf: Uint8Array, at: number): boolean {
  for (let i = at; i < at + 4; i++) {
    const c = buf[i]! | 0x20; // ASCII letters only, either case
    if (c < 0x61 || c > 0x7a) return false;
  }
  return true;
}

function isCritical(name: string): boolean {
  return (name.charCodeAt(0) & 0x20) === 0;
}

/**
 * Splits a PNG whose IHDR was already validated (readHeader) into image data and other chunks, checking
 * framing, order, every CRC and the limits in one pass.
 *
 * `deferIdatCrc` (extract): the IDAT chunks' CRCs are recorded in `idatCrcs` instead of checked, and are
 * checked here only if the split fails, so a failure answers exactly what the checking split would have
 * (a bad IDAT CRC ahead of any later defect). The caller owes checkIdatCrcs whenever anything later fails.
 */
export function splitPng(buf: Uint8Array, colorType: number, limits: ChunkLimits = processLimits, deferIdatCrc = false): SplitPng {
  if (!deferIdatCrc) return splitChunks(buf, colorType, limits, undefined);
  const idatCrcs: number[] = [];
  const recorded: Uint8Array[] = [];
  try {
    return { ...splitChunks(buf, colorType, limits, { crcs: idatCrcs, data: recorded }), idatCrcs };
  } catch (e) {
    checkIdatCrcs(recorded, idatCrcs);
    throw e;
  }
}

/**
 * Throws splitPng's error for a bad IDAT CRC (corrupt_png, "IDAT CRC mismatch") if the CRC stored with
 * any of the IDAT chunks `idat` does not match its data. The data may have moved since the split (the
 * in-place join moves it over the chunk framing): the CRCs were read out before.
 */
export function checkIdatCrcs(idat: readonly Uint8Array[], crcs: readonly number[]): void {
  for (let i = 0; i < idat.length; i++) {
    if (zlib.crc32(idat[i]!, IDAT_TYPE_CRC) !== crcs[i]) corrupt('IDAT CRC mismatch');
  }
}

function splitChunks(
  buf: Uint8Array,
  colorType: number,
  limits: ChunkLimits,
  deferred: { crcs: number[]; data: Uint8Array[] } | undefined,
): SplitPng {
  const idat: Uint8Array[] = [];
  const ancillary: CarriedChunk[] = [];
  let idatBytes = 0;
  let ancillaryBytes = 0;
  let palette: Uint8Array | undefined;
  let count = 0;
  /** 0: before PLTE, 1: after PLTE, 2: inside the IDAT run, 3: after it. */
  let phase = 0;
  let at = PNG_SIGNATURE.length;
  for (;;) {
    if (at + 12 > buf.length) corrupt('truncated: the file ends before IEND');
    const length = readUint32BE(buf, at);
    if (length > MAX_CHUNK_LENGTH) corrupt(`chunk length ${length} exceeds 2^31-1`);
    if (!isChunkName(buf, at + 4)) corrupt(`invalid chunk type bytes at offset ${at + 4}`);
    const name = String.fromCharCode(buf[at + 4]!, buf[at + 5]!, buf[at + 6]!, buf[at + 7]!);
    const dataStart = at + 8;
    if (dataStart + length + 4 > buf.length) corrupt(`truncated inside the ${name} chunk`);
    if (++count > limits.maxChunks) {
      throw new StegoError('too_many_chunks', `PNG has more than ${limits.maxChunks} chunks (the limit is ${limits.maxChunks})`, { maxChunks: limits.maxChunks });
    }
    const known = KNOWN_CRITICAL.has(name);
    if (!known) {
      ancillaryBytes += length;
      if (ancillaryBytes > limits.maxAncillaryBytes) {
        throw new StegoError(
          'ancillary_too_large',
          `PNG ancillary chunks hold more than ${limits.maxAncillaryBytes} bytes (the limit is ${limits.maxAncillaryBytes})`,
          { maxAncillaryBytes: limits.maxAncillaryBytes },
        );
      }
    }
    const data = buf.subarray(dataStart, dataStart + length);
    if (deferred !== undefined && name === 'IDAT') {
      deferred.crcs.push(readUint32BE(buf, dataStart + length));
      deferred.data.push(data);
    } else if (zlib.crc32(buf.subarray(at + 4, dataStart + length)) !== readUint32BE(buf, dataStart + length)) {
      corrupt(`${name} CRC mismatch`);
    }
    at = dataStart + length + 4;
    if (name === 'IEND') break;
    if (name === 'IDAT') {
      if (phase === 3) corrupt('IDAT chunks are not consecutive');
      phase = 2;
      idat.push(data);
      idatBytes += length;
      continue;
    }
    if (phase === 2) phase = 3;
    if (name === 'IHDR') {
      if (count !== 1) corrupt('more than one IHDR');
      continue;
    }
    if (name === 'PLTE') {
      if (phase >= 2) corrupt('PLTE after IDAT');
      palette = data;
      phase = 1;
      continue;
    }
    if (isCritical(name) && !known) {
      throw new StegoError('unsupported_png', `PNG uses the unknown critical chunk ${name}, which no standard decoder can interpret`);
    }
    ancillary.push({ name, data, position: phase >= 2 ? 'afterIDAT' : phase === 1 ? 'beforeIDAT' : 'beforePLTE' });
  }
  if (idat.length === 0) corrupt('no IDAT chunk');
  if (colorType === 3 && !palette) corrupt('palette image without PLTE');
  return { idat, idatBytes, palette, ancillary };
}

/** Serialises chunks (CRC by zlib.crc32); `withSignature: false` leaves out the 8 signature bytes. */
export function encodeSmallChunks(chunks: LibChunk[], withSignature: boolean): Uint8Array {
  let total = withSignature ? PNG_SIGNATURE.length : 0;
  for (const c of chunks) total += 12 + c.data.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  if (withSignature) {
    out.set(PNG_SIGNATURE, 0);
    at = PNG_SIGNATURE.length;
  }
  for (const c of chunks) {
    out.writeUInt32BE(c.data.length, at);
    out.write(c.name, at + 4, 4, 'latin1');
    out.set(c.data, at + 8);
    out.writeUInt32BE(zlib.crc32(out.subarray(at + 4, at + 8 + c.data.length)), at + 8 + c.data.length);
    at += 12 + c.data.length;
  }
  return out;
}

/**
 * One IDAT chunk around already-compressed parts (no copy: length, type, the parts, CRC), framed here
 * because png-chunks-encode is O(n) JS arrays.
 */
export function idatChunkParts(parts: Uint8Array[]): Uint8Array[] {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(parts.reduce((n, p) => n + p.length, 0), 0);
  head.write('IDAT', 4, 'latin1');
  let crc = zlib.crc32(head.subarray(4));
  for (const part of parts) crc = zlib.crc32(part, crc);
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc, 0);
  return [head, ...parts, tail];
}
