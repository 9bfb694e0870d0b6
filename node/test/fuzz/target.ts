// The fuzzed node: one real process with limits small enough that memory stays bounded, and its RSS.
import { readFileSync } from 'node:fs';
import { Cluster } from '../cluster/harness.js';

/** RSS bound for a fuzzed node with the limits below (workers 1, body limit 4 MB, 4 MP). */
export const RSS_BOUND_BYTES = 512 * 1024 * 1024;

export function startFuzzTarget(): Promise<Cluster> {
  return Cluster.start({
    size: 1,
    startDeadlineMs: 90_000,
    logLevel: 'error',
    env: { STEGO_WORKERS: '1', STEGO_BODY_LIMIT_BYTES: '4000000', STEGO_MAX_PIXELS: '4000000', STEGO_REQUEST_TIMEOUT_MS: '2000' },
  });
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}
