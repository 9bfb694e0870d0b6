// Where the helm binary is, for the chart tests: STEGO_HELM, else the one the e2e work builds from its Go
// module into ~/.cache/stegocluster/<dir>/[bin/]helm, else PATH; null when there is none.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/**
 * Every helm binary to test the chart with: STEGO_HELM, else each one built into the cache (Helm 4 by
 * e2e/local/build.sh, Helm 3 by scripts/build-helm3.sh), else the one on PATH.
 */
export function findHelms(): string[] {
  if (process.env['STEGO_HELM']) return [process.env['STEGO_HELM']];
  const cache = path.join(homedir(), '.cache/stegocluster');
  const found: string[] = [];
  if (existsSync(cache)) {
    for (const d of readdirSync(cache)) {
      for (const rel of ['helm', 'bin/helm']) {
        const p = path.join(cache, d, rel);
        if (existsSync(p)) found.push(p);
      }
    }
  }
  if (found.length > 0) return found;
  const onPath = findHelm();
  return onPath ? [onPath] : [];
}

export function findHelm(): string | null {
  if (process.env['STEGO_HELM']) return process.env['STEGO_HELM'];
  const cache = path.join(homedir(), '.cache/stegocluster');
  if (existsSync(cache)) {
    for (const d of readdirSync(cache)) {
      for (const rel of ['helm', 'bin/helm']) {
        const p = path.join(cache, d, rel);
        if (existsSync(p)) return p;
      }
    }
  }
  try {
    return execFileSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

