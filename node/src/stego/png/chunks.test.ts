import { expect } from 'chai';
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import { photoLikeRaster } from './synthetic.js';
import { encodePng } from './encode.js';
import { decodePng } from './decode.js';
import { splitPng, DEFAULT_CHUNK_LIMITS } from './chunks.js';
import { validatePng } from './validate.js';
import { decompressionBomb, randomBehindSignature, truncated, withBigTextChunk, withTextChunks } from './hostile.js';

const small = (): Promise<Buffer> => encodePng(photoLikeRaster({ width: 64, height: 64, channels: 3, seed: 7, noise: 12 }));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return (e as StegoError).code;
  }
  return undefined;
}

async function asyncCodeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    return (e as StegoError).code;
  }
  return undefined;
}

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

describe('PNG chunk limits and linear chunk handling', () => {
  it('refuses more chunks than the limit with 413 too_many_chunks, naming the limit', async () => {
    const png = withTextChunks(await small(), DEFAULT_CHUNK_LIMITS.maxChunks + 10);
    let err: StegoError | undefined;
    try {
      decodePng(png, { maxPixels: 1e6 });
    } catch (e) {
      err = e as StegoError;
    }
    expect(err?.code).to.equal('too_many_chunks');
    expect(err?.message).to.include(String(DEFAULT_CHUNK_LIMITS.maxChunks));
  });

  it('refuses ancillary chunks over the byte limit with 413 ancillary_too_large (one 40 MB tEXt chunk)', async () => {
    const png = withBigTextChunk(await small(), 40 * 1024 * 1024);
    const started = Date.now();
    expect(codeOf(() => decodePng(png, { maxPixels: 1e6 }))).to.equal('ancillary_too_large');
    // refused by the framing walk before the chunk's CRC or data are touched (was 9 s and ~940 MB)
    expect(Date.now() - started).to.be.below(2_000);
  });

  it('honours limits given per call and keeps chunks within them', async () => {
    const png = withTextChunks(await small(), 100);
    expect(codeOf(() => splitPng(png, 2, { maxChunks: 50, maxAncillaryBytes: 1e6 }))).to.equal('too_many_chunks');
    expect(codeOf(() => splitPng(png, 2, { maxChunks: 1000, maxAncillaryBytes: 100 }))).to.equal('ancillary_too_large');
    const split = splitPng(png, 2, { maxChunks: 1000, maxAncillaryBytes: 1e6 });
    expect(split.ancillary.filter((c) => c.name === 'tEXt')).to.have.length(100);
    expect(split.ancillary[0]!.position).to.equal('beforePLTE');
  });

  it('walks chunks in time linear in their number (8x the chunks costs far less than 64x the time)', async () => {
    const base = await small();
    const limits = { maxChunks: 1e7, maxAncillaryBytes: 1e9 };
    const a = withTextChunks(base, 10_000);
    const b = withTextChunks(base, 80_000);
    splitPng(a, 2, limits); // warm-up
    const best = (png: Buffer): number => Math.min(...[0, 1, 2, 3, 4].map(() => cpuMs(() => splitPng(png, 2, limits))));
    const ta = best(a);
    const tb = best(b);
    // linear: ~8x (3x margin for a shared machine); the old per-chunk lookup was quadratic (~64x in
    // theory, 26x measured: 0.04 s -> 1.04 s for 10k -> 80k)
    expect(tb / Math.max(ta, 0.5)).to.be.below(24);
  });

  it('validates a stored PNG structurally: truncation, bad image data, bytes behind a signature, bombs', async () => {
    const png = await small();
    const header = await validatePng(png, { maxPixels: 1e6 });
    expect(header).to.include({ width: 64, height: 64 });
    expect(await asyncCodeOf(validatePng(truncated(png), { maxPixels: 1e6 }))).to.equal('corrupt_png');
    expect(await asyncCodeOf(validatePng(randomBehindSignature(4096), { maxPixels: 1e6 }))).to.equal('corrupt_png');
    const bomb = await decompressionBomb(4000, 4000);
    expect(bomb.length).to.be.below(200_000);
    expect(await asyncCodeOf(validatePng(bomb, { maxPixels: 1e6 }))).to.equal('image_too_large');
    // right CRCs around image data that is not a zlib stream of the right size
    const damaged = Buffer.from(png);
    const idat = damaged.indexOf('IDAT', 0, 'latin1');
    const length = damaged.readUInt32BE(idat - 4);
    damaged.fill(0x55, idat + 4 + 10, idat + 4 + length - 10);
    damaged.writeUInt32BE(zlib.crc32(damaged.subarray(idat, idat + 4 + length)), idat + 4 + length);
    expect(await asyncCodeOf(validatePng(damaged, { maxPixels: 1e6 }))).to.equal('corrupt_png');
  });
});
