import { expect } from 'chai';
import fc from 'fast-check';
import { Directions, embedBytes, extractBytes, matchedValue } from './lsb.js';
import { DEFAULT_ORDER_KEY, KeyedPermutation, SlotSpace, SlotWalk } from './order.js';
import type { Raster } from './raster.js';

describe('stego LSB matching', () => {
  it('sets the LSB with a ±1 step inside the bounds, or no step when it already matches', () => {
    fc.assert(
      fc.property(fc.constantFrom(0xff, 0xffff), fc.nat(), fc.integer({ min: 0, max: 1 }), fc.boolean(), (max, v, bit, up) => {
        const value = v % (max + 1);
        const out = matchedValue(value, bit, max, up, -1);
        expect(out & 1).to.equal(bit);
        expect(out).to.be.within(0, max);
        expect(Math.abs(out - value)).to.equal((value & 1) === bit ? 0 : 1);
        if ((value & 1) !== bit && value > 0 && value < max) expect(out - value).to.equal(up ? 1 : -1);
      }),
    );
  });

  it('never produces the forbidden (key) value, stepping by 3 only when ±1 is impossible', () => {
    expect(matchedValue(10, 1, 255, true, 11)).to.equal(9);
    expect(matchedValue(255, 0, 255, true, 254)).to.equal(252);
    expect(matchedValue(0, 1, 255, false, 1)).to.equal(3);
    expect(matchedValue(65535, 0, 65535, false, 65534)).to.equal(65532);
    fc.assert(
      fc.property(fc.nat(255), fc.integer({ min: 0, max: 1 }), fc.boolean(), fc.nat(255), (value, bit, up, forbidden) => {
        const out = matchedValue(value, bit, 255, up, forbidden);
        expect(out & 1).to.equal(bit);
        if (out !== value) expect(out).to.not.equal(forbidden);
        expect([0, 1, 3]).to.include(Math.abs(out - value));
      }),
    );
  });

  it('moves up and down about equally often', () => {
    const directions = new Directions(12345);
    let ups = 0;
    for (let i = 0; i < 10_000; i++) if (directions.up()) ups++;
    expect(ups).to.be.within(4700, 5300);
  });

  it('writes bytes that read back, changing each sample by at most 1', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 300, maxLength: 300 }), fc.uint8Array({ maxLength: 37 }), (pixels, bytes) => {
        const r: Raster = {
          width: 10, height: 10, colorType: 2, bitDepth: 8, channels: 3, hasAlpha: false,
          data: Uint8Array.from(pixels), chunks: [],
          source: { width: 10, height: 10, bitDepth: 8, colorType: 2, interlace: 0 },
        };
        const space = new SlotSpace(r);
        const order = new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount);
        expect(embedBytes(space, new SlotWalk(space, order), bytes, new Directions())).to.equal(true);
        expect(Buffer.from(extractBytes(new SlotWalk(space, order), r.data, bytes.length)!)).to.deep.equal(Buffer.from(bytes));
        r.data.forEach((v, i) => expect(Math.abs(v - pixels[i]!)).to.be.at.most(1));
      }),
    );
  });

  it('reads what a bit-by-bit walk reads, across batch boundaries and in images with transparent pixels', () => {
    // the walk's reference: one next() per bit, most significant bit first
    const reference = (walk: SlotWalk, data: Uint8Array, n: number): Uint8Array | null => {
      const out = new Uint8Array(n);
      for (let i = 0; i < n * 8; i++) {
        const s = walk.next();
        if (s < 0) return null;
        out[i >> 3]! |= (data[s]! & 1) << (7 - (i & 7));
      }
      return out;
    };
    const data = new Uint8Array(120 * 90 * 4);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    for (let p = 0; p < 120 * 90; p += 7) data[p * 4 + 3] = 0; // every 7th pixel transparent
    const r: Raster = {
      width: 120, height: 90, colorType: 6, bitDepth: 8, channels: 4, hasAlpha: true, data, chunks: [],
      source: { width: 120, height: 90, bitDepth: 8, colorType: 6, interlace: 0 },
    };
    const space = new SlotSpace(r);
    const order = new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount);
    const usableBytes = Math.floor(space.usableSlotCount() / 8);
    for (const n of [0, 1, 31, 32, 33, 511, 512, 513, 1500, usableBytes, usableBytes + 1]) {
      const a = new SlotWalk(space, order);
      const b = new SlotWalk(space, order);
      const got = extractBytes(a, data, n);
      const want = reference(b, data, n);
      expect(got === null ? null : Buffer.from(got), `${n} bytes`).to.deep.equal(want === null ? null : Buffer.from(want));
      expect(a.step, `${n} bytes`).to.equal(b.step);
    }
  });

  it('reports running out of slots', () => {
    const r: Raster = {
      width: 1, height: 1, colorType: 2, bitDepth: 8, channels: 3, hasAlpha: false,
      data: new Uint8Array(3), chunks: [], source: { width: 1, height: 1, bitDepth: 8, colorType: 2, interlace: 0 },
    };
    const space = new SlotSpace(r);
    const order = new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount);
    expect(embedBytes(space, new SlotWalk(space, order), Uint8Array.of(1), new Directions())).to.equal(false);
    expect(extractBytes(new SlotWalk(space, order), r.data, 1)).to.equal(null);
  });
});
