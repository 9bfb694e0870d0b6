import { expect } from 'chai';
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import { assertWithinPixelLimit, readHeader } from './header.js';

function pngHeader(fields: { width?: number; height?: number; depth?: number; color?: number; interlace?: number }): Buffer {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(fields.width ?? 4, 0);
  d.writeUInt32BE(fields.height ?? 3, 4);
  d[8] = fields.depth ?? 8;
  d[9] = fields.color ?? 2;
  d[12] = fields.interlace ?? 0;
  const type = Buffer.from('IHDR', 'latin1');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(13, 0);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([type, d])), 0);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), len, type, d, crc]);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(StegoError);
    return (e as StegoError).code;
  }
  return 'no error';
}

describe('png/readHeader', () => {
  it('reads the IHDR fields of a valid header', () => {
    expect(readHeader(pngHeader({ width: 4000, height: 3000, depth: 16, color: 6, interlace: 1 }))).to.deep.equal({
      width: 4000,
      height: 3000,
      bitDepth: 16,
      colorType: 6,
      interlace: 1,
    });
  });

  it('accepts every legal colour type / depth pair and refuses the others', () => {
    const legal: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
    for (const color of [0, 1, 2, 3, 4, 5, 6, 7]) {
      for (const depth of [0, 1, 2, 3, 4, 8, 16, 32]) {
        const ok = legal[color]?.includes(depth) ?? false;
        expect(codeOf(() => readHeader(pngHeader({ color, depth }))), `color ${color} depth ${depth}`).to.equal(
          ok ? 'no error' : 'corrupt_png',
        );
      }
    }
  });

  it('refuses zero and over-2^31-1 dimensions, and unknown interlace methods', () => {
    expect(codeOf(() => readHeader(pngHeader({ width: 0 })))).to.equal('corrupt_png');
    expect(codeOf(() => readHeader(pngHeader({ height: 0 })))).to.equal('corrupt_png');
    expect(codeOf(() => readHeader(pngHeader({ width: 2 ** 31 })))).to.equal('corrupt_png');
    expect(codeOf(() => readHeader(pngHeader({ interlace: 2 })))).to.equal('corrupt_png');
  });

  it('tells a non-PNG from a damaged PNG', () => {
    expect(codeOf(() => readHeader(Buffer.from('GIF89a.....................................')))).to.equal('not_png');
    expect(codeOf(() => readHeader(new Uint8Array(0)))).to.equal('not_png');
    expect(codeOf(() => readHeader(pngHeader({}).subarray(0, 20)))).to.equal('corrupt_png');
    const badCrc = pngHeader({});
    badCrc[badCrc.length - 1]! ^= 1;
    expect(codeOf(() => readHeader(badCrc))).to.equal('corrupt_png');
  });

  it('refuses images over the pixel limit, naming the count and the limit', () => {
    const header = readHeader(pngHeader({ width: 50_000, height: 50_000 }));
    try {
      assertWithinPixelLimit(header, 40_000_000);
      expect.fail('no error');
    } catch (e) {
      expect((e as StegoError).code).to.equal('image_too_large');
      expect((e as StegoError).message).to.contain('2500000000').and.contain('40000000');
    }
    expect(() => assertWithinPixelLimit(readHeader(pngHeader({ width: 40_000, height: 1000 })), 40_000_000)).not.to.throw();
  });
});
