import { expect } from 'chai';
import { capacity, embed, extract, payloadSize, type Payload } from './engine.js';
import { StegoError } from './errors.js';
import { decodePng } from './png/decode.js';
import { encodePng } from './png/encode.js';
import { readHeader } from './png/header.js';
import type { Raster } from './raster.js';
import { codeOf } from './fixtures/outcome.js';

const LOW_COST = 10;

function photo(width: number, height: number, channels: 3 | 4, bitDepth: 8 | 16 = 8): Raster {
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  let noise = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const base = (y * width + x) * channels;
      for (let c = 0; c < 3; c++) {
        noise = (Math.imul(noise, 1103515245) + 12345) >>> 0;
        data[base + c] = Math.min(max, Math.floor((((x + c * y) % width) / width) * max) + (noise >>> 28));
      }
      if (channels === 4) data[base + 3] = x < width / 4 ? 0 : x < width / 2 ? 128 : max;
    }
  }
  const colorType = channels === 4 ? 6 : 2;
  return {
    width, height, colorType, bitDepth, channels, hasAlpha: channels === 4, data, chunks: [],
    source: { width, height, bitDepth, colorType, interlace: 0 },
  };
}


describe('stego engine', () => {
  let rgb: Buffer;
  let rgba16: Buffer;
  before(async () => {
    rgb = await encodePng(photo(120, 80, 3));
    rgba16 = await encodePng(photo(64, 48, 4, 16));
  });

  it('embeds and extracts text, keeping size, colour type and depth', async () => {
    const payload: Payload = { kind: 'text', text: 'Grüße aus der Cloud 🌩\u0000 end' };
    const out = await embed(rgb, payload);
    expect(readHeader(out)).to.deep.include({ width: 120, height: 80, colorType: 2, bitDepth: 8 });
    expect(await extract(out)).to.deep.equal(payload);
  });

  it('embeds and extracts a binary file with a passphrase; 16-bit RGBA stays 16-bit RGBA with alpha exact', async () => {
    const data = Uint8Array.from({ length: 500 }, (_, i) => (i * 37) & 0xff);
    const payload: Payload = { kind: 'file', filename: 'naïve.bin', data };
    const out = await embed(rgba16, payload, { passphrase: 'pw', scryptLog2N: LOW_COST });
    expect(readHeader(out)).to.deep.include({ colorType: 6, bitDepth: 16 });
    const back = await extract(out, { passphrase: 'pw', scryptLog2N: LOW_COST });
    expect(back.kind).to.equal('file');
    if (back.kind === 'file') {
      expect(back.filename).to.equal('naïve.bin');
      expect(Buffer.from(back.data)).to.deep.equal(Buffer.from(data));
      expect(back.data.buffer.byteLength, 'transferable without dragging a pool along').to.equal(data.length);
    }
    const before = decodePng(rgba16, { maxPixels: 1e6 }).data;
    const after = decodePng(out, { maxPixels: 1e6 }).data;
    for (let i = 3; i < before.length; i += 4) expect(after[i]).to.equal(before[i]);
    // Nothing without the passphrase tells this image from a cover: both answers are a plain no_payload.
    expect(await codeOf(() => extract(out))).to.equal('no_payload');
    expect(await codeOf(() => extract(out, { passphrase: 'PW', scryptLog2N: LOW_COST }))).to.equal('no_payload');
  });

  it('reports capacity exactly: capacityBytes fit, one more byte does not', async () => {
    for (const opts of [{}, { passphrase: 'pw', scryptLog2N: LOW_COST }]) {
      const { width, height, capacityBytes } = await capacity(rgb, opts);
      expect([width, height]).to.deep.equal([120, 80]);
      expect(capacityBytes).to.equal(Math.floor((120 * 80 * 3) / 8) - ('passphrase' in opts ? 54 : 19));
      const fits: Payload = { kind: 'text', text: 'a'.repeat(capacityBytes) };
      expect(payloadSize(fits, opts)).to.equal(capacityBytes);
      expect(await extract(await embed(rgb, fits, opts), opts)).to.deep.equal(fits);
      let error: StegoError | undefined;
      await embed(rgb, { kind: 'text', text: 'a'.repeat(capacityBytes + 1) }, opts).catch((e: StegoError) => (error = e));
      expect(error?.code).to.equal('capacity_exceeded');
      expect(error?.details).to.include({ neededBytes: capacityBytes + 1, availableBytes: capacityBytes });
    }
  });

  it('counts the filename against capacity for files', () => {
    expect(payloadSize({ kind: 'file', filename: 'ab', data: new Uint8Array(10) })).to.equal(13);
    expect(payloadSize({ kind: 'text', text: 'é' })).to.equal(2);
  });

  it('says no_payload for a clean image, with or without a passphrase, and says what to do', async () => {
    expect(await codeOf(() => extract(rgb))).to.equal('no_payload');
    expect(await codeOf(() => extract(rgb, { passphrase: 'pw', scryptLog2N: LOW_COST }))).to.equal('no_payload');
    const error = await extract(rgb).catch((e: unknown) => e);
    expect((error as StegoError).message).to.equal('nothing found; if something was hidden with a passphrase, supply the right one');
  });

  it('refuses non-PNGs, truncated PNGs and images over the pixel limit with StegoErrors', async () => {
    expect(await codeOf(() => embed(Buffer.from('GIF89a....'), { kind: 'text', text: 'x' }))).to.equal('not_png');
    expect(await codeOf(() => extract(new Uint8Array(0)))).to.equal('not_png');
    expect(await codeOf(() => capacity(rgb, { maxPixels: 100 }))).to.equal('image_too_large');
    for (const cut of [20, 40, rgb.length >> 1, rgb.length - 5]) {
      expect(['corrupt_png', 'not_png']).to.include(await codeOf(() => extract(rgb.subarray(0, cut))));
    }
  });
});
