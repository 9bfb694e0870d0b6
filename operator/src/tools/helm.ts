// Where the helm binary is, for the chart tests: STEGO_HELM, else the one the e2e work builds from its Go
// module into ~/.cache/stegocluster/<dir>/[bin/]helm, else PATH; null when there is none.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

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

