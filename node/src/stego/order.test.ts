import { expect } from 'chai';
import fc from 'fast-check';
import { DEFAULT_ORDER_KEY, KeyedPermutation, SlotSpace, SlotWalk } from './order.js';
import type { Raster } from './raster.js';

const keyArb = fc.uint8Array({ minLength: 32, maxLength: 32 });

function raster(partial: Partial<Raster> & Pick<Raster, 'width' | 'height' | 'channels' | 'hasAlpha' | 'data'>): Raster {
  return {
    colorType: partial.hasAlpha ? (partial.channels === 2 ? 4 : 6) : partial.channels === 1 ? 0 : 2,
    bitDepth: partial.data instanceof Uint16Array ? 16 : 8,
    chunks: [],
    source: { width: partial.width, height: partial.height, bitDepth: 8, colorType: 2, interlace: 0 },
    ...partial,
  } as Raster;
}

describe('stego slot order', () => {
  it('is a bijection on [0, n) for any key and small n, and inverse undoes forward', () => {
    fc.assert(
      fc.property(keyArb, fc.integer({ min: 1, max: 3000 }), (key, n) => {
        const perm = new KeyedPermutation(key, n);
        const seen = new Uint8Array(n);
        let problems = 0; // counted rather than asserted per step: chai in a 3000-step loop dominates the run time
        for (let i = 0; i < n; i++) {
          const s = perm.forward(i);
          if (!(s >= 0 && s < n) || seen[s] === 1 || perm.inverse(s) !== i) problems++;
          else seen[s] = 1;
        }
        expect(problems).to.equal(0);
      }),
      { numRuns: 200 },
    );
  });

  it('gives different keys different orders', () => {
    fc.assert(
      fc.property(keyArb, keyArb, (a, b) => {
        fc.pre(Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0);
        const n = 10_000;
        const pa = new KeyedPermutation(a, n);
        const pb = new KeyedPermutation(b, n);
        let same = 0;
        for (let i = 0; i < 200; i++) if (pa.forward(i) === pb.forward(i)) same++;
        expect(same).to.be.below(10);
      }),
      { numRuns: 100 },
    );
  });

  it('spreads the first steps over the whole image, not a corner', () => {
    const n = 36_000_000; // 4000×3000 RGB
    const perm = new KeyedPermutation(DEFAULT_ORDER_KEY, n);
    const tenths = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++) tenths[Math.floor((perm.forward(i) / n) * 10)]!++;
    for (const count of tenths) expect(count).to.be.within(800, 1200);
    for (let i = 0; i < 1000; i++) {
      const step = i * 35_999 + 7;
      expect(perm.inverse(perm.forward(step))).to.equal(step);
    }
  });

  it('treats a domain of 1 and of 0 sanely', () => {
    expect(new KeyedPermutation(DEFAULT_ORDER_KEY, 1).forward(0)).to.equal(0);
    const space = new SlotSpace(raster({ width: 0, height: 0, channels: 3, hasAlpha: false, data: new Uint8Array() }));
    expect(new SlotWalk(space, new KeyedPermutation(DEFAULT_ORDER_KEY, 0)).next()).to.equal(-1);
  });

  it('walks colour samples of usable pixels only, each once', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.constantFrom(2, 4),
        keyArb,
        fc.uint8Array({ minLength: 144, maxLength: 144 }),
        (width, height, channels, key, alphas) => {
          const data = new Uint8Array(width * height * channels);
          for (let p = 0; p < width * height; p++) data[p * channels + channels - 1] = alphas[p]! % 3 === 0 ? 0 : 255;
          const space = new SlotSpace(raster({ width, height, channels: channels as 2 | 4, hasAlpha: true, data }));
          const walk = new SlotWalk(space, new KeyedPermutation(key, space.slotCount));
          const visited = new Set<number>();
          for (let s = walk.next(); s >= 0; s = walk.next()) {
            expect(s % channels).to.not.equal(channels - 1);
            expect(data[s - (s % channels) + channels - 1]).to.equal(255);
            expect(visited.has(s)).to.equal(false);
            visited.add(s);
          }
          expect(visited.size).to.equal(space.usableSlotCount());
        },
      ),
    );
  });

  it('nextSamples returns what next() returns, in the same order, and leaves the walk at the same step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom(1, 2, 3, 4),
        fc.constantFrom('none', 'key', 'exclude'),
        keyArb,
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (width, height, channels, extra, key, counts, seed) => {
          const hasAlpha = channels === 2 || channels === 4;
          const data = new Uint8Array(width * height * channels);
          let x = seed | 1;
          for (let i = 0; i < data.length; i++) {
            x ^= x << 13;
            x ^= x >>> 17;
            x ^= x << 5;
            data[i] = (x >>> 0) % 4 === 0 ? 0 : (x >>> 8) & 0xff; // many zero alphas and key-coloured pixels
          }
          const colour = hasAlpha ? channels - 1 : channels;
          const transparentKey = extra === 'key' && !hasAlpha ? new Array<number>(colour).fill(0) : undefined;
          const space = new SlotSpace(raster({ width, height, channels: channels as 1 | 2 | 3 | 4, hasAlpha, data, ...(transparentKey ? { transparentKey } : {}) }));
          const order = new KeyedPermutation(key, space.slotCount);
          const excluded = extra === 'exclude' ? (slot: number) => slot % 5 === 1 : null;
          const one = new SlotWalk(space, order, excluded);
          const batched = new SlotWalk(space, order, excluded);
          for (const count of counts) {
            const expected: number[] = [];
            for (let i = 0; i < count; i++) {
              const s = one.next();
              if (s < 0) break;
              expected.push(s);
            }
            const out = new Uint32Array(count);
            const got = batched.nextSamples(out, count);
            expect(Array.from(out.subarray(0, got))).to.deep.equal(expected);
            expect(batched.step).to.equal(one.step);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('forwardRange is forward over a range of steps, cycle walking included', () => {
    for (const n of [1, 2, 5, 1000, 1025, 36_000_000]) {
      const perm = new KeyedPermutation(DEFAULT_ORDER_KEY, n);
      const count = Math.min(n, 3000);
      const start = n > count ? n - count : 0;
      const out = new Uint32Array(count + 2);
      perm.forwardRange(start, count, out, 2);
      for (let k = 0; k < count; k++) expect(out[2 + k], `n=${n} step ${start + k}`).to.equal(perm.forward(start + k));
    }
  });

  it('skips pixels whose colour equals the tRNS key', () => {
    const data = Uint8Array.of(1, 2, 3, 9, 9, 9, 1, 2, 4);
    const space = new SlotSpace(raster({ width: 3, height: 1, channels: 3, hasAlpha: false, data, transparentKey: [1, 2, 3] }));
    expect(space.usableSlotCount()).to.equal(6);
    expect(space.isPixelUsable(0)).to.equal(false);
    expect(space.isPixelUsable(2)).to.equal(true);
    const walk = new SlotWalk(space, new KeyedPermutation(DEFAULT_ORDER_KEY, space.slotCount));
    const samples: number[] = [];
    for (let s = walk.next(); s >= 0; s = walk.next()) samples.push(s);
    expect(samples.sort((a, b) => a - b)).to.deep.equal([3, 4, 5, 6, 7, 8]);
  });
});
