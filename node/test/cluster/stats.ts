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

export interface HistogramScrape {
  /** [upper bound in seconds, cumulative count], ascending, +Inf last. */
  buckets: [number, number][];
  sum: number;
  count: number;
}

/** Reads one unlabelled prom-client histogram out of /metrics text; undefined when absent. */
/** A histogram from a Prometheus text scrape, summed over all its label sets (e.g. every peer). */
export function parseHistogram(metrics: string, name: string): HistogramScrape | undefined {
  const byLe = new Map<number, number>();
  let sum = 0;
  let count = 0;
  let seen = false;
  const value = (line: string): number => Number(line.slice(line.lastIndexOf(' ') + 1));
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}_bucket{`)) {
      const le = /le="([^"]+)"/.exec(line)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      byLe.set(bound, (byLe.get(bound) ?? 0) + value(line));
    } else if (line.startsWith(`${name}_sum `) || line.startsWith(`${name}_sum{`)) sum += value(line);
    else if (line.startsWith(`${name}_count `) || line.startsWith(`${name}_count{`)) {
      count += value(line);
      seen = true;
    }
  }
  if (byLe.size === 0 || !seen) return undefined;
  const buckets = [...byLe.entries()].sort((a, b) => a[0] - b[0]);
  return { buckets, sum, count };
}

export function histogramDelta(after: HistogramScrape, before: HistogramScrape | undefined): HistogramScrape {
  if (!before) return after;
  return {
    buckets: after.buckets.map(([le, c], i) => [le, c - (before.buckets[i]?.[1] ?? 0)]),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/** Percentile in ms, interpolated linearly inside the bucket that holds it (approximate by nature). */
export function histogramPercentileMs(h: HistogramScrape, p: number): number {
  if (h.count <= 0) return NaN;
  const target = (p / 100) * h.count;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, cum] of h.buckets) {
    if (cum >= target) {
      if (!Number.isFinite(le)) return prevLe * 1000; // beyond the last finite bucket: report its bound
      const within = cum - prevCount;
      const frac = within > 0 ? (target - prevCount) / within : 1;
      return (prevLe + frac * (le - prevLe)) * 1000;
    }
    prevLe = le;
    prevCount = cum;
  }
  return NaN;
}
