// The memory this process may use: the cgroup limit when one applies (v2 `memory.max`, v1
// `memory.limit_in_bytes`, the container's limit in Kubernetes), else the machine's RAM. The per-node
// byte budget for bodies in flight defaults to a share of it (http-config.ts).
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';

/** v1 reports "no limit" as a huge page-rounded number (e.g. 9223372036854771712). */
const V1_UNLIMITED = 2 ** 60;

function readNumber(file: string): number | undefined {
  try {
    const raw = readFileSync(file, 'utf8').trim();
    if (raw === 'max') return undefined;
    const n = Number(raw);
    return Number.isFinite(n) && n > 0 && n < V1_UNLIMITED ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The cgroup memory limit of this process, or undefined when none is set. `root` is the filesystem
 * root (tests point it at a fake tree); the process's cgroup path comes from /proc/self/cgroup and the
 * limit is the smallest one on that path up to the cgroup root (a parent's limit binds too).
 */
export function cgroupMemoryLimit(root = '/'): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(root, 'proc/self/cgroup'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const limits: number[] = [];
  for (const line of lines) {
    const [, controllers, path] = line.split(':', 3) as [string, string | undefined, string | undefined];
    if (path === undefined || controllers === undefined) continue;
    const v2 = controllers === '';
    if (!v2 && !controllers.split(',').includes('memory')) continue;
    const base = v2 ? join(root, 'sys/fs/cgroup') : join(root, 'sys/fs/cgroup/memory');
    const file = v2 ? 'memory.max' : 'memory.limit_in_bytes';
    // inside a container the namespace root is mounted at the base: try the path, then each parent
    for (let p = path; ; p = p.slice(0, Math.max(0, p.lastIndexOf('/')))) {
      const n = readNumber(join(base, p, file));
      if (n !== undefined) limits.push(n);
      if (p === '' || p === '/') break;
    }
  }
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/** The smaller of the cgroup limit and physical memory. */
export function memoryLimitBytes(root = '/'): number {
  const cg = cgroupMemoryLimit(root);
  return cg === undefined ? totalmem() : Math.min(cg, totalmem());
}
