import { expect } from 'chai';
import fc from 'fast-check';
import zlib from 'node:zlib';
import { adler32, adler32Combine } from './adler32.js';

/** zlib's own Adler-32: the last 4 bytes of a zlib stream. */
function zlibAdler(data: Uint8Array): number {
  const z = zlib.deflateSync(data, { level: 0 });
  return z.readUInt32BE(z.length - 4);
}

describe('png/adler32', () => {
  it('matches zlib, including runs longer than the 5552-byte reduction interval', () => {
    const big = new Uint8Array(100_000).fill(255);
    expect(adler32(big)).to.equal(zlibAdler(big));
    expect(adler32(new Uint8Array(0))).to.equal(1);
  });

  it('combines the checksums of two pieces into the checksum of their concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 20_000 }), fc.uint8Array({ maxLength: 20_000 }), (a, b) => {
        const whole = new Uint8Array([...a, ...b]);
        expect(adler32Combine(adler32(a), adler32(b), b.length)).to.equal(zlibAdler(whole));
      }),
      { numRuns: 100 },
    );
  });
});
