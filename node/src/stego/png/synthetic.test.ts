import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodePng } from './decode.js';
import { COVER, photoLikeRaster } from './synthetic.js';

describe('png/synthetic', () => {
  it('is a function of its seed', () => {
    const a = photoLikeRaster({ width: 64, height: 48, channels: 4, seed: 7 });
    const b = photoLikeRaster({ width: 64, height: 48, channels: 4, seed: 7 });
    const c = photoLikeRaster({ width: 64, height: 48, channels: 4, seed: 8 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).to.equal(true);
    expect(Buffer.from(a.data).equals(Buffer.from(c.data))).to.equal(false);
  });

  it('the committed assets/cover.png holds exactly the pixels scripts/make-cover.ts generates', () => {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../..');
    const cover = decodePng(fs.readFileSync(path.join(root, 'assets', 'cover.png')), { maxPixels: 40_000_000 });
    expect([cover.width, cover.height, cover.colorType, cover.bitDepth]).to.deep.equal([COVER.width, COVER.height, 2, 8]);
    expect(Buffer.from(cover.data).equals(Buffer.from(photoLikeRaster(COVER).data))).to.equal(true);
  });
});
