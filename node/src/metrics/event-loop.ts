// Event-loop delay as a histogram: a timer that should fire every `intervalMs` records how late it
// fired. Lateness is exactly the wait a heartbeat or a request would have had in that moment, and a
// histogram (unlike a gauge of percentiles) can be aggregated over time and across nodes. One probe
// per loop: `loop="http"` on the main thread; the consensus loop's probe runs in its own thread.
import { Histogram, type Registry } from 'prom-client';

export type LoopName = 'http' | 'consensus';

const histograms = new WeakMap<Registry, Histogram<'loop'>>();

export function eventLoopDelayHistogram(registry: Registry): Histogram<'loop'> {
  let h = histograms.get(registry);
  if (!h) {
    h = new Histogram({
      name: 'stego_event_loop_delay_seconds',
      help: 'how late a periodic timer fired on this event loop (the wait any task had at that moment)',
      labelNames: ['loop'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    histograms.set(registry, h);
  }
  return h;
}

/**
 * Starts probing the event loop this is called on. `observe` receives delays in seconds; on the main
 * thread it is the histogram's observe, in a worker it may post the samples to the main thread.
 * Returns a stop function. The timer is unref'd: it never keeps a process alive.
 */
export function startEventLoopProbe(observe: (seconds: number) => void, intervalMs = 20): () => void {
  let expected = performance.now() + intervalMs;
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    const now = performance.now();
    observe(Math.max(0, now - expected) / 1000);
    expected = now + intervalMs;
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  timer = setTimeout(tick, intervalMs);
  timer.unref();
  return () => clearTimeout(timer);
}
