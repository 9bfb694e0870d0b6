// Small deterministic PNG covers for cluster tests and benchmarks: noise compresses badly, so the size of
// the stored stego object is predictable from the cover's dimensions.

import { PNG } from 'pngjs';

/** mulberry32: tiny seeded PRNG so every run writes the same bytes. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An RGBA noise image (alpha fully opaque so every pixel can carry payload). */
export function makeCover(width: number, height: number, seed = 1): Buffer {
  const png = new PNG({ width, height, colorType: 6 });
  const rnd = seededRandom(seed);
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = Math.floor(rnd() * 256);
    png.data[i * 4 + 1] = Math.floor(rnd() * 256);
    png.data[i * 4 + 2] = Math.floor(rnd() * 256);
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}
