// Payload content, and the public frame (docs/stego-format.md has the full description).
//
// The public frame is what a payload without passphrase is written as: a small header followed by a
// body, both in the default slot order, readable by anyone with this tool (there is no secret to keep).
// Payloads with a passphrase are written as sealed frames (sealed.ts), which have no public part. This
// reader also reads version-1 encrypted frames, whose header was public and whose body lived in an order
// keyed by the passphrase. The header starts with a fixed 11-byte prefix that says how long the header
// is, and the header says how long the body is, so extraction reads exactly the bits it needs.
//
//   0  magic "STGC"          4
//   4  version               1   (2 written; 1 and 2 read)
//   5  header length H       1   (15 plain, 40 encrypted; includes the CRC)
//   6  flags                 1   bit 0 file (else text), bit 1 encrypted; other bits 0
//   7  body length L         4   big-endian
//  11  [v1 encrypted] salt 16, scrypt log2N 1, verifier 8
// H-4  CRC-32 of bytes [0, H-4)
//
// Body, plain:         content ‖ CRC-32(content)
// Body, v1 encrypted:  nonce 12 ‖ AES-256-GCM(content, aad = header) ‖ tag 16
// Content, text:    UTF-8 bytes
// Content, file:    name length 1 ‖ UTF-8 name ‖ data

import { crc32 } from 'node:zlib';
import { StegoError } from './errors.js';
import type { Payload } from './payload.js';
import {
  assertScryptCost,
  deriveKeys,
  open,
  SALT_BYTES,
  SEAL_OVERHEAD,
  verifierMatches,
  VERIFIER_BYTES,
} from './crypto.js';

export const MAGIC = Uint8Array.of(0x53, 0x54, 0x47, 0x43); // "STGC"
/** Version written into public frames; version 1 frames are still read. */
export const FORMAT_VERSION = 2;
const LEGACY_VERSION = 1;
export const PREFIX_BYTES = 11;
const CRC_BYTES = 4;
const KDF_EXTENSION_BYTES = SALT_BYTES + 1 + VERIFIER_BYTES;
export const PLAIN_HEADER_BYTES = PREFIX_BYTES + CRC_BYTES;
export const ENCRYPTED_HEADER_BYTES = PREFIX_BYTES + KDF_EXTENSION_BYTES + CRC_BYTES;
export const PLAIN_BODY_OVERHEAD = CRC_BYTES;
/** Body overhead of a version-1 encrypted frame (read only). */
export const ENCRYPTED_BODY_OVERHEAD = SEAL_OVERHEAD;
export const MAX_FILENAME_BYTES = 255;

const FLAG_FILE = 1;
const FLAG_ENCRYPTED = 2;
const KNOWN_FLAGS = FLAG_FILE | FLAG_ENCRYPTED;

export interface EncodedFrame {
  header: Uint8Array;
  /** Follows the header in the default order. */
  body: Uint8Array;
}

/** Where decodeFrame gets its bytes from: the raster's slots, or a flat buffer in tests. */
export interface FrameReader {
  /** The next n header bytes in the default order, or null when the image has fewer slots left. */
  header(n: number): Uint8Array | null;
  /** An upper bound on the body bytes the remaining slots can hold (body() throws if it proves too high). */
  bodyBytesAvailable(): number;
  /** n body bytes in the order keyed by orderKey (null: continue the default order after the header; a key: version-1 encrypted body). */
  body(n: number, orderKey: Uint8Array | null): Uint8Array;
}

interface ParsedHeader {
  raw: Uint8Array;
  kind: Payload['kind'];
  encrypted: boolean;
  bodyLength: number;
  salt: Uint8Array;
  log2N: number;
  verifier: Uint8Array;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function headerBytes(encrypted: boolean): number {
  return encrypted ? ENCRYPTED_HEADER_BYTES : PLAIN_HEADER_BYTES;
}

export function bodyOverhead(encrypted: boolean): number {
  return encrypted ? ENCRYPTED_BODY_OVERHEAD : PLAIN_BODY_OVERHEAD;
}

// ---------- content ----------

/** Serialises a payload's content; throws invalid_request for text or names that cannot round-trip. */
export function encodeContent(payload: Payload): Uint8Array {
  assertShape(payload);
  if (payload.kind === 'text') {
    assertWellFormed(payload.text, 'message');
    return utf8.encode(payload.text);
  }
  const name = encodeFilename(payload.filename);
  const out = new Uint8Array(1 + name.length + payload.data.length);
  out[0] = name.length;
  out.set(name, 1);
  out.set(payload.data, 1 + name.length);
  return out;
}

/** Size of encodeContent's result without building it. */
export function contentBytes(payload: Payload): number {
  assertShape(payload);
  if (payload.kind === 'text') {
    assertWellFormed(payload.text, 'message');
    return Buffer.byteLength(payload.text, 'utf8');
  }
  return 1 + encodeFilename(payload.filename).length + payload.data.length;
}

// Payloads arrive from other threads and the CLI: check the shape the types promise.
function assertShape(payload: Payload): void {
  const p = payload as Partial<Record<string, unknown>>;
  const ok =
    (p['kind'] === 'text' && typeof p['text'] === 'string') ||
    (p['kind'] === 'file' && typeof p['filename'] === 'string' && p['data'] instanceof Uint8Array);
  if (!ok) throw new StegoError('invalid_request', 'payload must be {kind: "text", text} or {kind: "file", filename, data: Uint8Array}');
}

export function decodeContent(kind: Payload['kind'], content: Uint8Array): Payload {
  if (kind === 'text') return { kind: 'text', text: decodeUtf8(content, 'message') };
  const nameLength = content[0] ?? 0;
  if (nameLength === 0 || 1 + nameLength > content.length) {
    throw new StegoError('corrupt_payload', 'file payload has an empty or overlong filename field');
  }
  const filename = decodeUtf8(content.subarray(1, 1 + nameLength), 'filename');
  if (filenameProblem(filename) !== null) {
    throw new StegoError('corrupt_payload', 'file payload carries an unsafe filename');
  }
  // A fresh, exactly sized ArrayBuffer (never a view into a pooled Buffer), so a worker can transfer it.
  return { kind: 'file', filename, data: new Uint8Array(content.subarray(1 + nameLength)) };
}

function encodeFilename(filename: string): Uint8Array {
  const problem = filenameProblem(filename);
  if (problem !== null) throw new StegoError('invalid_request', `filename ${problem}`, { filename });
  const bytes = utf8.encode(filename);
  if (bytes.length > MAX_FILENAME_BYTES) {
    throw new StegoError('invalid_request', `filename is ${bytes.length} bytes of UTF-8, at most ${MAX_FILENAME_BYTES} allowed`);
  }
  return bytes;
}

// Path separators and control characters are refused so an extracted name can be written to disk or put
// in a Content-Disposition header without surprises.
function filenameProblem(filename: string): string | null {
  if (filename.length === 0) return 'must not be empty';
  if (/\p{Cs}/u.test(filename)) return 'contains an unpaired surrogate (not valid Unicode)';
  if (/[\p{Cc}/\\]/u.test(filename)) return 'must not contain path separators or control characters';
  if (filename === '.' || filename === '..') return 'must not be "." or ".."';
  return null;
}

function assertWellFormed(text: string, what: string): void {
  // A lone surrogate would be replaced by U+FFFD on encoding, so the round trip would not be exact.
  if (/\p{Cs}/u.test(text)) throw new StegoError('invalid_request', `${what} contains an unpaired surrogate (not valid Unicode)`);
}

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new StegoError('corrupt_payload', `hidden ${what} is not valid UTF-8`);
  }
}

// ---------- frame ----------

/** The public frame of a payload without passphrase (version 2; the layout is version 1's). */
export function encodeFrame(payload: Payload): EncodedFrame {
  const content = encodeContent(payload);
  const header = new Uint8Array(PLAIN_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  header[4] = FORMAT_VERSION;
  header[5] = PLAIN_HEADER_BYTES;
  header[6] = payload.kind === 'file' ? FLAG_FILE : 0;
  view.setUint32(7, content.length + PLAIN_BODY_OVERHEAD);
  view.setUint32(PLAIN_HEADER_BYTES - CRC_BYTES, crc32(header.subarray(0, PLAIN_HEADER_BYTES - CRC_BYTES)));
  return { header, body: withCrc(content) };
}

function withCrc(content: Uint8Array): Uint8Array {
  const out = new Uint8Array(content.length + CRC_BYTES);
  out.set(content, 0);
  new DataView(out.buffer).setUint32(content.length, crc32(content));
  return out;
}

/**
 * Reads a public frame; null when there is none (no magic). Throws corrupt_payload, and for version-1
 * encrypted frames passphrase_required or wrong_passphrase (their header is public, so saying so reveals
 * nothing more). A passphrase given for an unencrypted payload is not needed and is ignored.
 */
export async function decodeFrame(reader: FrameReader, passphrase?: string): Promise<Payload | null> {
  const header = readHeader(reader);
  if (header === null) return null;
  if (header.bodyLength > reader.bodyBytesAvailable()) {
    throw new StegoError('corrupt_payload', `payload header claims ${header.bodyLength} bytes, more than the image can hold`);
  }
  if (!header.encrypted) {
    return decodeContent(header.kind, checkCrc(reader.body(header.bodyLength, null)));
  }
  if (passphrase === undefined) {
    throw new StegoError('passphrase_required', 'this image carries a version-1 encrypted payload; a passphrase is required');
  }
  const keys = await deriveKeys(passphrase, header.salt, header.log2N);
  if (!verifierMatches(keys, header.verifier)) {
    throw new StegoError('wrong_passphrase', 'the passphrase does not open the hidden payload');
  }
  const sealed = reader.body(header.bodyLength, keys.orderKey);
  return decodeContent(header.kind, open(keys.aesKey, sealed, header.raw));
}

function readHeader(reader: FrameReader): ParsedHeader | null {
  const prefix = reader.header(PREFIX_BYTES);
  if (prefix === null || !MAGIC.every((b, i) => prefix[i] === b)) return null;
  const length = prefix[5]!;
  const rest = length >= PLAIN_HEADER_BYTES ? reader.header(length - PREFIX_BYTES) : null;
  if (rest === null) throw new StegoError('corrupt_payload', 'payload header is truncated or has an impossible length');
  const raw = concat(prefix, rest);
  const view = new DataView(raw.buffer);
  if (view.getUint32(length - CRC_BYTES) !== crc32(raw.subarray(0, length - CRC_BYTES))) {
    throw new StegoError('corrupt_payload', 'payload header failed its CRC-32 check');
  }
  return interpretHeader(raw, view);
}

// Runs only on a header whose CRC matched, so any oddity here is a different format, not noise.
function interpretHeader(raw: Uint8Array, view: DataView): ParsedHeader {
  const version = raw[4]!;
  if (version !== FORMAT_VERSION && version !== LEGACY_VERSION) {
    throw new StegoError(
      'corrupt_payload',
      `payload format version ${version} is not supported (this build reads versions ${LEGACY_VERSION} and ${FORMAT_VERSION})`,
      { version, supportedVersion: FORMAT_VERSION },
    );
  }
  const flags = raw[6]!;
  const encrypted = (flags & FLAG_ENCRYPTED) !== 0;
  // Version 2 never writes an encrypted public frame: passphrase payloads are sealed frames.
  const known = version === LEGACY_VERSION ? KNOWN_FLAGS : FLAG_FILE;
  if ((flags & ~known) !== 0 || raw.length !== headerBytes(encrypted)) {
    throw new StegoError('corrupt_payload', `payload header has unknown flags 0x${flags.toString(16)} or a wrong length`);
  }
  const bodyLength = view.getUint32(7);
  if (bodyLength < bodyOverhead(encrypted)) {
    throw new StegoError('corrupt_payload', 'payload body is shorter than its integrity fields');
  }
  const log2N = encrypted ? raw[PREFIX_BYTES + SALT_BYTES]! : 0;
  if (encrypted) assertScryptCost(log2N, 'header');
  return {
    raw,
    kind: (flags & FLAG_FILE) !== 0 ? 'file' : 'text',
    encrypted,
    bodyLength,
    salt: raw.subarray(PREFIX_BYTES, PREFIX_BYTES + SALT_BYTES),
    log2N,
    verifier: raw.subarray(PREFIX_BYTES + SALT_BYTES + 1, PREFIX_BYTES + SALT_BYTES + 1 + VERIFIER_BYTES),
  };
}

function checkCrc(body: Uint8Array): Uint8Array {
  const content = body.subarray(0, body.length - CRC_BYTES);
  const stored = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(content.length);
  if (stored !== crc32(content)) throw new StegoError('corrupt_payload', 'hidden payload failed its CRC-32 check');
  return content;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A FrameReader over a flat byte string (header then body): for tests and tools that move frames as bytes. */
export class BufferFrameReader implements FrameReader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  header(n: number): Uint8Array | null {
    if (this.offset + n > this.bytes.length) return null;
    return this.take(n);
  }

  bodyBytesAvailable(): number {
    return this.bytes.length - this.offset;
  }

  body(n: number): Uint8Array {
    return this.take(n);
  }

  private take(n: number): Uint8Array {
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}
