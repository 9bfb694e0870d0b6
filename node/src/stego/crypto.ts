// Passphrase protection: scrypt → AES-256-GCM.
//
// Version 2 (written today): two scrypt runs, one with a constant salt for the slot order and one with a
// random per-image salt for the AES key (see docs/stego-format.md §5); header and body are sealed with
// counter nonces under that per-image key.
//
// Version 1 (read only): one scrypt run with the salt from the public header yields the AES key, the key
// of the body's slot order, and a short verifier stored in that header, which let extraction say "wrong
// passphrase" instead of "corrupt".

import { createCipheriv, createDecipheriv, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { StegoError } from './errors.js';

export const SALT_BYTES = 16;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const VERIFIER_BYTES = 8;
export const ORDER_KEY_BYTES = 32;
const AES_KEY_BYTES = 32;

/** scrypt cost N = 2^log2N with r = 8, p = 1: 2^15 needs 32 MiB and ~130 ms on our machines. */
export const DEFAULT_SCRYPT_LOG2N = 15;
/** Accepted range, both when embedding and when reading a header (a crafted header must not make us spend 1 GiB). */
export const MIN_SCRYPT_LOG2N = 10;
export const MAX_SCRYPT_LOG2N = 16;
const SCRYPT_R = 8;
const SCRYPT_P = 1;

/** Bytes a passphrase adds to the body: nonce in front, GCM tag behind. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

export interface DerivedKeys {
  aesKey: Buffer;
  orderKey: Uint8Array;
  verifier: Uint8Array;
}

export function assertScryptCost(log2N: number, source: 'option' | 'header'): void {
  if (Number.isInteger(log2N) && log2N >= MIN_SCRYPT_LOG2N && log2N <= MAX_SCRYPT_LOG2N) return;
  const range = `[${MIN_SCRYPT_LOG2N}, ${MAX_SCRYPT_LOG2N}]`;
  if (source === 'header') {
    throw new StegoError('corrupt_payload', `payload header asks for scrypt cost 2^${log2N}, outside the accepted ${range}`, {
      log2N,
    });
  }
  throw new StegoError('invalid_request', `scrypt log2N must be an integer in ${range}, got ${log2N}`, { log2N });
}

export function newSalt(): Uint8Array {
  return randomBytes(SALT_BYTES);
}

/** Async scrypt: it runs on the libuv threadpool, so it never blocks the calling thread's event loop. */
function scryptBytes(passphrase: string, salt: Uint8Array, length: number, log2N: number): Promise<Buffer> {
  const N = 2 ** log2N;
  const maxmem = 2 * 128 * N * SCRYPT_R; // Node refuses anything near its 32 MiB default at log2N = 15
  return new Promise((resolve, reject) => {
    scrypt(passphrase.normalize('NFC'), salt, length, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem }, (err, out) => {
      if (err) reject(err);
      else resolve(out);
    });
  });
}

/** Version 1: one scrypt run with the salt stored in the public header. */
export async function deriveKeys(passphrase: string, salt: Uint8Array, log2N: number): Promise<DerivedKeys> {
  const out = await scryptBytes(passphrase, salt, AES_KEY_BYTES + ORDER_KEY_BYTES + VERIFIER_BYTES, log2N);
  return {
    aesKey: out.subarray(0, AES_KEY_BYTES),
    orderKey: new Uint8Array(out.subarray(AES_KEY_BYTES, AES_KEY_BYTES + ORDER_KEY_BYTES)),
    verifier: new Uint8Array(out.subarray(AES_KEY_BYTES + ORDER_KEY_BYTES)),
  };
}

// ---------- version 2 ----------

/**
 * The salt of the order KDF is a constant: the extractor must find the slots before it can read anything,
 * so nothing image-specific can enter. The price is that one scrypt run per guessed passphrase yields that
 * guess's slot order for every image; the content key below is salted per image, so reading or even
 * authenticating a payload still costs a scrypt run per guess and per image.
 */
const ORDER_SALT = new TextEncoder().encode('StegoCluster/v2/slot-order');

/** Key of the slot order of a version-2 sealed frame: scrypt(passphrase, constant salt). */
export async function deriveOrderKey(passphrase: string, log2N: number): Promise<Uint8Array> {
  return new Uint8Array(await scryptBytes(passphrase, ORDER_SALT, ORDER_KEY_BYTES, log2N));
}

/** AES-256 key of a version-2 sealed frame: scrypt(passphrase, random salt stored inside the keyed walk). */
export function deriveContentKey(passphrase: string, salt: Uint8Array, log2N: number): Promise<Buffer> {
  return scryptBytes(passphrase, salt, AES_KEY_BYTES, log2N);
}

/**
 * AES-256-GCM with a counter nonce: ciphertext ‖ tag. Safe only because every embed draws a fresh salt and
 * so a fresh key; within one key the header uses nonce 0 and the body nonce 1.
 */
export function sealCounter(key: Uint8Array, counter: number, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const cipher = createCipheriv('aes-256-gcm', key, counterNonce(counter), { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Inverse of sealCounter; null when the tag does not verify (wrong key or damage: the caller decides). */
export function openCounter(key: Uint8Array, counter: number, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < TAG_BYTES) return null;
  const decipher = createDecipheriv('aes-256-gcm', key, counterNonce(counter), { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    return null;
  }
}

function counterNonce(counter: number): Uint8Array {
  const nonce = new Uint8Array(NONCE_BYTES);
  new DataView(nonce.buffer).setUint32(NONCE_BYTES - 4, counter);
  return nonce;
}

export function verifierMatches(keys: DerivedKeys, stored: Uint8Array): boolean {
  return stored.length === keys.verifier.length && timingSafeEqual(stored, keys.verifier);
}

/** nonce ‖ ciphertext ‖ tag; `aad` binds the public header to the body. */
export function seal(aesKey: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  return Buffer.concat([nonce, head, tail, cipher.getAuthTag()]);
}

/** Inverse of seal; a failed tag is damage (the passphrase was already confirmed by the verifier). */
export function open(aesKey: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array {
  if (sealed.length < SEAL_OVERHEAD) {
    throw new StegoError('corrupt_payload', 'encrypted payload is shorter than its nonce and tag');
  }
  const nonce = sealed.subarray(0, NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', aesKey, nonce, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw new StegoError('corrupt_payload', 'encrypted payload failed its authentication check (damaged image data)');
  }
}
