// The steganography engine behind a worker pool: the only way the HTTP layer (and the cluster layer's
// object store) runs PNG decode/encode, so the main event loop stays free for consensus.
//
// Memory per job (documented bound). With P = maxPixels and the worst sample layout (16-bit RGBA,
// 8 bytes per pixel) a job holds at most about:
//   input PNG (≤ HTTP body limit) + inflated scanlines (≈ 8P) + raster (8P) + encoded output (≈ 8P)
// i.e. ≈ 24 bytes × P + body limit. At the default P = 40 MP that is ≈ 1 GB, at 12 MP ≈ 290 MB; 8-bit
// RGB needs 3 bytes per pixel instead of 8. Measured peak growth of one embed beyond its input:
// 12 MP 8-bit RGB +53 MB (4.4 B/px), 4 MP 16-bit RGBA +85 MB (21 B/px). The pool runs `size` jobs at once and holds at most
// `maxQueue` more inputs (each ≤ body limit), so the node's worst case is
//   size × (24 P + bodyLimit) + maxQueue × bodyLimit.
// Lower maxPixels (STEGO_MAX_PIXELS) to fit a smaller container.
import type { Registry } from 'prom-client';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { EngineOptions, Payload } from '../stego/engine.js';
import { DEFAULT_CHUNK_LIMITS, type ChunkLimits } from '../stego/png/chunks.js';
import type { UploadScanLimits } from '../stego/png/upload-scan.js';
import { transferableCopy } from './protocol.js';
import { WorkerPool, type PoolStats, type WorkerPoolOptions } from './pool.js';
import type { CapacityResult, StegoJob, StegoJobResult } from './stego-jobs.js';

export type { CapacityResult } from './stego-jobs.js';

export const DEFAULT_MAX_PIXELS = 40_000_000;

export interface StegoPoolOptions extends Omit<WorkerPoolOptions, 'workerUrl' | 'workerData'> {
  /** Pixel limit applied to every job (decompression-bomb guard); defaults to 40 MP. */
  maxPixels?: number;
  /** Registers pool gauges and job metrics when given. */
  registry?: Registry;
  /**
   * Nice value of the worker threads (Linux, per thread; default 10, 0 keeps normal priority), so the
   * main event loop wins the CPU whenever image work and consensus compete for it.
   */
  workerNice?: number;
  /** Chunk-count and ancillary-bytes limits applied by every decode in the workers (png/chunks.ts defaults). */
  chunkLimits?: Partial<ChunkLimits>;
}

export const DEFAULT_WORKER_NICE = 10;

export interface JobOptions {
  passphrase?: string;
}

export interface EmbedResult {
  png: Buffer;
  /** Hex SHA-256 of `png`, computed in the worker when asked for (keeps hashing off the main thread). */
  sha256?: string;
  /** HMAC of the request (input image, payload, passphrase) under `fingerprintKey`, when asked for. */
  fingerprint?: string;
}

type JobKind = StegoJob['kind'];

interface PoolMetrics {
  duration: Histogram<'kind' | 'outcome'>;
}

/**
 * Ownership of input images: every `png` handed to embed/extract/capacity moves to the worker. When
 * the view owns its whole ArrayBuffer that buffer is detached (no copy); otherwise it is copied. Pass a
 * copy of anything you want to reuse (e.g. a cached cover image).
 */
export class StegoPool {
  readonly maxPixels: number;
  /** The chunk limits the workers apply (the HTTP layer checks the same ones while an upload arrives). */
  readonly chunkLimits: ChunkLimits;
  private readonly pool: WorkerPool<StegoJob, StegoJobResult>;
  private readonly metrics: PoolMetrics | undefined;

  constructor(opts: StegoPoolOptions = {}) {
    this.maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    this.chunkLimits = { ...DEFAULT_CHUNK_LIMITS, ...opts.chunkLimits };
    const { registry, maxPixels: _unused, workerNice, chunkLimits, ...poolOpts } = opts;
    this.pool = new WorkerPool({
      ...poolOpts,
      workerUrl: new URL('./stego-worker.js', import.meta.url),
      workerData: { nice: workerNice ?? DEFAULT_WORKER_NICE, chunkLimits: this.chunkLimits },
    });
    this.metrics = registry ? registerPoolMetrics(registry, this.pool) : undefined;
  }

  async embed(png: Uint8Array, payload: Payload, opts: JobOptions & { digest?: boolean; fingerprintKey?: string } = {}): Promise<EmbedResult> {
    const input = transferableCopy(png);
    // The image and a file payload may be views of the same upload buffer: list it once.
    const transfer = new Set(input.transfer);
    let jobPayload = payload;
    if (payload.kind === 'file') {
      const data = transferableCopy(payload.data);
      for (const ab of data.transfer) transfer.add(ab);
      jobPayload = { ...payload, data: data.bytes };
    }
    const job: StegoJob = { kind: 'embed', png: input.bytes, payload: jobPayload, options: this.engineOptions(opts), digest: opts.digest ?? false };
    if (opts.fingerprintKey !== undefined) job.fingerprintKey = opts.fingerprintKey;
    const result = await this.timed('embed', job, [...transfer]);
    if (result.kind !== 'embed') throw new Error(`worker answered ${result.kind} to embed`);
    return { png: asBuffer(result.png), sha256: result.sha256, fingerprint: result.fingerprint };
  }

  async extract(png: Uint8Array, opts: JobOptions = {}): Promise<Payload> {
    const input = transferableCopy(png);
    const result = await this.timed('extract', { kind: 'extract', png: input.bytes, options: this.engineOptions(opts) }, input.transfer);
    if (result.kind !== 'extract') throw new Error(`worker answered ${result.kind} to extract`);
    const p = result.payload;
    return p.kind === 'file' ? { ...p, data: asBuffer(p.data) } : p;
  }

  async capacity(png: Uint8Array, opts: JobOptions = {}): Promise<CapacityResult> {
    const input = transferableCopy(png);
    const result = await this.timed('capacity', { kind: 'capacity', png: input.bytes, options: this.engineOptions(opts) }, input.transfer);
    if (result.kind !== 'capacity') throw new Error(`worker answered ${result.kind} to capacity`);
    return result.capacity;
  }

  /**
   * Checks that `png` is a complete PNG that decodes (structure, CRCs, limits, image data), in a worker;
   * answers the same bytes (moved there and back, no copy) and their SHA-256.
   */
  async validate(png: Uint8Array, fingerprintKey?: string): Promise<{ png: Buffer; sha256: string; width: number; height: number; fingerprint?: string }> {
    const input = transferableCopy(png);
    const job: StegoJob = { kind: 'validate', png: input.bytes, maxPixels: this.maxPixels };
    if (fingerprintKey !== undefined) job.fingerprintKey = fingerprintKey;
    const result = await this.timed('validate', job, input.transfer);
    if (result.kind !== 'validate') throw new Error(`worker answered ${result.kind} to validate`);
    return { png: asBuffer(result.png), sha256: result.sha256, width: result.width, height: result.height, fingerprint: result.fingerprint };
  }

  /** The limits an upload is scanned against while it arrives (the same ones the workers apply). */
  get uploadScanLimits(): UploadScanLimits {
    return { ...this.chunkLimits, maxPixels: this.maxPixels };
  }

  /** True when a new job would be refused now (all workers busy, queue full). */
  get saturated(): boolean {
    return this.pool.saturated;
  }

  get retryAfterSeconds(): number {
    return this.pool.retryAfter;
  }

  stats(): PoolStats {
    return this.pool.stats();
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  private engineOptions(opts: JobOptions): EngineOptions {
    const options: EngineOptions = { maxPixels: this.maxPixels };
    if (opts.passphrase !== undefined) options.passphrase = opts.passphrase;
    return options;
  }

  private async timed(kind: JobKind, job: StegoJob, transfer: ArrayBuffer[]): Promise<StegoJobResult> {
    const end = this.metrics?.duration.startTimer({ kind });
    try {
      const result = await this.pool.run(job, transfer);
      end?.({ outcome: 'ok' });
      return result;
    } catch (e) {
      end?.({ outcome: outcomeOf(e) });
      throw e;
    }
  }
}

function outcomeOf(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'error';
}

function asBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

function registerPoolMetrics(registry: Registry, pool: WorkerPool<StegoJob, StegoJobResult>): PoolMetrics {
  const gauge = (name: string, help: string, read: (s: PoolStats) => number): void => {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read(pool.stats())); } });
  };
  gauge('stego_pool_workers', 'Worker threads in the stego pool', (s) => s.size);
  gauge('stego_pool_busy_workers', 'Worker threads running a job', (s) => s.busy);
  gauge('stego_pool_queued_jobs', 'Jobs waiting for a worker', (s) => s.queued);
  const counter = (name: string, help: string, read: (s: PoolStats) => number): void => {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read(pool.stats())); } });
  };
  counter('stego_pool_worker_crashes_total', 'Worker threads that died and were replaced', (s) => s.crashes);
  counter('stego_pool_rejected_total', 'Jobs refused because the pool was saturated', (s) => s.rejected);
  counter('stego_pool_job_timeouts_total', 'Jobs cancelled for running past their time budget (worker replaced)', (s) => s.timeouts);
  const duration = new Histogram({
    name: 'stego_pool_job_duration_seconds',
    help: 'Time from submitting a stego job to its result, queueing included',
    labelNames: ['kind', 'outcome'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32],
    registers: [registry],
  });
  return { duration };
}
