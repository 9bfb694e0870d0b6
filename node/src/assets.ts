// Files shipped beside the code (assets/), found from the repository root so that the same path works
// from node/src (tests), dist/ and the container image.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest ancestor of this module holding package.json (works from dist/ too). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
  return dir;
}

/** The bundled cover image (scripts/make-cover.ts): embeds use it when the client sends no image. */
export function defaultCoverPath(): string {
  return join(projectRoot(), 'assets', 'cover.png');
}
