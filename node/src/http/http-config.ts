// Settings of the HTTP shell. The cluster's config module (node/src/config.ts) fills these from the
// environment; defaults here keep tests and the HTTP-only node short.
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { defaultCoverPath } from '../assets.js';
import { memoryLimitBytes } from './memory-limit.js';

export interface HttpConfig {
  /** Largest request body accepted, in bytes (default 50 MiB; nginx's client_max_body_size is the same number). */
  bodyLimitBytes: number;
  /** Cover image used by POST /api/embed when no `file` part is sent. */
  coverPath: string;
  /** Bytes of request and response bodies this node holds at once (default: inflightBudgetDefault()). */
  inflightBudgetBytes: number;
  /** Longest pause between two body bytes, either direction, before the connection is cut. */
  bodyIdleTimeoutMs: number;
  /** Longest a request body may take to arrive. */
  bodyTimeoutMs: number;
  /** Longest the request line and headers may take (server.headersTimeout). */
  headersTimeoutMs: number;
  /** 'open': embed/extract/capacity need no token (default); 'token': every API call needs one. */
  statelessAuth: 'open' | 'token';
  /** Key of the request fingerprints replicated with objects (the cluster secret; same on every node). */
  fingerprintKey: string;
}

export const DEFAULT_BODY_LIMIT_BYTES = 50 * 1024 * 1024;
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 15_000;
export const DEFAULT_BODY_TIMEOUT_MS = 120_000;
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** Text fields and file parts a form may have (multipart.ts); more is a 413 naming the limit. */
export const MAX_FORM_FIELDS = 16;
export const MAX_FORM_FILES = 4;

/**
 * A quarter of the memory the node sees (cgroup limit or RAM), at least one body limit, at most 1 GiB:
 * the rest is for the worker pool's decodes (workers × 24 × maxPixels), Raft and the runtime.
 */
export function inflightBudgetDefault(bodyLimitBytes: number, memoryBytes = memoryLimitBytes()): number {
  return Math.max(bodyLimitBytes, Math.min(Math.floor(memoryBytes / 4), 1024 * 1024 * 1024));
}

export function httpConfig(overrides: Partial<HttpConfig> = {}): HttpConfig {
  const bodyLimitBytes = overrides.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  return {
    bodyLimitBytes,
    coverPath: overrides.coverPath ?? defaultCoverPath(),
    inflightBudgetBytes: overrides.inflightBudgetBytes ?? inflightBudgetDefault(bodyLimitBytes),
    bodyIdleTimeoutMs: overrides.bodyIdleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS,
    bodyTimeoutMs: overrides.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS,
    headersTimeoutMs: overrides.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS,
    statelessAuth: overrides.statelessAuth ?? 'open',
    fingerprintKey: overrides.fingerprintKey ?? 'stegocluster-dev-fingerprint-key',
  };
}

/** Header and whole-request timeouts on the node's HTTP server (body idle/total ones are middleware). */
export function applyServerTimeouts(server: Server, config: Pick<HttpConfig, 'headersTimeoutMs' | 'bodyTimeoutMs'>): void {
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.headersTimeoutMs + config.bodyTimeoutMs;
  // Node checks these timeouts every connectionsCheckingInterval (30 s by default): an idle or half-sent
  // request head would live up to 40 s instead of 10. Read when the server starts listening.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = Math.min(1000, Math.max(100, Math.floor(config.headersTimeoutMs / 4)));
  // A connection that never sends a byte is no request yet, so headersTimeout does not apply to it:
  // give it the same time to start one. Its first request takes over (Node then manages keep-alive).
  const waiting = new WeakMap<Socket, () => void>();
  server.on('connection', (socket: Socket) => {
    const cut = (): void => {
      socket.destroy();
    };
    waiting.set(socket, cut);
    socket.setTimeout(config.headersTimeoutMs, cut);
  });
  // before the app's own listener, which sets the body timeouts
  server.prependListener('request', (req: IncomingMessage) => {
    const socket = req.socket;
    const cut = waiting.get(socket);
    if (!cut) return;
    waiting.delete(socket);
    socket.off('timeout', cut);
    socket.setTimeout(0);
  });
}

export interface MemoryBoundInputs {
  /** RSS of the idle node (runtime, code, Raft state, caches). */
  baselineBytes: number;
  /** STEGO_INFLIGHT_BODY_BYTES. */
  inflightBudgetBytes: number;
  /** Worker threads (STEGO_WORKERS). */
  workers: number;
  /** STEGO_MAX_PIXELS. */
  maxPixels: number;
}

/**
 * The documented worst case of a node's memory beyond its Raft log (docs/http-api.md, "Memory"):
 * every body in flight is inside the budget (reserved before it is read, queued jobs' inputs included,
 * buffered answers counted until sent, downloads by their window), and each running job adds at most
 * 24 bytes per pixel (inflated scanlines, raster, encoded output at 16-bit RGBA).
 */
export function worstCaseMemoryBytes(m: MemoryBoundInputs): number {
  return m.baselineBytes + m.inflightBudgetBytes + m.workers * 24 * m.maxPixels;
}
