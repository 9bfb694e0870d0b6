// LSB matching (±1 embedding): a sample whose least significant bit already equals the payload bit is left
// alone; otherwise it moves up or down by one, the direction picked at random. Unlike LSB replacement this
// does not create the pairs-of-values asymmetry that chi-square and RS steganalysis look for.
//
// Two constraints bend the rule: a sample at 0 or at the maximum can only move inwards, and a move must never
// turn a pixel into the tRNS key colour (that would make it transparent and change which slots exist). When
// the only inward move would produce the key, the sample moves by 3 instead: still an odd step, so the LSB
// flips, and this can only happen to a pixel one step from the key.

import { randomBytes } from 'node:crypto';
import { xorshift32 } from './xorshift.js';
import type { SlotSpace, SlotWalk } from './order.js';

/** Random move directions; not security-relevant for extraction, so a fast xorshift seeded from the OS. */
export class Directions {
  private readonly next: () => number;
  private bits = 0;
  private left = 0;

  constructor(seed: number = randomBytes(4).readUInt32LE(0)) {
    this.next = xorshift32(seed);
  }

  up(): boolean {
    if (this.left === 0) {
      this.bits = this.next();
      this.left = 32;
    }
    const bit = this.bits & 1;
    this.bits >>>= 1;
    this.left--;
    return bit === 1;
  }
}

/**
 * The value a sample takes to carry `bit`. `forbidden` is a value the sample must not take (the key's
 * value for this channel when the rest of the pixel already equals the key), or -1.
 */
export function matchedValue(value: number, bit: number, max: number, up: boolean, forbidden: number): number {
  if ((value & 1) === bit) return value;
  const step = up ? 1 : -1;
  // Preference order: the random direction, the other one, then 3 steps (written out: this runs per bit).
  let candidate = value + step;
  if (candidate >= 0 && candidate <= max && candidate !== forbidden) return candidate;
  candidate = value - step;
  if (candidate >= 0 && candidate <= max && candidate !== forbidden) return candidate;
  candidate = value + 3 * step;
  if (candidate >= 0 && candidate <= max && candidate !== forbidden) return candidate;
  return value - 3 * step; // in range whenever the others are not, since max ≥ 255
}

/** Writes bytes (most significant bit first) into the walk's slots; false if the walk ran out of slots. */
export function embedBytes(space: SlotSpace, walk: SlotWalk, bytes: Uint8Array, directions: Directions): boolean {
  const data = space.raster.data;
  const keyed = space.transparentKey !== undefined;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    for (let b = 7; b >= 0; b--) {
      const sample = walk.next();
      if (sample < 0) return false;
      const bit = (byte >> b) & 1;
      const value = data[sample]!;
      if ((value & 1) === bit) continue;
      const forbidden = keyed ? forbiddenValue(space, sample) : -1;
      data[sample] = matchedValue(value, bit, space.maxSample, directions.up(), forbidden);
    }
  }
  return true;
}

// The key's value for this sample's channel if every other colour channel of the pixel already matches the key.
function forbiddenValue(space: SlotSpace, sample: number): number {
  const channels = space.raster.channels;
  const base = sample - (sample % channels);
  const channel = sample - base;
  const key = space.transparentKey!;
  return space.matchesKey(base, channel, key[channel]!) ? key[channel]! : -1;
}

/**
 * Samples per batch of extractBytes (Uint32: an RGBA image of MAX_SLOTS colour samples has 4/3 as many
 * samples), reused: extraction is synchronous. Small on purpose: V8 compiles a function whole once it
 * has been called often enough, and a loop entered only a few times per extract is instead entered in
 * the interpreter and optimised by on-stack replacement on every extract (each garbage collection drops
 * that code). With 256 a 4 KiB payload makes ~130 calls of the batch loops (permuteRange and readBits):
 * measured on the bench images, an extract's walk took 2-4 ms instead of 7-15 ms with 4096.
 */
const READ_BATCH = 256;
const batch = new Uint32Array(READ_BATCH);

/**
 * Reads n bytes from the walk's slots (most significant bit first); null if the walk runs out first.
 * The walk hands over its sample indices a batch at a time and the batch is read in one loop: the
 * reads are independent, so their cache misses overlap instead of following each slot's computation.
 */
export function extractBytes(walk: SlotWalk, data: Uint8Array | Uint16Array, n: number): Uint8Array | null {
  const out = new Uint8Array(n);
  const bits = n * 8;
  for (let done = 0; done < bits; ) {
    const want = Math.min(READ_BATCH, bits - done);
    const got = walk.nextSamples(batch, want);
    readBits(data, batch, got, out, done);
    if (got < want) return null;
    done += want;
  }
  return out;
}

/** The LSBs of data[samples[0..count)] into `out` as bits first, first+1, ... (most significant bit first). */
function readBits(data: Uint8Array | Uint16Array, samples: Uint32Array, count: number, out: Uint8Array, first: number): void {
  for (let k = 0; k < count; k++) {
    const bit = first + k;
    out[bit >> 3]! |= (data[samples[k]!]! & 1) << (7 - (bit & 7));
  }
}
