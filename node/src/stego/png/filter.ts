// PNG scanline filters (types 0-4) and a cheap choice between them. Choosing per row with the
// libpng "minimum sum of absolute differences" heuristic means running all five filters on every
// row; we run them on a quarter of the pixels of one row per band of rows and use the winner for the
// whole band, which costs ~1/(4*BAND_ROWS) of that and, on photos, picks the same filter nearly
// everywhere.

export const FILTER_NONE = 0;
export const FILTER_SUB = 1;
export const FILTER_UP = 2;
export const FILTER_AVERAGE = 3;
export const FILTER_PAETH = 4;
export type FilterType = 0 | 1 | 2 | 3 | 4;

/** Rows that share one filter choice. */
export const BAND_ROWS = 16;

/**
 * Writes the filtered bytes of `cur` (the filter-type byte is the caller's) to out[o..].
 * `prev` is the previous row, all zeros for the first row. Arithmetic is mod 256 (Uint8Array stores).
 */
export function filterRow(type: FilterType, cur: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array, o: number): void {
  const n = cur.length;
  switch (type) {
    case FILTER_NONE:
      out.set(cur, o);
      return;
    case FILTER_SUB:
      for (let x = 0; x < bpp; x++) out[o + x] = cur[x]!;
      for (let x = bpp; x < n; x++) out[o + x] = cur[x]! - cur[x - bpp]!;
      return;
    case FILTER_UP:
      for (let x = 0; x < n; x++) out[o + x] = cur[x]! - prev[x]!;
      return;
    case FILTER_AVERAGE:
      for (let x = 0; x < bpp; x++) out[o + x] = cur[x]! - (prev[x]! >> 1);
      for (let x = bpp; x < n; x++) out[o + x] = cur[x]! - ((cur[x - bpp]! + prev[x]!) >> 1);
      return;
    case FILTER_PAETH:
      for (let x = 0; x < bpp; x++) out[o + x] = cur[x]! - prev[x]!;
      for (let x = bpp; x < n; x++) out[o + x] = cur[x]! - paeth(cur[x - bpp]!, prev[x]!, prev[x - bpp]!);
      return;
  }
}

/**
 * Paeth predictor without branches: on noisy photos the comparisons are unpredictable and the
 * branchy form measured 2.5x slower (580 ms vs 230 ms for 12 MP RGB).
 */
export function paeth(a: number, b: number, c: number): number {
  let pa = b - c;
  let pb = a - c;
  let pc = pa + pb;
  let m = pa >> 31;
  pa = (pa ^ m) - m;
  m = pb >> 31;
  pb = (pb ^ m) - m;
  m = pc >> 31;
  pc = (pc ^ m) - m;
  const useA = ((pa - pb - 1) & (pa - pc - 1)) >> 31;
  const useB = (pb - pc - 1) >> 31;
  return (a & useA) | (~useA & ((b & useB) | (c & ~useB)));
}

/** Pixels skipped between the ones the heuristic looks at: 1 in 4 keeps the choice, at 1/4 of the cost. */
const SAMPLE_STRIDE = 4;

/** Sum of |filtered byte as signed| for all five filters over a sample of one row's pixels, in one pass. */
export function chooseFilter(cur: Uint8Array, prev: Uint8Array, bpp: number): FilterType {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  const step = bpp * SAMPLE_STRIDE;
  for (let px = 0; px < cur.length; px += step) {
    for (let x = px; x < px + bpp; x++) {
      const v = cur[x]!;
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      s0 += signedMagnitude(v);
      s1 += signedMagnitude(v - a);
      s2 += signedMagnitude(v - b);
      s3 += signedMagnitude(v - ((a + b) >> 1));
      s4 += signedMagnitude(v - paeth(a, b, c));
    }
  }
  const sums = [s0, s1, s2, s3, s4];
  let best = 0;
  for (let t = 1; t < 5; t++) if (sums[t]! < sums[best]!) best = t;
  return best as FilterType;
}

/** |x| of a filtered byte read as int8, the libpng heuristic's cost. */
function signedMagnitude(diff: number): number {
  const byte = diff & 0xff;
  return byte < 128 ? byte : 256 - byte;
}
