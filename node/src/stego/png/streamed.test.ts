// decodePngStreamed (extract's decoder: inflate on the threadpool, rows unfiltered as chunks arrive)
// against decodePng: the same Raster for every image, the same errors for every damaged one, and a stop
// as soon as the image data outgrows what IHDR implies.
import { expect } from 'chai';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import type { Raster } from '../raster.js';
import { decodePng, decodePngStreamed } from './decode.js';
import { filterRow, type FilterType } from './filter.js';
import { pngSuiteDir } from './fixtures.js';
import { xorshift32 } from '../xorshift.js';

const require = createRequire(import.meta.url);
const extractChunks = require('png-chunks-extract') as (d: Uint8Array) => { name: string; data: Uint8Array }[];
const encodeChunks = require('png-chunks-encode') as (c: { name: string; data: Uint8Array }[]) => Uint8Array;

const LIMIT = { maxPixels: 40_000_000 };
// every image through the streamed path, however small (the engine streams only large ones)
const STREAMED = { ...LIMIT, streamFromBytes: 0 };
const suite = pngSuiteDir();

async function outcome(decode: () => Raster | Promise<Raster>): Promise<Raster | string> {
  try {
    return await decode();
  } catch (e) {
    if (!(e instanceof StegoError)) throw new Error(`raw error escaped: ${String(e)}`, { cause: e });
    return e.code;
  }
}

/** Both decoders on the same bytes: identical rasters, or the same error code. */
async function sameOutcome(buf: Uint8Array, what: string): Promise<Raster | string> {
  const sync = await outcome(() => decodePng(buf, LIMIT));
  const streamed = await outcome(() => decodePngStreamed(buf, STREAMED));
  if (typeof sync === 'string' || typeof streamed === 'string') {
    expect(streamed, what).to.equal(sync);
    return sync;
  }
  expect([streamed.width, streamed.height, streamed.colorType, streamed.bitDepth, streamed.channels], what).to.deep.equal([
    sync.width, sync.height, sync.colorType, sync.bitDepth, sync.channels,
  ]);
  expect(Buffer.from(streamed.data.buffer, streamed.data.byteOffset, streamed.data.byteLength).equals(
    Buffer.from(sync.data.buffer, sync.data.byteOffset, sync.data.byteLength),
  ), what).to.equal(true);
  expect(streamed.transparentKey, what).to.deep.equal(sync.transparentKey);
  expect(streamed.chunks, what).to.deep.equal(sync.chunks);
  return streamed;
}

function ihdr(width: number, height: number, bitDepth: number, colorType: number): { name: string; data: Uint8Array } {
  const data = Buffer.alloc(13);
  data.writeUInt32BE(width, 0);
  data.writeUInt32BE(height, 4);
  data[8] = bitDepth;
  data[9] = colorType;
  return { name: 'IHDR', data };
}

/** An 8-bit PNG of random pixels whose row y uses filter types[y], its zlib stream cut into `pieces` IDAT chunks. */
function pngWithFilters(width: number, height: number, channels: 3 | 4, types: (y: number) => FilterType, pieces = 3, seed = 1): { png: Uint8Array; pixels: Buffer } {
  const n = width * channels;
  const next = xorshift32(seed);
  const pixels = Buffer.alloc(n * height);
  // smooth gradients plus noise, so every predictor sees both small and wrapping differences
  for (let i = 0; i < pixels.length; i++) pixels[i] = ((i % n) >> 3) + ((i / n) >> 2) + (next() & 15);
  const stream = Buffer.alloc(height * (n + 1));
  const zero = new Uint8Array(n);
  for (let y = 0; y < height; y++) {
    const type = types(y);
    stream[y * (n + 1)] = type;
    filterRow(type, pixels.subarray(y * n, (y + 1) * n), y === 0 ? zero : pixels.subarray((y - 1) * n, y * n), channels, stream, y * (n + 1) + 1);
  }
  return { png: pngOf(ihdr(width, height, 8, channels === 3 ? 2 : 6), zlib.deflateSync(stream, { level: 1 }), pieces), pixels };
}

function pngOf(header: { name: string; data: Uint8Array }, compressed: Uint8Array, pieces = 1): Uint8Array {
  const step = Math.ceil(compressed.length / pieces);
  const idat = Array.from({ length: pieces }, (_, i) => ({ name: 'IDAT', data: compressed.subarray(i * step, (i + 1) * step) }));
  return new Uint8Array(encodeChunks([header, ...idat, { name: 'IEND', data: new Uint8Array(0) }]));
}

describe('png/decode streamed (extract) against decodePng', function () {
  it('decodes every PngSuite image to the same raster, and refuses every damaged or truncated one alike', async function () {
    if (!suite) this.skip();
    const files = fs.readdirSync(suite!).filter((f) => f.endsWith('.png')).sort();
    for (const name of files) await sameOutcome(fs.readFileSync(path.join(suite!, name)), name);
    for (const name of ['basn2c08.png', 'basn6a16.png', 'f04n2c08.png']) {
      const buf = fs.readFileSync(path.join(suite!, name));
      for (let len = 0; len < buf.length; len += 3) {
        expect(await sameOutcome(buf.subarray(0, len), `${name}[0..${len})`)).to.be.oneOf(['not_png', 'corrupt_png']);
      }
    }
  });

  for (const channels of [3, 4] as const) {
    it(`decodes multi-chunk ${channels === 3 ? 'RGB' : 'RGBA'} images with every filter type, rows split across chunks`, async () => {
      // 2.3 MB (RGB) / 3 MB (RGBA) of filtered rows: several 1 MB inflate chunks, row boundaries anywhere in them
      const width = 1001;
      const height = channels === 3 ? 760 : 750;
      const next = xorshift32(channels);
      const types = Array.from({ length: height }, () => (next() % 5) as FilterType);
      const { png, pixels } = pngWithFilters(width, height, channels, (y) => types[y]!, 7, channels);
      const raster = await decodePngStreamed(png, STREAMED);
      expect(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength).equals(pixels)).to.equal(true);
      await sameOutcome(png, 'multi-chunk');
    });
  }

  it('decodes a width whose rows are not a multiple of 4 bytes (no word paths) alike', async () => {
    const { png, pixels } = pngWithFilters(333, 41, 3, (y) => (y % 5) as FilterType);
    const raster = await decodePngStreamed(png, STREAMED);
    expect(Buffer.from(raster.data.buffer, raster.data.byteOffset, raster.data.byteLength).equals(pixels)).to.equal(true);
  });

  it('refuses an unknown filter type in a late chunk with corrupt_png', async () => {
    const { png } = pngWithFilters(1001, 760, 3, (y) => (y === 700 ? (7 as FilterType) : 4));
    const error = await decodePngStreamed(png, STREAMED).then(() => undefined, (e: unknown) => e);
    expect(error).to.be.instanceOf(StegoError);
    expect((error as StegoError).code).to.equal('corrupt_png');
    expect((error as StegoError).message).to.match(/unknown filter type 7 on row 700/);
  });

  it('stops a decompression bomb at the size IHDR implies, and refuses short or damaged image data', async () => {
    // 100x100 RGB implies 30 100 filtered bytes; this stream inflates to 64 MB of zeros
    const bomb = zlib.deflateSync(Buffer.alloc(64 << 20), { level: 9 });
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    expect(await outcome(() => decodePngStreamed(pngOf(ihdr(100, 100, 8, 2), bomb), STREAMED))).to.equal('corrupt_png');
    expect(performance.now() - started, 'stops after the first chunk, not after inflating 64 MB').to.be.below(2000);
    expect(process.memoryUsage().arrayBuffers - before, 'retained').to.be.below(16 << 20);
    // a big declared image whose data is a bomb too: the stream stops within the first chunks
    const big = await outcome(() => decodePngStreamed(pngOf(ihdr(3000, 3000, 8, 2), bomb, 4), LIMIT));
    expect(big).to.equal('corrupt_png');
    const short = zlib.deflateSync(Buffer.alloc(30_100 - 301));
    expect(await sameOutcome(pngOf(ihdr(100, 100, 8, 2), short), 'short')).to.equal('corrupt_png');
    const { png } = pngWithFilters(400, 300, 3, () => 3);
    const chunks = extractChunks(png);
    const idat = chunks.find((c) => c.name === 'IDAT')!;
    for (let i = 2; i < idat.data.length; i += 997) {
      const damaged = Uint8Array.from(idat.data);
      damaged[i] = damaged[i]! ^ 0x5a;
      const buf = encodeChunks(chunks.map((c) => (c === idat ? { name: 'IDAT', data: damaged } : c)));
      expect(await sameOutcome(buf, `flip at ${i}`)).to.satisfy((r: unknown) => typeof r !== 'string' || r === 'corrupt_png');
    }
  });
});
