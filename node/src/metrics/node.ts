// Every metric set a node registers, created in one place so the running node and the tests that check
// its exposition see the same names. Sets whose producer lives elsewhere (the worker pool, the HTTP
// request histogram) register themselves with the same registry.
import type { Registry } from 'prom-client';
import { MemoryBudgetMetrics } from './budget.js';
import { eventLoopDelayHistogram, startEventLoopProbe } from './event-loop.js';
import { RaftMetrics } from './raft.js';
import { StegoMetrics } from './stego.js';
import { TransportMetrics } from './transport.js';
import { registerVolumeMetrics } from './volume.js';

export interface NodeMetrics {
  raft: RaftMetrics;
  transport: TransportMetrics;
  stego: StegoMetrics;
  memoryBudget: MemoryBudgetMetrics;
  /** Stops the HTTP loop's delay probe. */
  stop(): void;
}

export function createNodeMetrics(registry: Registry, opts: { dataDir: string }): NodeMetrics {
  registerVolumeMetrics(registry, opts.dataDir);
  const loopDelay = eventLoopDelayHistogram(registry);
  const stop = startEventLoopProbe((s) => loopDelay.observe({ loop: 'http' }, s));
  return {
    raft: new RaftMetrics(registry),
    transport: new TransportMetrics(registry),
    stego: new StegoMetrics(registry),
    memoryBudget: new MemoryBudgetMetrics(registry),
    stop,
  };
}
