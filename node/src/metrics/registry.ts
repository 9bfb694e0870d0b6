// The process's Prometheus registry. One registry per process (not prom-client's global one), so a
// library that registers into the global registry cannot collide with our names, and every metric we
// own carries the `stego_` prefix. Tests that build several apps in one process create their own
// registries with createRegistry(); the running node uses processRegistry(). The operator makes its own
// with the prefix `stego_operator_` (operator/src/metrics.ts).
import { Registry, collectDefaultMetrics } from 'prom-client';

export const METRIC_PREFIX = 'stego_';

export interface RegistryOptions {
  /** Process metrics (CPU, heap, event loop lag, GC). On by default. */
  defaultMetrics?: boolean;
  /** Labels added to every series, e.g. {node: 'n1'}. */
  labels?: Record<string, string>;
  /** Prefix of the process metrics' names [stego_]. */
  prefix?: string;
}

export function createRegistry(opts: RegistryOptions = {}): Registry {
  const registry = new Registry();
  if (opts.labels) registry.setDefaultLabels(opts.labels);
  if (opts.defaultMetrics ?? true) {
    const prefix = opts.prefix ?? METRIC_PREFIX;
    collectDefaultMetrics({ register: registry, prefix });
    // prom-client also exports these sums of its per-type gauges (`…_active_handles{type}` etc.) as gauges
    // named `_total`, which Prometheus reserves for counters (`promtool check metrics` flags them); the
    // per-type gauges stay, and sum() over them gives the same number
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(prefix + name);
    }
  }
  return registry;
}

let shared: Registry | undefined;

/** The registry of this process, created on first use with default metrics on. */
export function processRegistry(): Registry {
  shared ??= createRegistry();
  return shared;
}
