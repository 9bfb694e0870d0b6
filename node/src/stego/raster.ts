// The decoded image as the embedding code sees it: interleaved samples in the image's own
// channel layout (RGB stays RGB, 16-bit stays 16-bit), plus the chunks to carry over.

export type PngColorType = 0 | 2 | 3 | 4 | 6; // gray, RGB, palette, gray+alpha, RGBA

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: 1 | 2 | 4 | 8 | 16;
  colorType: PngColorType;
  interlace: 0 | 1;
}

/** A chunk copied verbatim from input to output (tEXt, zTXt, iTXt, gAMA, cHRM, sRGB, iCCP, pHYs, tIME, bKGD, sBIT, tRNS...). */
export interface CarriedChunk {
  name: string;
  data: Uint8Array;
  /** Where it stood in the input, so it is written back in a legal position. */
  position: 'beforePLTE' | 'beforeIDAT' | 'afterIDAT';
}

export interface Raster {
  width: number;
  height: number;
  /** Colour type of the output image: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA (palette input is promoted). */
  colorType: 0 | 2 | 4 | 6;
  /** Sample depth of `data`: sub-8-bit gray is promoted to 8. */
  bitDepth: 8 | 16;
  channels: 1 | 2 | 3 | 4;
  /** True when the last channel is alpha (colour types 4 and 6). */
  hasAlpha: boolean;
  /** Row-major interleaved samples, length width*height*channels. Uint16Array when bitDepth is 16. */
  data: Uint8Array | Uint16Array;
  /**
   * Colour-key transparency (tRNS for gray/RGB): pixels whose colour samples equal this key are
   * fully transparent, so the embedder must skip them and must never turn another pixel into the key.
   */
  transparentKey?: number[];
  chunks: CarriedChunk[];
  /** What was in the input, for documentation of promotions and for tests. */
  source: PngHeader;
}
