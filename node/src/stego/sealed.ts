// The version-2 sealed frame: a payload hidden with a passphrase (docs/stego-format.md §5.2).
//
// Nothing of it is in a public position. Its slots are walked in an order keyed by
// scrypt(passphrase, constant salt), and every byte written there is indistinguishable from random
// without the passphrase:
//
//    0  salt                    16   random per embed; salt of the AES key's scrypt run
//   16  sealed header      6 + 16   AES-256-GCM, nonce 0, aad = salt:  version 2 ‖ flags ‖ content length (4)
//   38  sealed body        L + 16   AES-256-GCM, nonce 1, aad = bytes [0, 38):  content
//
// Without the passphrase (or with a wrong one) the header's tag fails to verify, which is exactly what
// happens on an image with nothing hidden in it: both answer no_payload, after the same two scrypt runs.

import { StegoError } from './errors.js';
import { deriveContentKey, deriveOrderKey, newSalt, openCounter, sealCounter, SALT_BYTES, TAG_BYTES } from './crypto.js';
import { decodeContent, encodeContent } from './frame.js';
import type { Payload } from './payload.js';

export const SEALED_VERSION = 2;
const HEADER_PLAIN_BYTES = 6;
const HEADER_NONCE = 0;
const BODY_NONCE = 1;
const FLAG_FILE = 1;
/** salt ‖ sealed header: read before the body's length is known. */
export const SEALED_PREFIX_BYTES = SALT_BYTES + HEADER_PLAIN_BYTES + TAG_BYTES;
/** Bytes a sealed frame adds to its content: the prefix and the body's tag. */
export const SEALED_OVERHEAD = SEALED_PREFIX_BYTES + TAG_BYTES;

export const NO_PAYLOAD_MESSAGE = 'nothing found; if something was hidden with a passphrase, supply the right one';

export interface SealedFrame {
  orderKey: Uint8Array;
  bytes: Uint8Array;
}

/** Where openSealedFrame reads from: the slots of the walk keyed by the order key, as bytes. */
export interface SealedReader {
  /** The next n bytes of the walk, or null when the image has fewer usable slots left. */
  read(n: number): Uint8Array | null;
}

export interface SealedOptions {
  passphrase: string;
  scryptLog2N: number;
}

export async function sealFrame(payload: Payload, opts: SealedOptions): Promise<SealedFrame> {
  const content = encodeContent(payload);
  const salt = newSalt();
  const [orderKey, key] = await Promise.all([
    deriveOrderKey(opts.passphrase, opts.scryptLog2N),
    deriveContentKey(opts.passphrase, salt, opts.scryptLog2N),
  ]);
  const header = new Uint8Array(HEADER_PLAIN_BYTES);
  header[0] = SEALED_VERSION;
  header[1] = payload.kind === 'file' ? FLAG_FILE : 0;
  new DataView(header.buffer).setUint32(2, content.length);
  const prefix = Buffer.concat([salt, sealCounter(key, HEADER_NONCE, header, salt)]);
  const bytes = Buffer.concat([prefix, sealCounter(key, BODY_NONCE, content, prefix)]);
  return { orderKey, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) };
}

/** The order key of a passphrase: callers build their walk from it before calling openSealedFrame. */
export function sealedOrderKey(opts: SealedOptions): Promise<Uint8Array> {
  return deriveOrderKey(opts.passphrase, opts.scryptLog2N);
}

/**
 * Reads a sealed frame from a walk keyed by sealedOrderKey(opts). Throws no_payload when nothing
 * authenticates (no frame, or another passphrase: the two are indistinguishable by design), and
 * corrupt_payload when the header authenticates but the body does not fit or does not (damage).
 */
export async function openSealedFrame(reader: SealedReader, opts: SealedOptions, maxBytes: number): Promise<Payload> {
  const prefix = reader.read(SEALED_PREFIX_BYTES);
  // Too small to hold a frame: still pay the content key's scrypt run so timing says nothing either.
  const salt = prefix?.subarray(0, SALT_BYTES) ?? new Uint8Array(SALT_BYTES);
  const key = await deriveContentKey(opts.passphrase, salt, opts.scryptLog2N);
  const header = prefix && openCounter(key, HEADER_NONCE, prefix.subarray(SALT_BYTES), salt);
  if (!prefix || !header) throw new StegoError('no_payload', NO_PAYLOAD_MESSAGE);
  // Authenticated from here on: anything odd is a different format or damage, never a guess.
  if (header[0] !== SEALED_VERSION || (header[1]! & ~FLAG_FILE) !== 0) {
    throw new StegoError('corrupt_payload', `sealed payload has version ${header[0]} and flags 0x${header[1]!.toString(16)}; this build reads version ${SEALED_VERSION}`, {
      version: header[0],
      supportedVersion: SEALED_VERSION,
    });
  }
  const contentLength = new DataView(header.buffer, header.byteOffset, header.byteLength).getUint32(2);
  if (SEALED_OVERHEAD + contentLength > maxBytes) {
    throw new StegoError('corrupt_payload', `payload header claims ${contentLength} bytes, more than the image can hold`);
  }
  const body = reader.read(contentLength + TAG_BYTES);
  if (!body) throw new StegoError('corrupt_payload', 'payload body runs past the last usable sample of the image');
  const content = openCounter(key, BODY_NONCE, body, prefix);
  if (!content) throw new StegoError('corrupt_payload', 'encrypted payload failed its authentication check (damaged image data)');
  return decodeContent(header[1] === FLAG_FILE ? 'file' : 'text', content);
}

/** A SealedReader over a flat byte string: for tests. */
export class BufferSealedReader implements SealedReader {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  read(n: number): Uint8Array | null {
    if (this.offset + n > this.bytes.length) return null;
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
}
