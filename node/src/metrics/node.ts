// Every metric set a node registers, created in one place so the running node and the tests that check
// its exposition see the same names. The node runs two registries: the HTTP thread's (process, HTTP,
// stego, memory budget, volume, HTTP event loop) and the consensus thread's (raft, transport); /metrics
// concatenates them, so no family may exist in both. Sets whose producer lives elsewhere (the worker
// pool, the HTTP request histogram) register themselves with the same registry.
import type { Registry } from 'prom-client';
import { MemoryBudgetMetrics } from './budget.js';
import { eventLoopDelayHistogram, startEventLoopProbe } from './event-loop.js';
import { RaftMetrics } from './raft.js';
import { StegoMetrics } from './stego.js';
import { TransportMetrics } from './transport.js';
import { registerVolumeMetrics } from './volume.js';

/** The HTTP thread's metric sets. */
export interface HttpThreadMetrics {
  stego: StegoMetrics;
  memoryBudget: MemoryBudgetMetrics;
  /** Stops the HTTP loop's delay probe. */
  stop(): void;
}

/** The consensus thread's metric sets; its loop lateness is `stego_consensus_loop_delay_seconds` in RaftMetrics. */
export interface ConsensusThreadMetrics {
  raft: RaftMetrics;
  transport: TransportMetrics;
}

export type NodeMetrics = HttpThreadMetrics & ConsensusThreadMetrics;

export function createHttpThreadMetrics(registry: Registry, opts: { dataDir: string }): HttpThreadMetrics {
  registerVolumeMetrics(registry, opts.dataDir);
  const loopDelay = eventLoopDelayHistogram(registry);
  const stop = startEventLoopProbe((s) => loopDelay.observe({ loop: 'http' }, s));
  return { stego: new StegoMetrics(registry), memoryBudget: new MemoryBudgetMetrics(registry), stop };
}

export function createConsensusThreadMetrics(registry: Registry): ConsensusThreadMetrics {
  return { raft: new RaftMetrics(registry), transport: new TransportMetrics(registry) };
}

/** Both sets on one registry: what /metrics exposes, for tests that check the whole exposition. */
export function createNodeMetrics(registry: Registry, opts: { dataDir: string }): NodeMetrics {
  return { ...createHttpThreadMetrics(registry, opts), ...createConsensusThreadMetrics(registry) };
}
