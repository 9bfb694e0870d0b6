// Helpers shared by this folder's tests (and usable by other stego tests): PngSuite location and a
// normalisation of a Raster to pngjs's RGBA view, so our decoder can be checked against pngjs.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Raster } from '../raster.js';

/** ../shared/pngsuite relative to the project root (dist/node/src/stego/png -> five levels up). */
export function pngSuiteDir(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    process.env['PNGSUITE_DIR'],
    path.resolve(here, '../../../../../../shared/pngsuite'),
    path.resolve(here, '../../../../../shared/pngsuite'),
  ];
  return candidates.find((d): d is string => !!d && fs.existsSync(path.join(d, 'basn0g01.png')));
}

/**
 * Our Raster as pngjs's `PNG.sync.read(buf, {skipRescale: true})` sees the same file: RGBA, 16-bit
 * values kept, gray replicated, colour-keyed pixels zeroed. Promoted 1/2/4-bit gray is divided back.
 */
export function toPngjsRgba(r: Raster): number[] {
  const max = r.bitDepth === 16 ? 0xffff : 0xff;
  const promoted = r.source.colorType === 0 && r.source.bitDepth < 8;
  const down = promoted ? 255 / (2 ** r.source.bitDepth - 1) : 1;
  const out: number[] = [];
  const { channels, data } = r;
  for (let p = 0; p < r.width * r.height; p++) {
    const s = Array.from(data.subarray(p * channels, p * channels + channels));
    const color = channels <= 2 ? [s[0]!, s[0]!, s[0]!] : s.slice(0, 3);
    const alpha = r.hasAlpha ? s[channels - 1]! : max;
    const keyed = r.transparentKey && r.transparentKey.every((k, i) => k === s[i]);
    if (keyed) out.push(0, 0, 0, 0);
    else if (promoted) out.push(...color.map((v) => v / down), (2 ** r.source.bitDepth - 1));
    else out.push(...color, alpha);
  }
  return out;
}
