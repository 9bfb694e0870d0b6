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
  private source: MemoryBudgetSource | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const src = (): MemoryBudgetSource | undefined => this.source;
    new Gauge({
      name: 'stego_memory_budget_limit_bytes', help: 'bytes of request bodies and job buffers the node admits at once', registers,
      collect() { const s = src(); if (s) this.set(s.limitBytes()); },
    });
    new Gauge({
      name: 'stego_memory_budget_in_use_bytes', help: 'bytes admitted against the memory budget and not yet released', registers,
      collect() { const s = src(); if (s) this.set(s.inUseBytes()); },
    });
    this.rejections = new Counter({
      name: 'stego_memory_budget_rejections_total', help: 'requests refused with 503 because the memory budget was exhausted', registers,
    });
  }

  attach(source: MemoryBudgetSource): void {
    this.source = source;
  }
}
