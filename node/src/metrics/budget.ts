// The node's memory budget for request bodies and jobs in flight (bytes admitted, not yet released),
// read at scrape time from whatever enforces it; rejections are counted as they happen.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface MemoryBudgetSource {
  limitBytes(): number;
  inUseBytes(): number;
}

export class MemoryBudgetMetrics {
  /** Requests refused (503 + Retry-After) because admitting them would exceed the budget. */
  readonly rejections: Counter;

  constructor(private readonly registry: Registry) {
    const registers = [registry];
    this.rejections = new Counter({
      name: 'stego_memory_budget_rejections_total', help: 'requests refused with 503 because the memory budget was exhausted', registers,
    });
  }

  /** Registers the gauges (once): before a budget exists they have no series, rather than a false 0. */
  attach(source: MemoryBudgetSource): void {
    if (this.registry.getSingleMetric('stego_memory_budget_limit_bytes')) throw new Error('a memory budget is already attached to this registry');
    const registers = [this.registry];
    new Gauge({ name: 'stego_memory_budget_limit_bytes', help: 'bytes of request bodies and job buffers the node admits at once', registers, collect() { this.set(source.limitBytes()); } });
    new Gauge({ name: 'stego_memory_budget_in_use_bytes', help: 'bytes admitted against the memory budget and not yet released', registers, collect() { this.set(source.inUseBytes()); } });
  }
}
