import { expect } from 'chai';
import fc from 'fast-check';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PNG } from 'pngjs';
import { StegoError } from '../errors.js';
import type { Raster } from '../raster.js';
import { decodePng } from './decode.js';
import { encodePng } from './encode.js';
import { pngSuiteDir, toPngjsRgba } from './fixtures.js';

const require = createRequire(import.meta.url);
const extractChunks = require('png-chunks-extract') as (d: Uint8Array) => { name: string; data: Uint8Array }[];
const encodeChunks = require('png-chunks-encode') as (c: { name: string; data: Uint8Array }[]) => Uint8Array;

const LIMIT = { maxPixels: 40_000_000 };
const suite = pngSuiteDir();
const suiteFiles = suite ? fs.readdirSync(suite).filter((f) => f.endsWith('.png')).sort() : [];
const validFiles = suiteFiles.filter((f) => !f.startsWith('x'));
const corruptFiles = suiteFiles.filter((f) => f.startsWith('x'));

function readSuite(name: string): Buffer {
  return fs.readFileSync(path.join(suite!, name));
}

function pngjsRgba(buf: Uint8Array): number[] {
  return Array.from(PNG.sync.read(Buffer.from(buf), { skipRescale: true }).data as ArrayLike<number>);
}

function decodeError(buf: Uint8Array): string {
  try {
    decodePng(buf, LIMIT);
    return 'decoded';
  } catch (e) {
    if (!(e instanceof StegoError)) throw new Error(`raw error escaped: ${String(e)}`, { cause: e });
    return e.code;
  }
}

function sameRaster(a: Raster, b: Raster): void {
  expect([b.width, b.height, b.colorType, b.bitDepth, b.channels, b.hasAlpha]).to.deep.equal([
    a.width, a.height, a.colorType, a.bitDepth, a.channels, a.hasAlpha,
  ]);
  expect(b.data.constructor).to.equal(a.data.constructor);
  expect(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength).equals(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength))).to.equal(true);
  expect(b.transparentKey).to.deep.equal(a.transparentKey);
}

describe('png/decode+encode on PngSuite', function () {
  before(function () {
    if (!suite) {
      console.log('    (PngSuite not found at ../shared/pngsuite or $PNGSUITE_DIR: skipping)');
      this.skip();
    }
  });

  it('has the corpus (161 valid, 14 corrupt)', () => {
    expect(validFiles.length).to.equal(161);
    expect(corruptFiles.length).to.equal(14);
  });

  it('decodes every valid image to the same pixels pngjs sees', () => {
    for (const name of validFiles) {
      const buf = readSuite(name);
      const raster = decodePng(buf, LIMIT);
      expect(toPngjsRgba(raster), name).to.deep.equal(pngjsRgba(buf));
    }
  });

  it('keeps the layout: RGB stays RGB, 16-bit stays 16-bit, palette -> RGB/RGBA, 1/2/4-bit gray -> 8-bit', () => {
    const layout = (n: string) => {
      const r = decodePng(readSuite(n), LIMIT);
      return [r.colorType, r.bitDepth, r.channels, r.data.constructor.name];
    };
    expect(layout('basn2c08.png')).to.deep.equal([2, 8, 3, 'Uint8Array']);
    expect(layout('basn2c16.png')).to.deep.equal([2, 16, 3, 'Uint16Array']);
    expect(layout('basi6a16.png')).to.deep.equal([6, 16, 4, 'Uint16Array']);
    expect(layout('basn4a08.png')).to.deep.equal([4, 8, 2, 'Uint8Array']);
    expect(layout('basn0g02.png')).to.deep.equal([0, 8, 1, 'Uint8Array']);
    expect(layout('basn3p04.png')).to.deep.equal([2, 8, 3, 'Uint8Array']);
    expect(layout('tbbn3p08.png')).to.deep.equal([6, 8, 4, 'Uint8Array']);
  });

  it('re-encodes every valid image to identical pixels, readable by pngjs', async () => {
    for (const name of validFiles) {
      const raster = decodePng(readSuite(name), LIMIT);
      const out = await encodePng(raster);
      const again = decodePng(out, LIMIT);
      sameRaster(raster, again);
      // pngjs reads our output as we do (compared on the output's own terms: promoted gray is 8-bit now)
      expect(pngjsRgba(out), name).to.deep.equal(toPngjsRgba(again));
    }
  });

  it('refuses every corrupt x* file with a StegoError', () => {
    const expected: Record<string, string> = {
      'xs1n0g01.png': 'not_png', 'xs2n0g01.png': 'not_png', 'xs4n0g01.png': 'not_png', 'xs7n0g01.png': 'not_png',
      'xcrn0g04.png': 'not_png', 'xlfn0g04.png': 'not_png',
    };
    for (const name of corruptFiles) {
      expect(decodeError(readSuite(name)), name).to.equal(expected[name] ?? 'corrupt_png');
    }
  });

  it('refuses every truncation of a valid file', () => {
    for (const name of ['basn2c08.png', 'basi0g16.png', 'oi9n0g16.png']) {
      const buf = readSuite(name);
      for (let len = 0; len < buf.length; len++) {
        expect(decodeError(buf.subarray(0, len)), `${name}[0..${len})`).to.be.oneOf(['not_png', 'corrupt_png']);
      }
    }
  });

  it('refuses damaged zlib data and bad filter types even when the CRCs are right', () => {
    const chunks = extractChunks(readSuite('basn2c08.png'));
    const idat = chunks.find((c) => c.name === 'IDAT')!;
    for (let i = 2; i < idat.data.length; i += 7) {
      const copy = chunks.map((c) => (c === idat ? { name: 'IDAT', data: Uint8Array.from(c.data) } : c));
      const damaged = copy.find((c) => c.name === 'IDAT')!;
      damaged.data[i] = damaged.data[i]! ^ 0x5a;
      expect(decodeError(encodeChunks(copy))).to.be.oneOf(['corrupt_png', 'decoded']);
    }
    const zeroIdat = chunks.map((c) => (c.name === 'IDAT' ? { name: 'IDAT', data: new Uint8Array(3) } : c));
    expect(decodeError(encodeChunks(zeroIdat))).to.equal('corrupt_png');
  });
});

describe('png/decode on mutated input (property)', function () {
  before(function () {
    if (!suite) this.skip();
  });

  it('never lets a raw error out, whatever bytes are changed, cut or appended', () => {
    const bases = ['basn2c08.png', 'basi3p02.png', 'tbbn0g04.png', 'ctzn0g04.png'].map(readSuite);
    const mutation = fc.record({
      base: fc.integer({ min: 0, max: bases.length - 1 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      tail: fc.uint8Array({ maxLength: 16 }),
      fixCrcs: fc.boolean(),
    });
    fc.assert(
      fc.property(mutation, ({ base, flips, cut, tail, fixCrcs }) => {
        let buf = Buffer.from(bases[base]!);
        for (const [at, x] of flips) buf[8 + (at % (buf.length - 8))]! ^= x;
        if (fixCrcs) {
          try {
            buf = Buffer.from(encodeChunks(extractChunksLenient(buf)));
          } catch {
            /* framing destroyed: decode the damaged bytes as they are */
          }
        }
        if (cut !== null) buf = buf.subarray(0, cut % buf.length);
        decodeError(Buffer.concat([buf, tail]));
      }),
      { numRuns: 400 },
    );
  });
});

/** png-chunks-extract without its CRC check, to build files whose CRCs are right but whose content is not. */
function extractChunksLenient(buf: Buffer): { name: string; data: Uint8Array }[] {
  const out: { name: string; data: Uint8Array }[] = [];
  for (let at = 8; at + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    if (at + 12 + length > buf.length) break;
    out.push({ name: buf.toString('latin1', at + 4, at + 8), data: buf.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return out;
}

describe('png chunk carry-over', function () {
  before(function () {
    if (!suite) this.skip();
  });

  const carried = async (name: string) => {
    const out = await encodePng(decodePng(readSuite(name), LIMIT));
    return extractChunks(out);
  };
  const source = (name: string) => extractChunks(readSuite(name));
  const dataOf = (chunks: { name: string; data: Uint8Array }[], n: string) => chunks.find((c) => c.name === n)?.data;

  it('keeps text, gamma, chromaticity, physical size, time, sBIT and suggested palettes byte for byte', async () => {
    const cases: [string, string][] = [
      ['ct1n0g04.png', 'tEXt'], ['ctzn0g04.png', 'zTXt'], ['ctjn0g04.png', 'iTXt'], ['g03n2c08.png', 'gAMA'],
      ['ccwn2c08.png', 'cHRM'], ['cdfn2c08.png', 'pHYs'], ['cm7n0g04.png', 'tIME'], ['cs3n2c16.png', 'sBIT'],
      ['ps1n0g08.png', 'sPLT'], ['bggn4a16.png', 'bKGD'], ['tbrn2c08.png', 'tRNS'],
    ];
    for (const [file, chunk] of cases) {
      const out = await carried(file);
      expect(dataOf(out, chunk), `${file} ${chunk}`).to.deep.equal(dataOf(source(file), chunk));
    }
  });

  it('keeps every iTXt/tEXt chunk in order', async () => {
    const names = (cs: { name: string }[]) => cs.map((c) => c.name).filter((n) => /TXt$/.test(n));
    for (const file of ['cten0g04.png', 'ctfn0g04.png', 'ctgn0g04.png', 'cthn0g04.png', 'ctjn0g04.png']) {
      const out = await carried(file);
      expect(names(out)).to.deep.equal(names(source(file)));
      expect(out.filter((c) => c.name === 'iTXt').map((c) => Buffer.from(c.data).toString('hex'))).to.deep.equal(
        source(file).filter((c) => c.name === 'iTXt').map((c) => Buffer.from(c.data).toString('hex')),
      );
    }
  });

  it('rewrites palette-dependent chunks when the palette is promoted', async () => {
    const out = await carried('tbbn3p08.png'); // palette + tRNS + bKGD index
    expect(out.map((c) => c.name)).to.not.include.members(['PLTE', 'tRNS', 'hIST']);
    const plte = dataOf(source('tbbn3p08.png'), 'PLTE')!;
    const index = dataOf(source('tbbn3p08.png'), 'bKGD')![0]!;
    expect(Array.from(dataOf(out, 'bKGD')!)).to.deep.equal([0, plte[index * 3], 0, plte[index * 3 + 1], 0, plte[index * 3 + 2]]);
    expect((await carried('ch1n3p04.png')).map((c) => c.name)).to.not.include('hIST');
  });

  it('scales a 4-bit gray colour key and background to 8 bits', async () => {
    const raster = decodePng(readSuite('tbbn0g04.png'), LIMIT);
    const srcKey = dataOf(source('tbbn0g04.png'), 'tRNS')!;
    const key = ((srcKey[0]! << 8) | srcKey[1]!) * 17;
    expect(raster.transparentKey).to.deep.equal([key]);
    const out = await carried('tbbn0g04.png');
    expect(Array.from(dataOf(out, 'tRNS')!)).to.deep.equal([key >> 8, key & 0xff]);
    const bg = dataOf(source('tbbn0g04.png'), 'bKGD')!;
    expect(Array.from(dataOf(out, 'bKGD')!)).to.deep.equal([0, ((bg[0]! << 8) | bg[1]!) * 17]);
  });

  it('keeps unknown safe-to-copy chunks, drops unsafe ones, and keeps chunks after IDAT after IDAT', async () => {
    const chunks = source('basn2c08.png');
    const at = chunks.findIndex((c) => c.name === 'IDAT');
    const safe = { name: 'prVt', data: Buffer.from('keep me') };
    const unsafe = { name: 'prVT', data: Buffer.from('drop me') };
    const late = { name: 'tEXt', data: Buffer.from('Comment\0after the image') };
    const png = encodeChunks([...chunks.slice(0, at), safe, unsafe, ...chunks.slice(at, -1), late, chunks.at(-1)!]);
    const out = extractChunks(await encodePng(decodePng(png, LIMIT))).map((c) => c.name);
    expect(out).to.include('prVt').and.not.include('prVT');
    expect(out.indexOf('prVt')).to.be.lessThan(out.indexOf('IDAT'));
    expect(out.indexOf('tEXt')).to.be.greaterThan(out.lastIndexOf('IDAT'));
  });

  it('refuses an unknown critical chunk as unsupported', () => {
    const chunks = source('basn2c08.png');
    const png = encodeChunks([chunks[0]!, { name: 'ABCD', data: new Uint8Array(2) }, ...chunks.slice(1)]);
    expect(decodeError(png)).to.equal('unsupported_png');
  });
});

const LAYOUTS: { colorType: Raster['colorType']; bitDepth: Raster['bitDepth']; channels: Raster['channels'] }[] = [
  { colorType: 0, bitDepth: 8, channels: 1 }, { colorType: 0, bitDepth: 16, channels: 1 },
  { colorType: 2, bitDepth: 8, channels: 3 }, { colorType: 2, bitDepth: 16, channels: 3 },
  { colorType: 4, bitDepth: 8, channels: 2 }, { colorType: 4, bitDepth: 16, channels: 2 },
  { colorType: 6, bitDepth: 8, channels: 4 }, { colorType: 6, bitDepth: 16, channels: 4 },
];

function rasterOf(layout: (typeof LAYOUTS)[number], width: number, height: number, samples: (i: number) => number): Raster {
  const n = width * height * layout.channels;
  const data = layout.bitDepth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = samples(i);
  const source = { width, height, bitDepth: layout.bitDepth, colorType: layout.colorType, interlace: 0 as const };
  return { ...layout, width, height, data, hasAlpha: layout.channels % 2 === 0, chunks: [], source };
}

describe('png encode->decode round trip (property)', () => {
  it('is exact for random small rasters of every layout', async () => {
    const arb = fc.record({
      layout: fc.constantFrom(...LAYOUTS),
      width: fc.integer({ min: 1, max: 40 }),
      height: fc.integer({ min: 1, max: 40 }),
      seed: fc.integer(),
      smooth: fc.boolean(), // smooth images make the filter choice vary; noise makes it trivial
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ layout, width, height, seed, smooth }) => {
        const max = layout.bitDepth === 16 ? 0xffff : 0xff;
        const raster = rasterOf(layout, width, height, (i) =>
          smooth ? (i * 7 + (seed & 0xff) + ((i / (width * layout.channels)) | 0) * 3) & max : Math.abs(Math.imul(i + 1, seed | 1) >>> 3) & max,
        );
        const out = await encodePng(raster);
        sameRaster(raster, decodePng(out, LIMIT));
        expect(pngjsRgba(out)).to.deep.equal(toPngjsRgba(raster));
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a raster whose data does not match its declared layout', async () => {
    const raster = rasterOf(LAYOUTS[2]!, 4, 4, () => 1);
    const wrong = [
      { ...raster, data: raster.data.subarray(1) },
      { ...raster, channels: 4 as const },
      { ...raster, bitDepth: 16 as const },
    ];
    for (const r of wrong) {
      let error: unknown;
      await encodePng(r).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(TypeError);
    }
  });

  it('is exact for multi-piece images (parallel deflate with dictionaries) on both strategies', async () => {
    let s = 12345;
    const noise = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 24) & 7;
    const photo = rasterOf(LAYOUTS[2]!, 900, 700, (i) => ((i % 2700) / 12 + noise()) & 0xff);
    const graphic = rasterOf(LAYOUTS[7]!, 640, 480, (i) => ((i >> 10) & 1 ? 0xffff : 0x1234 * (i & 3)));
    for (const raster of [photo, graphic]) {
      const out = await encodePng(raster);
      sameRaster(raster, decodePng(out, LIMIT));
      expect(out.length).to.be.lessThan(raster.data.byteLength);
    }
  });
});
