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
import type { Raster } from './raster.js';

const ROUNDS = 8;

/** The order used for headers and unencrypted bodies (no passphrase). */
export const DEFAULT_ORDER_KEY: Uint8Array = createHash('sha256').update('StegoCluster/v1/default-slot-order').digest();

export class KeyedPermutation {
  readonly domain: number;
  private readonly roundKeys: Uint32Array;
  private readonly rightBits: number;
  private readonly leftMask: number;
  private readonly rightMask: number;
  private readonly rightScale: number;

  constructor(key: Uint8Array, domain: number) {
    if (!Number.isSafeInteger(domain) || domain < 0 || domain > 2 ** 32) throw new RangeError(`bad permutation domain ${domain}`);
    this.domain = domain;
    const bits = Math.max(2, Math.ceil(Math.log2(Math.max(domain, 1))));
    const leftBits = bits >> 1;
    this.rightBits = bits - leftBits;
    this.leftMask = 2 ** leftBits - 1;
    this.rightMask = 2 ** this.rightBits - 1;
    this.rightScale = 2 ** this.rightBits;
    this.roundKeys = expandKey(key, bits);
  }

  /** The slot visited at step i of the walk (0 ≤ i < domain). */
  forward(i: number): number {
    let x = i;
    do x = this.encipher(x);
    while (x >= this.domain);
    return x;
  }

  /** The step at which slot s is visited. */
  inverse(s: number): number {
    let x = s;
    do x = this.decipher(x);
    while (x >= this.domain);
    return x;
  }

  private encipher(x: number): number {
    let left = Math.floor(x / this.rightScale);
    let right = x & this.rightMask;
    for (let r = 0; r < ROUNDS; r++) {
      if ((r & 1) === 0) left = (left ^ mix(right, this.roundKeys[r]!)) & this.leftMask;
      else right = (right ^ mix(left, this.roundKeys[r]!)) & this.rightMask;
    }
    return left * this.rightScale + right;
  }

  private decipher(x: number): number {
    let left = Math.floor(x / this.rightScale);
    let right = x & this.rightMask;
    for (let r = ROUNDS - 1; r >= 0; r--) {
      if ((r & 1) === 0) left = (left ^ mix(right, this.roundKeys[r]!)) & this.leftMask;
      else right = (right ^ mix(left, this.roundKeys[r]!)) & this.rightMask;
    }
    return left * this.rightScale + right;
  }
}

// Round keys depend on the domain width too, so orders of different image sizes are unrelated.
function expandKey(key: Uint8Array, bits: number): Uint32Array {
  const digest = createHash('sha256').update(key).update(Uint8Array.of(bits)).digest();
  const words = new Uint32Array(ROUNDS);
  for (let r = 0; r < ROUNDS; r++) words[r] = digest.readUInt32BE(r * 4);
  return words;
}

// A 32-bit avalanche mix (lowbias32); the key enters before mixing so every round is a different function.
function mix(x: number, key: number): number {
  let h = (x ^ key) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
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
    this.maxSample = raster.bitDepth === 16 ? 0xffff : 0xff;
    this.alphaOffset = raster.hasAlpha ? raster.channels - 1 : -1;
    this.key = raster.transparentKey?.length === this.colourChannels ? raster.transparentKey : undefined;
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

  constructor(
    private readonly space: SlotSpace,
    private readonly order: KeyedPermutation,
    private readonly excluded: (slot: number) => boolean = () => false,
    start = 0,
  ) {
    this.step = start;
  }

  /** Sample index of the next usable slot, or -1 once every slot has been visited. */
  next(): number {
    while (this.step < this.order.domain) {
      const slot = this.order.forward(this.step++);
      if (this.space.isSlotUsable(slot) && !this.excluded(slot)) return this.space.sampleIndex(slot);
    }
    return -1;
  }
}
