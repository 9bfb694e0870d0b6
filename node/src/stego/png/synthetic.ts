// Deterministic photo-like images for the cover asset, benchmarks and tests: smooth separable
// gradients (sky, light falloff) plus sensor-like noise, from a seeded PRNG only (never the clock),
// so the same seed gives the same bytes on every machine. The noise is what hides LSB changes and is
// also what makes real photos hard to compress, so benchmark numbers transfer to real photos.
import type { Raster } from '../raster.js';
import { xorshift32 } from '../xorshift.js';
import { encodePng } from './encode.js';

export interface SyntheticOptions {
  width: number;
  height: number;
  /** 3 = RGB, 4 = RGBA (a transparent strip and an alpha ramp on the left edge). */
  channels: 3 | 4;
  seed: number;
  /** Peak amplitude of the triangular noise, in 8-bit levels (sigma is ~0.41 of it). */
  noise?: number;
}

/** assets/cover.png, written by scripts/make-cover.ts. */
export const COVER: SyntheticOptions = { width: 1024, height: 768, channels: 3, seed: 20261129 };

/** Two separable waves per channel: cheap (per-row and per-column tables) yet not a plain ramp. */
function waveTables(length: number, next: () => number, channels: number): Float64Array[] {
  return Array.from({ length: channels * 2 }, () => {
    const freq = 0.5 + (next() % 1000) / 400;
    const phase = (next() % 6283) / 1000;
    const t = new Float64Array(length);
    for (let i = 0; i < length; i++) t[i] = Math.sin((i / length) * Math.PI * freq + phase);
    return t;
  });
}

export function photoLikeRaster(opts: SyntheticOptions): Raster {
  const { width, height, channels, seed } = opts;
  const amp = opts.noise ?? 8;
  const next = xorshift32(seed);
  const cols = waveTables(width, next, 3);
  const rows = waveTables(height, next, 3);
  const data = new Uint8Array(width * height * channels);
  const alpha = alphaRamp(width);
  let i = 0;
  for (let y = 0; y < height; y++) {
    const sky = 70 * (1 - y / height); // brighter towards the top, like daylight scenes
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const smooth = 90 + sky + 45 * cols[c]![x]! * rows[c]![y]! + 25 * cols[c + 3]![x]! + 20 * rows[c + 3]![y]!;
        const r = next();
        const noise = (((r & 0xff) + ((r >>> 8) & 0xff) - 255) * amp) / 255;
        const v = smooth + noise;
        data[i++] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
      if (channels === 4) data[i++] = alpha[x]!;
    }
  }
  const colorType = channels === 4 ? 6 : 2;
  return {
    width,
    height,
    colorType,
    bitDepth: 8,
    channels,
    hasAlpha: channels === 4,
    data,
    chunks: [],
    source: { width, height, colorType, bitDepth: 8, interlace: 0 },
  };
}

/** Fully transparent first 2% of columns, then a ramp to opaque by 10%. */
function alphaRamp(width: number): Uint8Array {
  const a = new Uint8Array(width);
  for (let x = 0; x < width; x++) {
    const f = (x / width - 0.02) / 0.08;
    a[x] = f <= 0 ? 0 : f >= 1 ? 255 : Math.round(f * 255);
  }
  return a;
}

export interface PhotoOptions {
  channels?: 3 | 4;
  seed?: number;
  /** Amplitude of the noise added to the gradients (8-bit levels). */
  noise?: number;
}

/** A deterministic photo-like PNG (the generator behind assets/cover.png and the benchmarks), encoded. */
export function photoPng(width: number, height: number, opts: PhotoOptions = {}): Promise<Buffer> {
  return encodePng(photoLikeRaster({ width, height, channels: opts.channels ?? 3, seed: opts.seed ?? 1, noise: opts.noise ?? 12 }));
}
