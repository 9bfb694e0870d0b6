// A stego HTTP node in its own process for the event-loop test: the real app and worker pool, plus
// a monitorEventLoopDelay histogram of this process's main thread, reported over IPC on request.
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { createApp } from '../src/http/app.js';
import { httpConfig } from '../src/http/http-config.js';
import { silentLogger } from '../src/log.js';
import { createRegistry } from '../src/metrics/registry.js';
import { StegoPool } from '../src/workers/stego-pool.js';

export type ServerMessage =
  | { type: 'listening'; port: number; workers: number }
  | {
      type: 'report';
      p50Ms: number;
      p99Ms: number;
      maxMs: number;
      meanMs: number;
      samples: number;
      /** CPU time of the main thread and time it spent runnable but waiting for a CPU (Linux schedstat). */
      cpuMs?: number;
      runQueueWaitMs?: number;
    };

export type ControlMessage = { type: 'start' } | { type: 'report' };

const send = (m: ServerMessage): void => void process.send!(m);

const registry = createRegistry();
const pool = new StegoPool({ registry });
const app = createApp({ pool, config: httpConfig(), logger: silentLogger(), registry });
const server = app.listen(0, '127.0.0.1', () => {
  send({ type: 'listening', port: (server.address() as AddressInfo).port, workers: pool.stats().size });
});

// Node's histogram records each full interval between samples (an idle loop reads ≈ the resolution,
// 10 ms here); the loop was blocked for the part above the resolution.
export const RESOLUTION_MS = 10;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
const ms = (ns: number): number => Math.round(ns / 1e4) / 100;

/** [cpu ns, run-queue wait ns] of this process's main thread, when the kernel exposes them. */
function schedstat(): [number, number] | undefined {
  try {
    const [cpu, wait] = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
    return cpu !== undefined && wait !== undefined ? [cpu, wait] : undefined;
  } catch {
    return undefined;
  }
}

let schedAtStart: [number, number] | undefined;

process.on('message', (m: ControlMessage) => {
  if (m.type === 'start') {
    schedAtStart = schedstat();
    delay.reset();
    delay.enable();
    return;
  }
  delay.disable();
  const now = schedstat();
  const sched = now && schedAtStart ? { cpuMs: ms(now[0] - schedAtStart[0]), runQueueWaitMs: ms(now[1] - schedAtStart[1]) } : {};
  send({ type: 'report', p50Ms: ms(delay.percentile(50)), p99Ms: ms(delay.percentile(99)), maxMs: ms(delay.max), meanMs: ms(delay.mean), samples: delay.count, ...sched });
});

// The parent going away (test finished or died) ends this process too.
process.on('disconnect', () => {
  server.closeAllConnections();
  server.close();
  void pool.close().then(() => process.exit(0));
});
