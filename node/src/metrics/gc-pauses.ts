// Garbage-collection pauses of the calling thread (each worker thread has its own heap and collector).
import { constants as perf, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

/** A pause at least this long is logged: a third of the shortest election timeout. */
export const LONG_GC_PAUSE_MS = 50;

const GC_KINDS: Record<number, string> = {
  [perf.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perf.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perf.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perf.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/**
 * Observes this thread's collector: every pause into `histogram` by kind, and a warning for one long
 * enough to delay heartbeats. A late tick with a long pause beside it is the heap's doing, not the
 * machine's or the work's. Returns the observer (disconnect() stops it).
 */
export function observeGcPauses(
  histogram: { observe(labels: { kind: string }, seconds: number): void },
  logger: { warn(o: object, m: string): void },
): PerformanceObserver {
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      const kind = GC_KINDS[e.detail?.kind ?? -1] ?? 'other';
      histogram.observe({ kind }, e.duration / 1000);
      if (e.duration >= LONG_GC_PAUSE_MS) logger.warn({ kind, ms: Math.round(e.duration) }, 'long garbage-collection pause on the consensus thread');
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}
