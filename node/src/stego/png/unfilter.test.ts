// RowUnfilter's fast paths (32-bit words for 4-byte pixels and Up, locals for 3- and 4-byte pixels)
// against two references: the encoder's filterRow (unfiltering must give back the rows it filtered) and
// the byte-by-byte loop every other layout takes.
import { expect } from 'chai';
import fc from 'fast-check';
import { StegoError } from '../errors.js';
import { filterRow, type FilterType } from './filter.js';
import { RowUnfilter, unfilterBytes } from './unfilter.js';

interface Case {
  n: number;
  bpp: number;
  height: number;
  rows: Uint8Array; // height·n unfiltered bytes
  types: FilterType[];
}

/** The filtered stream of `rows`: one filter byte then n filtered bytes per row, as in the IDAT data. */
function filtered({ n, bpp, height, rows, types }: Case): Buffer {
  const out = Buffer.alloc(height * (n + 1));
  const zero = new Uint8Array(n);
  for (let y = 0; y < height; y++) {
    out[y * (n + 1)] = types[y]!;
    const prev = y === 0 ? zero : rows.subarray((y - 1) * n, y * n);
    filterRow(types[y]!, rows.subarray(y * n, (y + 1) * n), prev, bpp, out, y * (n + 1) + 1);
  }
  return out;
}

/** Unfilters into `dst` starting at byte `offset` (0 or an odd offset that defeats the word paths). */
function unfilterInto(c: Case, stream: Buffer, offset: number): Buffer {
  const backing = Buffer.alloc(offset + c.height * c.n);
  const dst = backing.subarray(offset);
  const rows = new RowUnfilter(dst, c.n, c.bpp);
  for (let y = 0; y < c.height; y++) rows.row(stream, y * (c.n + 1), y * c.n, y);
  return dst;
}

function unfilterInPlace(c: Case, stream: Buffer): Buffer {
  const rows = new RowUnfilter(stream, c.n, c.bpp);
  for (let y = 0; y < c.height; y++) rows.row(stream, y * (c.n + 1), y * c.n, y);
  return stream.subarray(0, c.height * c.n);
}

function reference(c: Case, stream: Buffer): Buffer {
  const dst = Buffer.alloc(c.height * c.n);
  for (let y = 0; y < c.height; y++) unfilterBytes(stream[y * (c.n + 1)]!, stream, y * (c.n + 1) + 1, dst, y * c.n, c.n, c.bpp, y);
  return dst;
}

// bpp 1 (gray 8, sub-byte depths), 2 (GA 8, gray 16), 3 (RGB 8), 4 (RGBA 8, GA 16), 6 (RGB 16), 8 (RGBA 16)
const layout = fc
  .record({ bpp: fc.constantFrom(1, 2, 3, 4, 6, 8), pixels: fc.integer({ min: 1, max: 9 }), height: fc.integer({ min: 1, max: 6 }) })
  .chain(({ bpp, pixels, height }) =>
    fc.record({
      n: fc.constant(bpp * pixels),
      bpp: fc.constant(bpp),
      height: fc.constant(height),
      rows: fc.uint8Array({ minLength: height * bpp * pixels, maxLength: height * bpp * pixels }),
      types: fc.array(fc.constantFrom<FilterType>(0, 1, 2, 3, 4), { minLength: height, maxLength: height }),
    }),
  );

describe('png/unfilter RowUnfilter', () => {
  it('gives back the rows filterRow filtered, for every filter and pixel size, aligned, unaligned and in place', () => {
    fc.assert(
      fc.property(layout, (c) => {
        const stream = filtered(c);
        const want = Buffer.from(c.rows);
        expect(unfilterInto(c, stream, 0).equals(want), 'aligned').to.equal(true);
        expect(unfilterInto(c, stream, 1).equals(want), 'unaligned').to.equal(true);
        expect(reference(c, stream).equals(want), 'byte loops').to.equal(true);
        expect(unfilterInPlace(c, Buffer.from(stream)).equals(want), 'in place').to.equal(true);
      }),
      { numRuns: 600 },
    );
  });

  it('matches the byte loops on arbitrary filtered bytes (wrap-around at every byte value)', () => {
    const stream = fc.record({ bpp: fc.constantFrom(3, 4), pixels: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 5 }) }).chain(
      ({ bpp, pixels, height }) =>
        fc.record({
          c: fc.constant({ n: bpp * pixels, bpp, height, rows: new Uint8Array(0), types: [] as FilterType[] }),
          bytes: fc.uint8Array({ minLength: height * (bpp * pixels + 1), maxLength: height * (bpp * pixels + 1) }),
        }),
    );
    fc.assert(
      fc.property(stream, ({ c, bytes }) => {
        const s = Buffer.from(bytes);
        for (let y = 0; y < c.height; y++) s[y * (c.n + 1)] = s[y * (c.n + 1)]! % 5;
        const want = reference(c, s);
        expect(unfilterInto(c, s, 0).equals(want)).to.equal(true);
        expect(unfilterInto(c, s, 3).equals(want)).to.equal(true);
      }),
      { numRuns: 400 },
    );
  });

  it('3-byte pixels in place: the word spilling past the end of a row never lands on bytes still to be read, even in rows narrower than the image is tall', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 2, max: 40 }), fc.nat(), (pixels, height, seed) => {
        const n = 3 * pixels;
        const rows = new Uint8Array(height * n);
        let x = seed | 1;
        for (let i = 0; i < rows.length; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          rows[i] = x & 0xff;
        }
        const types = Array.from({ length: height }, (_, y) => ((seed >>> (y % 16)) & 1 ? 1 : 3) as FilterType);
        const c: Case = { n, bpp: 3, height, rows, types };
        const stream = filtered(c);
        expect(unfilterInPlace(c, Buffer.from(stream)).equals(Buffer.from(rows)), 'in place').to.equal(true);
        expect(unfilterInto(c, stream, 0).equals(Buffer.from(rows)), 'exactly sized').to.equal(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses an unknown filter type with corrupt_png on every path', () => {
    for (const bpp of [1, 3, 4]) {
      const n = bpp * 4;
      for (const offset of [0, 1]) {
        const rows = new RowUnfilter(Buffer.alloc(offset + 2 * n).subarray(offset), n, bpp);
        const stream = Buffer.alloc(2 * (n + 1));
        stream[n + 1] = 5;
        rows.row(stream, 0, 0, 0);
        const error = (() => {
          try {
            rows.row(stream, n + 1, n, 1);
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        expect(error).to.be.instanceOf(StegoError);
        expect((error as StegoError).code).to.equal('corrupt_png');
        expect((error as StegoError).message).to.match(/unknown filter type 5 on row 1/);
      }
    }
  });
});
