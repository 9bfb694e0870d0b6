// Settings of the HTTP shell. The cluster's config module (node/src/config.ts) fills these from the
// environment; defaults here keep tests and the HTTP-only node short.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HttpConfig {
  /** Largest request body accepted, in bytes (default 50 MiB). */
  bodyLimitBytes: number;
  /** Cover image used by POST /api/embed when no `file` part is sent. */
  coverPath: string;
}

export const DEFAULT_BODY_LIMIT_BYTES = 50 * 1024 * 1024;

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

export function httpConfig(overrides: Partial<HttpConfig> = {}): HttpConfig {
  return {
    bodyLimitBytes: overrides.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES,
    coverPath: overrides.coverPath ?? resolve(projectRoot(), 'assets', 'cover.png'),
  };
}
