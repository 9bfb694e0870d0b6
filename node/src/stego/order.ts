// Which samples carry the payload, and in which order.
//
// Slots are the colour samples of the raster (never alpha): slot s is channel s % c of pixel ⌊s / c⌋,
// c = number of colour channels. A pixel is usable unless it is fully transparent (alpha 0, or its colour
// equals the tRNS colour key). Embedding never changes alpha and never turns a pixel into the key colour,
// so usability is the same for the embedder and the extractor.
//
// The order is a keyed pseudo-random permutation of [0, slotCount): an alternating (unbalanced) Feistel
// network on the smallest power of two ≥ slotCount, restricted to the domain by cycle walking. Both
// directions cost O(rounds) per slot, so a walk costs O(payload bits), never O(image), and the inverse
// answers "is this slot one of the header's?" without remembering them.

import { createHash } from 'node:crypto';
import { StegoError } from './errors.js';
import type { Raster } from './raster.js';

const ROUNDS = 6;
/** Largest slot count the int32 arithmetic below supports (2^31 − 1: 715 M RGB pixels). */
export const MAX_SLOTS = 0x7fffffff;

/** The order used for headers and unencrypted bodies (no passphrase). */
export const DEFAULT_ORDER_KEY: Uint8Array = createHash('sha256').update('StegoCluster/v1/default-slot-order').digest();

// Everything below stays in int32 arithmetic on purpose: V8 keeps it in registers, while uint32 values
// above 2^31 become doubles and made the walk three times slower.
export class KeyedPermutation {
  readonly domain: number;
  private readonly roundKeys: Int32Array;
  private readonly rightBits: number;
  private readonly leftMask: number;
  private readonly rightMask: number;
  /** forward's result slot: one Feistel implementation (permuteRange) serves single steps and ranges. */
  private readonly one = new Uint32Array(1);

  constructor(key: Uint8Array, domain: number) {
    if (!Number.isInteger(domain) || domain < 0 || domain > MAX_SLOTS) throw new RangeError(`bad permutation domain ${domain}`);
    this.domain = domain;
    const bits = Math.max(2, Math.ceil(Math.log2(Math.max(domain, 1))));
    const leftBits = bits >> 1;
    this.rightBits = bits - leftBits;
    this.leftMask = (1 << leftBits) - 1;
    this.rightMask = (1 << this.rightBits) - 1;
    this.roundKeys = expandKey(key, bits);
  }

  /** The slot visited at step i of the walk (0 ≤ i < domain). Cycle walking: re-encipher until inside. */
  forward(i: number): number {
    this.forwardRange(i, 1, this.one, 0);
    return this.one[0]!;
  }

  /**
   * forward(start + k) into out[at + k] for k < count: the slots of `count` calls of forward, computed
   * by permuteRange (a loop over numbers and typed arrays only, so nothing in it depends on this
   * object's shape).
   */
  forwardRange(start: number, count: number, out: Uint32Array, at: number): void {
    permuteRange(this.roundKeys, this.rightBits, this.leftMask, this.rightMask, this.domain, start, count, out, at);
  }

  /** The step at which slot s is visited. */
  inverse(s: number): number {
    const { roundKeys: keys, rightBits, leftMask, rightMask, domain } = this;
    let x = s;
    do {
      let left = x >>> rightBits;
      let right = x & rightMask;
      for (let r = ROUNDS - 2; r >= 0; r -= 2) {
        right = (right ^ mix(left, keys[r + 1]!)) & rightMask;
        left = (left ^ mix(right, keys[r]!)) & leftMask;
      }
      x = (left << rightBits) | right;
    } while (x >= domain);
    return x;
  }
}

// Round keys depend on the domain width too, so orders of different image sizes are unrelated.
function expandKey(key: Uint8Array, bits: number): Int32Array {
  const digest = createHash('sha256').update(key).update(Uint8Array.of(bits)).digest();
  const words = new Int32Array(ROUNDS);
  for (let r = 0; r < ROUNDS; r++) words[r] = digest.readInt32BE(r * 4);
  return words;
}

/**
 * KeyedPermutation.forward for a range of steps, mix written out: a module function whose arguments are
 * numbers and typed arrays. Extraction reads every bit through it, and it runs once per extract after
 * each garbage collection has discarded the optimised code of the class methods (that code is tied to
 * the shapes of objects that no longer exist): a loop with no calls is cheap in V8's first tiers and
 * optimised by on-stack replacement early in its first run.
 */
function permuteRange(
  keys: Int32Array,
  rightBits: number,
  leftMask: number,
  rightMask: number,
  domain: number,
  start: number,
  count: number,
  out: Uint32Array,
  at: number,
): void {
  for (let k = 0; k < count; k++) {
    let x = start + k;
    do {
      let left = x >>> rightBits;
      let right = x & rightMask;
      for (let r = 0; r < ROUNDS; r += 2) {
        let h = right ^ keys[r]!;
        h ^= h >>> 16;
        h = Math.imul(h, 0x7feb352d);
        h ^= h >>> 15;
        h = Math.imul(h, 0x846ca68b);
        left = (left ^ h ^ (h >>> 16)) & leftMask;
        h = left ^ keys[r + 1]!;
        h ^= h >>> 16;
        h = Math.imul(h, 0x7feb352d);
        h ^= h >>> 15;
        h = Math.imul(h, 0x846ca68b);
        right = (right ^ h ^ (h >>> 16)) & rightMask;
      }
      x = (left << rightBits) | right;
    } while (x >= domain);
    out[at + k] = x;
  }
}

// A 32-bit avalanche mix (lowbias32); the key enters before mixing so every round is a different function.
function mix(x: number, key: number): number {
  let h = x ^ key;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  return h ^ (h >>> 16);
}

/** The raster seen as slots: colour samples of usable pixels. */
export class SlotSpace {
  readonly raster: Raster;
  readonly colourChannels: number;
  readonly slotCount: number;
  readonly maxSample: number;
  private readonly alphaOffset: number; // -1 without alpha
  private readonly key: readonly number[] | undefined;

  constructor(raster: Raster) {
    this.raster = raster;
    this.colourChannels = raster.hasAlpha ? raster.channels - 1 : raster.channels;
    this.slotCount = raster.width * raster.height * this.colourChannels;
    if (this.slotCount > MAX_SLOTS) {
      throw new StegoError('image_too_large', `image has ${this.slotCount} colour samples, at most ${MAX_SLOTS} are supported`);
    }
    this.maxSample = raster.bitDepth === 16 ? 0xffff : 0xff;
    this.alphaOffset = raster.hasAlpha ? raster.channels - 1 : -1;
    this.key = raster.transparentKey?.length === this.colourChannels ? raster.transparentKey : undefined;
  }

  /** Transparency comes from the alpha channel alone (no colour key). */
  get alphaOnly(): boolean {
    return this.alphaOffset >= 0 && this.key === undefined;
  }

  /** True when some pixels may be unusable, i.e. the image has alpha or a colour key. */
  get hasTransparency(): boolean {
    return this.alphaOffset >= 0 || this.key !== undefined;
  }

  get transparentKey(): readonly number[] | undefined {
    return this.key;
  }

  sampleIndex(slot: number): number {
    const pixel = Math.floor(slot / this.colourChannels);
    return pixel * this.raster.channels + (slot - pixel * this.colourChannels);
  }

  isSlotUsable(slot: number): boolean {
    return this.isPixelUsable(Math.floor(slot / this.colourChannels));
  }

  isPixelUsable(pixel: number): boolean {
    const data = this.raster.data;
    const base = pixel * this.raster.channels;
    if (this.alphaOffset >= 0 && data[base + this.alphaOffset] === 0) return false;
    if (this.key === undefined) return true;
    return !this.matchesKey(base, -1, 0);
  }

  /** Would the pixel at `base` equal the key if channel `channel` held `value`? (channel -1: as it is) */
  matchesKey(base: number, channel: number, value: number): boolean {
    const key = this.key;
    if (key === undefined) return false;
    const data = this.raster.data;
    for (let c = 0; c < key.length; c++) {
      const v = c === channel ? value : data[base + c];
      if (v !== key[c]) return false;
    }
    return true;
  }

  /** Number of usable slots: O(1) for opaque images, one pass over the pixels otherwise. */
  usableSlotCount(): number {
    if (!this.hasTransparency) return this.slotCount;
    const pixels = this.raster.width * this.raster.height;
    let usable = 0;
    for (let p = 0; p < pixels; p++) if (this.isPixelUsable(p)) usable++;
    return usable * this.colourChannels;
  }
}

/** Yields the sample indices of usable slots in a permutation's order, skipping excluded ones. */
export class SlotWalk {
  /** Steps of the permutation consumed so far (including skipped slots). */
  step: number;
  private readonly checkUsable: boolean;

  constructor(
    private readonly space: SlotSpace,
    private readonly order: KeyedPermutation,
    private readonly excluded: ((slot: number) => boolean) | null = null,
    start = 0,
  ) {
    this.step = start;
    this.checkUsable = space.hasTransparency;
  }

  /**
   * The sample indices of the next `count` usable slots into out[0..count), in walk order: what `count`
   * calls of next() return, leaving `step` where they would. Fewer (the number is returned) when the walk
   * ends first. The slots are computed in batches before any sample is read, so the reads into the
   * raster are independent loads in one tight loop (the CPU overlaps their cache misses) rather than
   * one miss after each slot's Feistel rounds.
   */
  nextSamples(out: Uint32Array, count: number): number {
    const space = this.space;
    const domain = this.order.domain;
    const filter = this.checkUsable || this.excluded !== null;
    let filled = 0;
    while (filled < count && this.step < domain) {
      // Each step yields at most one slot, so asking for exactly the missing number never overshoots:
      // the count-th usable slot, if found, is the batch's last step.
      const want = Math.min(count - filled, domain - this.step);
      this.order.forwardRange(this.step, want, out, filled);
      this.step += want;
      if (!filter) {
        filled += want; // no alpha channel: a slot's sample index is the slot itself
        continue;
      }
      const end = filled + want;
      if (space.alphaOnly && this.excluded === null) {
        filled = keepOpaque(out, filled, end, space.raster.data, space.raster.channels, space.colourChannels);
        continue;
      }
      for (let i = filled; i < end; i++) {
        const slot = out[i]!;
        if (this.checkUsable && !space.isSlotUsable(slot)) continue;
        if (this.excluded !== null && this.excluded(slot)) continue;
        out[filled++] = space.sampleIndex(slot);
      }
    }
    return filled;
  }

  /** Sample index of the next usable slot, or -1 once every slot has been visited. */
  next(): number {
    const domain = this.order.domain;
    while (this.step < domain) {
      const slot = this.order.forward(this.step++);
      if (this.checkUsable && !this.space.isSlotUsable(slot)) continue;
      if (this.excluded !== null && this.excluded(slot)) continue;
      return this.space.sampleIndex(slot);
    }
    return -1;
  }
}

/**
 * Slots out[from..end) of an image whose transparency is its alpha channel (the last one): keeps those
 * of pixels with alpha above 0, as sample indices, packed from out[from]; returns where they end. What
 * SlotSpace.isSlotUsable and sampleIndex do per slot, as one loop over numbers and typed arrays.
 */
function keepOpaque(out: Uint32Array, from: number, end: number, data: Uint8Array | Uint16Array, channels: number, colourChannels: number): number {
  const alpha = channels - 1;
  let kept = from;
  for (let i = from; i < end; i++) {
    const slot = out[i]!;
    const pixel = (slot / colourChannels) | 0;
    const base = pixel * channels;
    if (data[base + alpha] === 0) continue;
    out[kept++] = base + (slot - pixel * colourChannels);
  }
  return kept;
}
