// Passphrase protection of a frame body: scrypt → AES-256-GCM.
//
// One scrypt run per request yields three independent slices: the AES key, the key of the body's slot
// order, and a short verifier stored in the (publicly readable) header. The verifier is what lets
// extraction say "wrong passphrase" instead of "corrupt": with a wrong passphrase the body would be read
// in the wrong order and look like noise, which GCM alone cannot tell apart from damage.

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
export function deriveKeys(passphrase: string, salt: Uint8Array, log2N: number): Promise<DerivedKeys> {
  const N = 2 ** log2N;
  const length = AES_KEY_BYTES + ORDER_KEY_BYTES + VERIFIER_BYTES;
  const maxmem = 2 * 128 * N * SCRYPT_R; // Node refuses anything near its 32 MiB default at log2N = 15
  return new Promise((resolve, reject) => {
    scrypt(passphrase.normalize('NFC'), salt, length, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem }, (err, out) => {
      if (err) {
        reject(err);
        return;
      }
      resolve({
        aesKey: out.subarray(0, AES_KEY_BYTES),
        orderKey: new Uint8Array(out.subarray(AES_KEY_BYTES, AES_KEY_BYTES + ORDER_KEY_BYTES)),
        verifier: new Uint8Array(out.subarray(AES_KEY_BYTES + ORDER_KEY_BYTES)),
      });
    });
  });
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
