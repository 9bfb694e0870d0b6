// Writes assets/cover.png, the default cover image for embeds without a `file` part. Deterministic:
// a fixed seed and our own encoder, so re-running it reproduces the committed file byte for byte
// (`npm run cover`, then `git diff --stat assets/` shows nothing) as long as the encoder and Node's
// bundled zlib are unchanged; the pixels never change (checked by png/synthetic.test.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePng } from '../node/src/stego/png/encode.js';
import { COVER, photoLikeRaster } from '../node/src/stego/png/synthetic.js';

async function main(): Promise<void> {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
  const target = process.argv[2] ?? path.join(root, 'assets', 'cover.png');
  const raster = photoLikeRaster(COVER);
  raster.chunks = [{ name: 'tEXt', data: Buffer.from('Software\0StegoCluster scripts/make-cover.ts', 'latin1'), position: 'beforePLTE' }];
  const png = await encodePng(raster);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.writeFileSync(target, png);
  console.log(`wrote ${target}: ${COVER.width}x${COVER.height} RGB, ${png.length} bytes`);
}

await main();
