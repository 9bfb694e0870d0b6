import { expect } from 'chai';
import fc from 'fast-check';
import { hideInRaster, payloadSize, rasterCapacity, revealFromRaster, type Payload } from './payload.js';
import type { Raster } from './raster.js';
import { xorshift32 } from './xorshift.js';
import { codeOf } from './fixtures/outcome.js';

const LOW_COST = 10;

interface Layout {
  channels: 1 | 2 | 3 | 4;
  bitDepth: 8 | 16;
  keyed: boolean;
}

const layoutArb: fc.Arbitrary<Layout> = fc.record({
  channels: fc.constantFrom(1, 2, 3, 4) as fc.Arbitrary<1 | 2 | 3 | 4>,
  bitDepth: fc.constantFrom(8, 16) as fc.Arbitrary<8 | 16>,
  keyed: fc.boolean(),
});

/**
 * A random raster of any layout. Alpha is 0 for about a quarter of the pixels; with a colour key
 * (layouts without alpha), about a quarter of the pixels are the key and some sit one step from it,
 * including at the sample bounds, to exercise the "never produce the key" rule.
 */
function rasterArb(maxSide = 24): fc.Arbitrary<Raster> {
  return fc
    .record({
      layout: layoutArb,
      width: fc.integer({ min: 1, max: maxSide }),
      height: fc.integer({ min: 1, max: maxSide }),
      seed: fc.integer(),
    })
    .map(({ layout, width, height, seed }) => buildRaster(layout, width, height, seed));
}

function buildRaster({ channels, bitDepth, keyed }: Layout, width: number, height: number, seed: number): Raster {
  const hasAlpha = channels === 2 || channels === 4;
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const colour = hasAlpha ? channels - 1 : channels;
  const rand = xorshift32(seed);
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = rand() % (max + 1);
  const key = keyed && !hasAlpha ? Array.from({ length: colour }, (_, c) => (c === 0 ? max - 1 : rand() % (max + 1))) : undefined;
  for (let p = 0; p < width * height; p++) {
    const base = p * channels;
    const roll = rand() % 8;
    if (hasAlpha) {
      if (roll < 2) data[base + channels - 1] = 0;
      else if (roll === 2) data[base + channels - 1] = max;
    } else if (key !== undefined) {
      if (roll < 2) key.forEach((k, c) => (data[base + c] = k));
      if (roll === 2) key.forEach((k, c) => (data[base + c] = c === 0 ? max : k)); // one step above a key at max-1
    }
  }
  const colorType = ({ 1: 0, 2: 4, 3: 2, 4: 6 } as const)[channels];
  const r: Raster = {
    width, height, colorType, bitDepth, channels, hasAlpha, data, chunks: [],
    source: { width, height, bitDepth, colorType, interlace: 0 },
  };
  if (key !== undefined) r.transparentKey = key;
  return r;
}

function copy(r: Raster): Raster {
  const clone = { ...r, data: r.data.slice() };
  if (r.transparentKey) clone.transparentKey = [...r.transparentKey];
  return clone;
}

function isTransparent(r: Raster, data: ArrayLike<number>, p: number): boolean {
  const base = p * r.channels;
  if (r.hasAlpha) return data[base + r.channels - 1] === 0;
  return r.transparentKey?.every((k, c) => data[base + c] === k) ?? false;
}

/** Checks everything embedding promised to leave alone (plain comparisons: chai per sample is too slow). */
function expectImageKept(before: Raster, after: Raster): void {
  const pixels = before.width * before.height;
  const problems: string[] = [];
  for (let p = 0; p < pixels && problems.length < 5; p++) {
    const transparent = isTransparent(before, before.data, p);
    if (isTransparent(after, after.data, p) !== transparent) problems.push(`pixel ${p} transparency changed`);
    for (let c = 0; c < before.channels; c++) {
      const i = p * before.channels + c;
      const delta = Math.abs(after.data[i]! - before.data[i]!);
      const frozen = transparent || (before.hasAlpha && c === before.channels - 1);
      if (frozen ? delta !== 0 : delta !== 0 && delta !== 1 && delta !== 3) problems.push(`sample ${i} changed by ${delta}`);
    }
  }
  expect(problems).to.deep.equal([]);
}


function same(p: Payload): unknown {
  return p.kind === 'text' ? p : { ...p, data: Buffer.from(p.data) };
}

const smallPayloadArb: fc.Arbitrary<Payload> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }).map((text): Payload => ({ kind: 'text', text })),
  fc.uint8Array({ maxLength: 60 }).map((data): Payload => ({ kind: 'file', filename: 'blob.bin', data })),
);

describe('stego payload on a raster', () => {
  it('round-trips on random rasters of every layout, leaving alpha and transparent pixels untouched', async () => {
    await fc.assert(
      fc.asyncProperty(rasterArb(), smallPayloadArb, async (raster, payload) => {
        const before = copy(raster);
        const fits = payloadSize(payload) <= rasterCapacity(raster);
        const code = await codeOf(() => hideInRaster(raster, payload));
        expect(code).to.equal(fits ? 'ok' : 'capacity_exceeded');
        if (!fits) {
          expect(Buffer.from(raster.data.buffer)).to.deep.equal(Buffer.from(before.data.buffer));
          return;
        }
        expectImageKept(before, raster);
        expect(same(await revealFromRaster(raster))).to.deep.equal(same(payload));
      }),
      { numRuns: 400 },
    );
  });

  it('round-trips sealed payloads; a wrong or missing passphrase finds nothing, as on a cover', async () => {
    await fc.assert(
      fc.asyncProperty(rasterArb(32), smallPayloadArb, async (raster, payload) => {
        fc.pre(payloadSize(payload) <= rasterCapacity(raster, { passphrase: 'k' }));
        const before = copy(raster);
        await hideInRaster(raster, payload, { passphrase: 'k', scryptLog2N: LOW_COST });
        expectImageKept(before, raster);
        expect(same(await revealFromRaster(raster, { passphrase: 'k', scryptLog2N: LOW_COST }))).to.deep.equal(same(payload));
        expect(await codeOf(() => revealFromRaster(raster, { passphrase: 'K', scryptLog2N: LOW_COST }))).to.equal('no_payload');
        expect(await codeOf(() => revealFromRaster(raster))).to.equal('no_payload');
      }),
      { numRuns: 25 },
    );
  });

  it('carries exactly its capacity: capacity bytes fit and round-trip, one more does not', async () => {
    await fc.assert(
      fc.asyncProperty(rasterArb(16), fc.boolean(), fc.boolean(), async (raster, encrypted, asFile) => {
        const opts = encrypted ? { passphrase: 'p', scryptLog2N: LOW_COST } : {};
        const cap = rasterCapacity(raster, opts);
        const make = (n: number): Payload =>
          asFile ? { kind: 'file', filename: 'f', data: new Uint8Array(Math.max(0, n - 2)).fill(0xa5) } : { kind: 'text', text: 'é'.repeat(n >> 1) + 'x'.repeat(n & 1) };
        fc.pre(cap >= (asFile ? 2 : 0)); // a file needs at least its 1-byte name and its length byte
        expect(payloadSize(make(cap))).to.equal(cap);
        expect(await codeOf(() => hideInRaster(copy(raster), make(cap + 1), opts))).to.equal('capacity_exceeded');
        await hideInRaster(raster, make(cap), opts);
        expect(same(await revealFromRaster(raster, opts))).to.deep.equal(same(make(cap)));
      }),
      { numRuns: 60 },
    );
  });

  it('finds no payload in an untouched image', async () => {
    await fc.assert(
      fc.asyncProperty(rasterArb(), async (raster) => {
        expect(await codeOf(() => revealFromRaster(raster))).to.equal('no_payload');
      }),
      { numRuns: 100 },
    );
  });

  it('never throws anything but StegoError when embedded samples are damaged', async () => {
    await fc.assert(
      fc.asyncProperty(rasterArb(), fc.array(fc.nat(), { minLength: 1, maxLength: 8 }), fc.boolean(), async (raster, hits, encrypted) => {
        const opts = encrypted ? { passphrase: 'p', scryptLog2N: LOW_COST } : {};
        const payload: Payload = { kind: 'text', text: 'x' };
        fc.pre(payloadSize(payload) <= rasterCapacity(raster, opts));
        await hideInRaster(raster, payload, opts);
        for (const hit of hits) raster.data[hit % raster.data.length]! ^= 1;
        const code = await codeOf(async () => {
          expect(await revealFromRaster(raster, opts)).to.deep.equal(payload); // damage outside the frame is harmless
        });
        expect(code).to.be.oneOf(['ok', 'no_payload', 'corrupt_payload']);
      }),
      { numRuns: 80 },
    );
  });

  it('spreads the body of different passphrases over different samples', async () => {
    const base = buildRaster({ channels: 3, bitDepth: 8, keyed: false }, 64, 64, 42);
    const changed = async (passphrase: string): Promise<Set<number>> => {
      const r = copy(base);
      await hideInRaster(r, { kind: 'file', filename: 'z', data: new Uint8Array(200).fill(0x55) }, { passphrase, scryptLog2N: LOW_COST });
      const out = new Set<number>();
      r.data.forEach((v, i) => v !== base.data[i] && out.add(i));
      return out;
    };
    const a = await changed('alpha');
    const b = await changed('bravo');
    const overlap = [...a].filter((i) => b.has(i)).length;
    expect(a.size).to.be.greaterThan(500);
    expect(overlap / a.size).to.be.below(0.2);
  });

  it('round-trips sealed payloads when transparency leaves few usable pixels', async () => {
    const side = 400;
    const data = new Uint8Array(side * side * 4).map((_, i) => (i * 97) & 0xff);
    for (let p = 0; p < side * side; p++) data[p * 4 + 3] = p % 400 === 7 ? 255 : 0; // 1 usable pixel in 400
    const r: Raster = {
      width: side, height: side, colorType: 6, bitDepth: 8, channels: 4, hasAlpha: true, data, chunks: [],
      source: { width: side, height: side, bitDepth: 8, colorType: 6, interlace: 0 },
    };
    const before = copy(r);
    const opts = { passphrase: 'sparse', scryptLog2N: LOW_COST };
    const cap = rasterCapacity(r, opts);
    expect(cap).to.equal(Math.floor((400 * 3) / 8) - 54);
    const payload: Payload = { kind: 'file', filename: 'f', data: new Uint8Array(cap - 2).fill(0x3c) };
    await hideInRaster(r, payload, opts);
    expectImageKept(before, r);
    expect(same(await revealFromRaster(r, opts))).to.deep.equal(same(payload));
  });

  it('treats an empty passphrase as none and refuses absurdly long ones', async () => {
    const r = buildRaster({ channels: 3, bitDepth: 8, keyed: false }, 20, 20, 1);
    await hideInRaster(r, { kind: 'text', text: 'hi' }, { passphrase: '' });
    expect(await revealFromRaster(r)).to.deep.equal({ kind: 'text', text: 'hi' });
    expect(await codeOf(() => hideInRaster(r, { kind: 'text', text: 'hi' }, { passphrase: 'x'.repeat(2000) }))).to.equal('invalid_request');
  });
});
