// Chunk layer. Ancillary chunks are parsed and written by png-chunks-extract / png-chunks-encode.
// The image data (IDAT) deliberately bypasses both: measured on a 12 MP photo (30 MB of IDAT),
// png-chunks-extract copies byte by byte and CRCs in JS (189 ms, ~17% of the whole codec floor) and
// png-chunks-encode turns the data into a JS array (3.7 s). So a framing walk locates the IDAT run
// without copying and checks its CRCs with Node's native zlib.crc32; everything else goes through
// the libraries.
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import type { CarriedChunk } from '../raster.js';
import { PNG_SIGNATURE, chunkCrc, readUint32BE } from './header.js';

interface LibChunk {
  name: string;
  data: Uint8Array;
}
const require = createRequire(import.meta.url);
const extractChunks = require('png-chunks-extract') as (data: Uint8Array) => LibChunk[];
const encodeChunks = require('png-chunks-encode') as (chunks: LibChunk[]) => Uint8Array;

const MAX_CHUNK_LENGTH = 2 ** 31 - 1;
/** Critical chunks this decoder understands; any other critical chunk makes the image undecodable. */
const KNOWN_CRITICAL = new Set(['IHDR', 'PLTE', 'IDAT', 'IEND']);

export interface SplitPng {
  /** IDAT payloads in order (views into the input, not copies). */
  idat: Uint8Array[];
  idatBytes: number;
  /** PLTE data when present. */
  palette: Uint8Array | undefined;
  /** Every other chunk except IHDR/IEND, CRC-checked and parsed by png-chunks-extract. */
  ancillary: CarriedChunk[];
}

interface Frame {
  name: string;
  start: number; // offset of the length field
  dataStart: number;
  length: number;
}

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

/** Walks length/type/CRC framing from the signature to IEND without copying chunk data. */
function walkFrames(buf: Uint8Array): Frame[] {
  const frames: Frame[] = [];
  let at = PNG_SIGNATURE.length;
  for (;;) {
    if (at + 12 > buf.length) corrupt('truncated: the file ends before IEND');
    const length = readUint32BE(buf, at);
    if (length > MAX_CHUNK_LENGTH) corrupt(`chunk length ${length} exceeds 2^31-1`);
    if (!isChunkName(buf, at + 4)) corrupt(`invalid chunk type bytes at offset ${at + 4}`);
    const name = String.fromCharCode(buf[at + 4]!, buf[at + 5]!, buf[at + 6]!, buf[at + 7]!);
    const dataStart = at + 8;
    if (dataStart + length + 4 > buf.length) corrupt(`truncated inside the ${name} chunk`);
    frames.push({ name, start: at, dataStart, length });
    at = dataStart + length + 4;
    if (name === 'IEND') return frames;
  }
}

function checkStructure(frames: Frame[], colorType: number): void {
  const names = frames.map((f) => f.name);
  const firstIdat = names.indexOf('IDAT');
  const lastIdat = names.lastIndexOf('IDAT');
  if (firstIdat < 0) corrupt('no IDAT chunk');
  if (names.slice(firstIdat, lastIdat + 1).some((n) => n !== 'IDAT')) corrupt('IDAT chunks are not consecutive');
  if (names.indexOf('IHDR', 1) >= 0) corrupt('more than one IHDR');
  const plte = names.indexOf('PLTE');
  if (colorType === 3 && plte < 0) corrupt('palette image without PLTE');
  if (plte > firstIdat) corrupt('PLTE after IDAT');
  for (const n of names) {
    const critical = (n.charCodeAt(0) & 0x20) === 0;
    if (critical && !KNOWN_CRITICAL.has(n)) {
      throw new StegoError('unsupported_png', `PNG uses the unknown critical chunk ${n}, which no standard decoder can interpret`);
    }
  }
}

function positionOf(frameIndex: number, plteIndex: number, firstIdat: number): CarriedChunk['position'] {
  if (frameIndex > firstIdat) return 'afterIDAT';
  if (plteIndex >= 0 && frameIndex > plteIndex) return 'beforeIDAT';
  return 'beforePLTE';
}

/** Splits a PNG whose IHDR was already validated (readHeader) into image data and other chunks. */
export function splitPng(buf: Uint8Array, colorType: number): SplitPng {
  const frames = walkFrames(buf);
  checkStructure(frames, colorType);
  const idatFrames = frames.filter((f) => f.name === 'IDAT');
  for (const f of idatFrames) {
    if (chunkCrc(buf, f.start + 4, f.length) !== readUint32BE(buf, f.dataStart + f.length)) corrupt('IDAT CRC mismatch');
  }
  const others = frames.filter((f) => f.name !== 'IDAT');
  const parsed = extractViaLibrary(buf, others);
  const names = frames.map((f) => f.name);
  const plteIndex = names.indexOf('PLTE');
  const firstIdat = names.indexOf('IDAT');
  const ancillary: CarriedChunk[] = [];
  let palette: Uint8Array | undefined;
  parsed.forEach((chunk, i) => {
    if (chunk.name === 'PLTE') palette = chunk.data;
    if (KNOWN_CRITICAL.has(chunk.name)) return;
    ancillary.push({ name: chunk.name, data: chunk.data, position: positionOf(frames.indexOf(others[i]!), plteIndex, firstIdat) });
  });
  const idat = idatFrames.map((f) => buf.subarray(f.dataStart, f.dataStart + f.length));
  return { idat, idatBytes: idatFrames.reduce((n, f) => n + f.length, 0), palette, ancillary };
}

/** Hands the non-IDAT chunks (a small PNG of their own) to png-chunks-extract, which checks their CRCs. */
function extractViaLibrary(buf: Uint8Array, frames: Frame[]): LibChunk[] {
  const parts: Uint8Array[] = [PNG_SIGNATURE];
  for (const f of frames) parts.push(buf.subarray(f.start, f.dataStart + f.length + 4));
  try {
    return extractChunks(Buffer.concat(parts));
  } catch (e) {
    throw new StegoError('corrupt_png', `corrupt PNG: ${(e as Error).message}`);
  }
}

/** Serialises chunks with png-chunks-encode; `withSignature: false` strips the 8 signature bytes it always writes. */
export function encodeSmallChunks(chunks: LibChunk[], withSignature: boolean): Uint8Array {
  const out = encodeChunks(chunks);
  return withSignature ? out : out.subarray(PNG_SIGNATURE.length);
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
