// Which ancillary chunks survive into the output, and how the ones that describe pixel values are
// rewritten when decoding changes the pixel format (palette -> RGB/RGBA, 1/2/4-bit gray -> 8-bit).
import type { CarriedChunk, PngHeader } from '../raster.js';

/**
 * Chunks we understand and whose meaning does not depend on the sample bits we change: colour space
 * (gAMA, cHRM, sRGB, iCCP, and PNG 3rd edition cICP/mDCv/cLLi), text, physical size, time, Exif and
 * suggested palettes. tIME keeps the original's time so identical input gives identical output.
 */
const KNOWN_KEEP = new Set([
  'tEXt', 'zTXt', 'iTXt', 'gAMA', 'cHRM', 'sRGB', 'iCCP', 'pHYs', 'tIME', 'sPLT', 'eXIf', 'cICP', 'mDCv', 'cLLi',
]);

export interface FormatChange {
  source: PngHeader;
  /** PLTE bytes of the input (palette images only). */
  palette: Uint8Array | undefined;
  /** The output gained an alpha channel from a palette tRNS. */
  outputHasAlpha: boolean;
  /** Factor that maps stored gray samples to output samples: 255/(2^depth-1) for promoted gray, else 1. */
  grayScale: number;
}

/** PNG's rule for chunks we do not know: bit 5 of the fourth type byte set means safe to copy. */
export function isSafeToCopy(name: string): boolean {
  return (name.charCodeAt(3) & 0x20) !== 0;
}

export function carryOver(chunks: CarriedChunk[], change: FormatChange): CarriedChunk[] {
  const out: CarriedChunk[] = [];
  for (const chunk of chunks) {
    const data = rewrite(chunk, change);
    if (data) out.push({ ...chunk, data });
  }
  return out;
}

function rewrite(chunk: CarriedChunk, change: FormatChange): Uint8Array | undefined {
  const palette = change.source.colorType === 3;
  switch (chunk.name) {
    case 'hIST': // frequencies of PLTE entries; the output has no PLTE
      return undefined;
    case 'tRNS':
      return rewriteTrns(chunk.data, change);
    case 'bKGD':
      return palette ? paletteBackgroundToRgb(chunk.data, change.palette) : scaleGrayChunk(chunk.data, change);
    case 'sBIT':
      // sBIT has one byte per output channel: palette sBIT lists R,G,B; RGBA output needs alpha too.
      return palette && change.outputHasAlpha ? Uint8Array.of(...chunk.data.subarray(0, 3), 8) : chunk.data;
    default:
      return KNOWN_KEEP.has(chunk.name) || isSafeToCopy(chunk.name) ? chunk.data : undefined;
  }
}

/** Palette tRNS became the alpha channel; gray/RGB colour keys stay, scaled with a promoted depth. */
function rewriteTrns(data: Uint8Array, change: FormatChange): Uint8Array | undefined {
  const { colorType } = change.source;
  if (colorType === 0 && data.length >= 2) return scaleGrayChunk(data.subarray(0, 2), change);
  if (colorType === 2 && data.length >= 6) return data.subarray(0, 6);
  return undefined; // palette (consumed) or a tRNS that is illegal for colour types 4/6
}

function scaleGrayChunk(data: Uint8Array, change: FormatChange): Uint8Array | undefined {
  if (change.source.colorType !== 0 || change.grayScale === 1) return data;
  if (data.length < 2) return undefined;
  const mask = (1 << change.source.bitDepth) - 1;
  const value = (((data[0]! << 8) | data[1]!) & mask) * change.grayScale;
  return Uint8Array.of(value >> 8, value & 0xff);
}

/** A palette bKGD is an index; in the RGB output it becomes the entry's colour as 16-bit samples. */
function paletteBackgroundToRgb(data: Uint8Array, palette: Uint8Array | undefined): Uint8Array | undefined {
  const index = data[0];
  if (index === undefined || !palette || index * 3 + 3 > palette.length) return undefined;
  const [r, g, b] = [palette[index * 3]!, palette[index * 3 + 1]!, palette[index * 3 + 2]!];
  return Uint8Array.of(0, r, 0, g, 0, b);
}
