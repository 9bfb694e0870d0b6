// decodePng({ consumeInput }) frees the caller's PNG early (what bounds an embed's peak memory): the
// raster and the carried chunks must be exactly what a non-consuming decode returns, and only a view
// that spans its whole ArrayBuffer may be freed.
import { expect } from 'chai';
import { createRequire } from 'node:module';
import zlib from 'node:zlib';
import { embed, extract } from '../engine.js';
import { decodePng } from './decode.js';
import { encodePng } from './encode.js';
import { photoLikeRaster } from './synthetic.js';

const require = createRequire(import.meta.url);
const extractChunks = require('png-chunks-extract') as (d: Uint8Array) => { name: string; data: Uint8Array }[];
const encodeChunks = require('png-chunks-encode') as (c: { name: string; data: Uint8Array }[]) => Uint8Array;

const LIMIT = { maxPixels: 40_000_000 };

/** A PNG whose image data is in `pieces` IDAT chunks, with a tEXt chunk before and after the data. */
async function pngWith(pieces: number): Promise<Uint8Array> {
  const encoded = await encodePng(photoLikeRaster({ width: 320, height: 200, channels: 3, seed: 7 }));
  const chunks = extractChunks(encoded);
  const idat = Buffer.concat(chunks.filter((c) => c.name === 'IDAT').map((c) => c.data));
  const step = Math.ceil(idat.length / pieces);
  const data = Array.from({ length: pieces }, (_, i) => ({ name: 'IDAT', data: idat.subarray(i * step, (i + 1) * step) }));
  const text = (s: string) => ({ name: 'tEXt', data: Buffer.from(`Comment\0${s}`, 'latin1') });
  const ihdr = chunks.find((c) => c.name === 'IHDR')!;
  const bytes = encodeChunks([ihdr, text('before'), ...data, text('after'), { name: 'IEND', data: new Uint8Array(0) }]);
  return new Uint8Array(bytes); // its own whole ArrayBuffer, never a view of Node's pool
}

const copyOf = (b: Uint8Array) => new Uint8Array(b);

describe('png/decode consumeInput', () => {
  for (const pieces of [1, 5]) {
    it(`frees the input and returns the same raster and chunks (${pieces} IDAT chunk${pieces > 1 ? 's' : ''})`, async () => {
      const png = await pngWith(pieces);
      const expected = decodePng(png, LIMIT);
      const given = copyOf(png);
      const got = decodePng(given, { ...LIMIT, consumeInput: true });
      expect(given.byteLength, 'input detached').to.equal(0);
      expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(expected.data))).to.equal(true);
      expect(got.chunks.map((c) => [c.name, c.position, Buffer.from(c.data).toString('latin1')])).to.deep.equal(
        expected.chunks.map((c) => [c.name, c.position, Buffer.from(c.data).toString('latin1')]),
      );
      expect(Buffer.from(got.chunks[0]!.data).toString('latin1')).to.equal('Comment\0before');
    });
  }

  it('leaves a view that does not span its whole buffer intact', async () => {
    const png = await pngWith(3);
    const backing = new Uint8Array(png.length + 16);
    backing.set(png, 8);
    const view = backing.subarray(8, 8 + png.length);
    decodePng(view, { ...LIMIT, consumeInput: true });
    expect(backing.byteLength).to.equal(png.length + 16);
    expect(Buffer.from(view).equals(Buffer.from(png))).to.equal(true);
  });

  it('frees a corrupt input too and still answers corrupt_png', async () => {
    const png = await pngWith(2);
    const chunks = extractChunks(png);
    const bad = chunks.map((c) => (c.name === 'IDAT' ? { name: 'IDAT', data: zlib.deflateSync(Buffer.alloc(10)).subarray(0, 6) } : c));
    const given = new Uint8Array(encodeChunks(bad));
    expect(() => decodePng(given, { ...LIMIT, consumeInput: true })).to.throw().with.property('code', 'corrupt_png');
  });

  it('joins IDAT chunks of any sizes in place, down to one byte each', async () => {
    const encoded = await encodePng(photoLikeRaster({ width: 64, height: 40, channels: 4, seed: 3 }));
    const chunks = extractChunks(encoded);
    const idat = Buffer.concat(chunks.filter((c) => c.name === 'IDAT').map((c) => c.data));
    const sizes = [1, 2, 3, 1, 700, 1, 5000];
    const parts: Uint8Array[] = [];
    for (let at = 0, i = 0; at < idat.length; i++) {
      const size = sizes[i % sizes.length]!;
      parts.push(idat.subarray(at, at + size));
      at += size;
    }
    const png = new Uint8Array(encodeChunks([chunks[0]!, ...parts.map((data) => ({ name: 'IDAT', data })), { name: 'IEND', data: new Uint8Array(0) }]));
    const expected = decodePng(png, LIMIT);
    const got = decodePng(copyOf(png), { ...LIMIT, consumeInput: true });
    expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(expected.data))).to.equal(true);
  });

  it('engine.extract with consumeInput frees the input and finds the payload; a damaged one is corrupt_png', async () => {
    const payload = { kind: 'text' as const, text: 'read from IDAT chunks joined in place' };
    const out = await embed(await pngWith(5), payload);
    const pieces = extractChunks(out).filter((c) => c.name === 'IDAT').length;
    expect(pieces, 'the image has several IDAT chunks').to.be.greaterThan(1);
    const given = copyOf(out);
    expect(await extract(given, { consumeInput: true })).to.deep.equal(payload);
    expect(given.byteLength, 'input detached').to.equal(0);
    const damaged = extractChunks(out).map((c) => (c.name === 'IDAT' ? { name: 'IDAT', data: new Uint8Array(c.data.length).fill(0x55) } : c));
    const error = await extract(new Uint8Array(encodeChunks(damaged)), { consumeInput: true }).catch((e: unknown) => e);
    expect(error).to.have.property('code', 'corrupt_png');
  });

  it('engine.embed with consumeInput frees the input and writes a complete image', async () => {
    const png = await pngWith(4);
    const payload = { kind: 'text' as const, text: 'the input is gone, the image is whole' };
    const given = copyOf(png);
    const out = await embed(given, payload, { consumeInput: true });
    expect(given.byteLength).to.equal(0);
    expect(await extract(out)).to.deep.equal(payload);
    const cover = decodePng(png, LIMIT);
    const stego = decodePng(out, LIMIT);
    expect([stego.width, stego.height, stego.chunks.map((c) => c.name)]).to.deep.equal([cover.width, cover.height, cover.chunks.map((c) => c.name)]);
    let changed = 0;
    for (let i = 0; i < cover.data.length; i++) changed += Math.abs(cover.data[i]! - stego.data[i]!) === 1 ? 1 : 0;
    expect(changed, 'only ±1 changes, a payload worth of them').to.be.within(100, 1000);
  });
});
