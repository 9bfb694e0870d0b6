// Cheap gatekeeping before any inflate: the PNG signature and the IHDR chunk only, so a decompression
// bomb or a non-PNG upload is refused after reading 33 bytes.
import zlib from 'node:zlib';
import { StegoError } from '../errors.js';
import type { PngColorType, PngHeader } from '../raster.js';

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const IHDR_LENGTH = 13;
/** Signature + IHDR chunk (length, type, 13 data bytes, CRC). */
const HEADER_BYTES = PNG_SIGNATURE.length + 8 + IHDR_LENGTH + 4;
const MAX_DIMENSION = 2 ** 31 - 1;

/** Bit depths the PNG specification allows for each colour type. */
const LEGAL_DEPTHS: Record<PngColorType, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

export function hasPngSignature(buf: Uint8Array): boolean {
  if (buf.length < PNG_SIGNATURE.length) return false;
  return PNG_SIGNATURE.every((byte, i) => buf[i] === byte);
}

export function readUint32BE(buf: Uint8Array, offset: number): number {
  return ((buf[offset]! << 24) | (buf[offset + 1]! << 16) | (buf[offset + 2]! << 8) | buf[offset + 3]!) >>> 0;
}

export function chunkCrc(buf: Uint8Array, typeOffset: number, dataLength: number): number {
  return zlib.crc32(buf.subarray(typeOffset, typeOffset + 4 + dataLength));
}

export function readHeader(buf: Uint8Array): PngHeader {
  if (!hasPngSignature(buf)) {
    throw new StegoError('not_png', 'not a PNG image: the 8-byte PNG signature is missing or damaged');
  }
  if (buf.length < HEADER_BYTES) {
    throw new StegoError('corrupt_png', `truncated PNG: ${buf.length} bytes, the header alone needs ${HEADER_BYTES}`);
  }
  const length = readUint32BE(buf, 8);
  const type = String.fromCharCode(buf[12]!, buf[13]!, buf[14]!, buf[15]!);
  if (type !== 'IHDR' || length !== IHDR_LENGTH) {
    throw new StegoError('corrupt_png', `corrupt PNG: the first chunk must be a 13-byte IHDR, found ${JSON.stringify(type)} of ${length} bytes`);
  }
  if (chunkCrc(buf, 12, IHDR_LENGTH) !== readUint32BE(buf, 12 + 4 + IHDR_LENGTH)) {
    throw new StegoError('corrupt_png', 'corrupt PNG: IHDR CRC mismatch');
  }
  return parseIhdrFields(buf.subarray(16, 16 + IHDR_LENGTH));
}

function parseIhdrFields(d: Uint8Array): PngHeader {
  const width = readUint32BE(d, 0);
  const height = readUint32BE(d, 4);
  const [bitDepth, colorType, compression, filter, interlace] = [d[8]!, d[9]!, d[10]!, d[11]!, d[12]!];
  const bad = (what: string): never => {
    throw new StegoError('corrupt_png', `corrupt PNG header: ${what}`);
  };
  if (width === 0 || height === 0 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    bad(`dimensions ${width}x${height} must be between 1 and ${MAX_DIMENSION}`);
  }
  if (!(colorType in LEGAL_DEPTHS)) bad(`colour type ${colorType} does not exist (0, 2, 3, 4, 6)`);
  if (!LEGAL_DEPTHS[colorType as PngColorType].includes(bitDepth)) {
    bad(`bit depth ${bitDepth} is not allowed for colour type ${colorType}`);
  }
  if (compression !== 0) bad(`compression method ${compression} (only 0 exists)`);
  if (filter !== 0) bad(`filter method ${filter} (only 0 exists)`);
  if (interlace !== 0 && interlace !== 1) bad(`interlace method ${interlace} (0 or 1)`);
  return {
    width,
    height,
    bitDepth: bitDepth as PngHeader['bitDepth'],
    colorType: colorType as PngColorType,
    interlace: interlace as 0 | 1,
  };
}

export function assertWithinPixelLimit(header: PngHeader, maxPixels: number): void {
  const pixels = header.width * header.height;
  if (pixels > maxPixels) {
    throw new StegoError(
      'image_too_large',
      `image is ${header.width}x${header.height} = ${pixels} pixels, over the limit of ${maxPixels} pixels`,
      { width: header.width, height: header.height, pixels, maxPixels },
    );
  }
}

/** Samples per pixel as stored in the file (palette: one index). */
export function storedChannels(colorType: PngColorType): 1 | 2 | 3 | 4 {
  return ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as const)[colorType];
}
