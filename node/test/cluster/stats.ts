// Latency statistics and a closed-loop load generator shared by the cluster benchmarks.

import { performance } from 'node:perf_hooks';

/** Nearest-rank percentile (p in 0..100) of an unsorted sample; NaN for an empty one. */
export function percentile(sample: number[], p: number): number {
  if (sample.length === 0) return NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export interface LoadResult {
  ok: number;
  errors: number;
  errorKinds: Map<string, number>;
  latenciesMs: number[];
  elapsedMs: number;
  opsPerSec: number;
}

/**
 * Closed loop: `concurrency` workers each issue `op` back to back for `seconds`. Latencies of operations
 * that finish after the window are still counted, throughput uses completed-in-window operations only.
 */
export async function closedLoop(
  concurrency: number,
  seconds: number,
  op: (worker: number, seq: number) => Promise<void>,
): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const errorKinds = new Map<string, number>();
  let ok = 0;
  let errors = 0;
  let seq = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async (w: number) => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await op(w, seq++);
        const t1 = performance.now();
        if (t1 <= end) {
          ok++;
          latenciesMs.push(t1 - t0);
        }
      } catch (err) {
        errors++;
        const kind = (err as Error).message?.slice(0, 80) ?? String(err);
        errorKinds.set(kind, (errorKinds.get(kind) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const elapsedMs = Math.min(performance.now(), end) - start;
  return { ok, errors, errorKinds, latenciesMs, elapsedMs, opsPerSec: (ok * 1000) / elapsedMs };
}

export function fmtMs(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}
