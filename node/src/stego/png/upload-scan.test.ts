import { expect } from 'chai';
import { StegoError } from '../errors.js';
import { photoLikeRaster } from './synthetic.js';
import { encodePng } from './encode.js';
import { DEFAULT_CHUNK_LIMITS, splitPng } from './chunks.js';
import { readHeader } from './header.js';
import { decompressionBomb, randomBehindSignature, truncated, withTextChunks } from './hostile.js';
import { PngUploadScanner, type UploadScanLimits } from './upload-scan.js';

const small = (): Promise<Buffer> => encodePng(photoLikeRaster({ width: 64, height: 64, channels: 3, seed: 7, noise: 12 }));
const LIMITS: UploadScanLimits = { maxChunks: 50, maxAncillaryBytes: 1000, maxPixels: 1_000_000 };

interface Fed {
  code?: string;
  /** Bytes pushed before the scanner refused (all of them when it did not). */
  fedBytes: number;
}

/** Feeds `png` in pieces of `piece` bytes; reports the refusal and how far into the file it came. */
function feed(png: Uint8Array, limits = LIMITS, piece = 7): Fed {
  const s = new PngUploadScanner(limits);
  let at = 0;
  try {
    for (; at < png.length; at += piece) s.push(png.subarray(at, at + piece));
  } catch (e) {
    if (!(e instanceof StegoError)) throw e;
    return { code: e.code, fedBytes: Math.min(png.length, at + piece) };
  }
  return { fedBytes: png.length };
}

describe('PngUploadScanner (checks while an upload arrives)', () => {
  it('accepts valid PNGs fed in any piece size, trailing bytes after IEND included', async () => {
    const base = await small();
    for (const piece of [1, 3, 8, 13, 4096, base.length]) {
      expect(feed(base, LIMITS, piece).code, `piece ${piece}`).to.equal(undefined);
      expect(feed(withTextChunks(base, 40), LIMITS, piece).code).to.equal(undefined);
    }
    expect(feed(Buffer.concat([base, Buffer.from('trailing junk after IEND')])).code).to.equal(undefined);
  });

  it('refuses a non-PNG at its first wrong signature byte (not_png)', () => {
    const r = feed(Buffer.from('GIF89a and then a lot more bytes that are never looked at'), LIMITS, 1);
    expect(r).to.deep.equal({ code: 'not_png', fedBytes: 1 });
  });

  it('refuses a decompression bomb at byte 33, from IHDR alone (image_too_large)', async () => {
    const bomb = await decompressionBomb(3_000, 3_000);
    const header = readHeader(bomb);
    expect(header.width * header.height).to.equal(9_000_000);
    expect(feed(bomb, { ...DEFAULT_CHUNK_LIMITS, maxPixels: 1_000_000 }, 1)).to.deep.equal({ code: 'image_too_large', fedBytes: 33 });
    expect(feed(bomb, { ...DEFAULT_CHUNK_LIMITS, maxPixels: 9_000_000 }, 4096).code).to.equal(undefined);
  });

  it('refuses a damaged IHDR or chunk framing as corrupt_png, like the full check', async () => {
    const base = await small();
    const badCrc = Buffer.from(base);
    badCrc[29] ^= 0xff;
    expect(feed(badCrc).code).to.equal('corrupt_png');
    const badType = Buffer.from(base);
    badType.write('I$AT', 37, 'latin1');
    expect(feed(badType).code).to.equal('corrupt_png');
    expect(() => splitPng(badType, 2)).to.throw(StegoError);
  });

  it('applies the chunk-count and ancillary-bytes limits of splitPng, from chunk headers alone', async () => {
    const base = await small();
    const many = withTextChunks(base, 60);
    const r = feed(many);
    expect(r.code).to.equal('too_many_chunks');
    // refused at the 51st chunk's header, long before the end of the file
    expect(r.fedBytes).to.be.below(33 + 50 * 20 + 7);
    expect(() => splitPng(many, 2, LIMITS)).to.throw(StegoError).with.property('code', 'too_many_chunks');
    expect(feed(withTextChunks(base, 20, 100), undefined, 1).code).to.equal('ancillary_too_large');
    // only the header of a huge chunk is needed
    const announced = Buffer.concat([base.subarray(0, 33), Buffer.from([0x7f, 0, 0, 0]), Buffer.from('tEXt')]);
    expect(feed(announced, { ...DEFAULT_CHUNK_LIMITS, maxPixels: 1e6 }, 4096)).to.deep.equal({ code: 'ancillary_too_large', fedBytes: 41 });
  });

  it('leaves what it cannot judge yet to the full check: a short or truncated file, random bytes behind the signature', async () => {
    const base = await small();
    expect(feed(base.subarray(0, 20)).code).to.equal(undefined);
    expect(feed(truncated(base, 40)).code).to.equal(undefined);
    // random data after a signature fails at IHDR, exactly as readHeader does
    expect(feed(randomBehindSignature(4096)).code).to.equal('corrupt_png');
  });
});
