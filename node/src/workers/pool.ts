// A fixed-size pool of worker threads with a bounded wait queue.
//
// Why bounded: every queued job holds its input image (up to the HTTP body limit) in memory, so an
// unbounded queue turns a burst of uploads into an out-of-memory crash. When every worker is busy and
// the queue is full, run() rejects at once with PoolSaturatedError, which says when to retry (the HTTP
// layer answers it with 503 + Retry-After). A worker that dies (uncaught exception, out of memory, killed)
// fails its job with WorkerCrashedError and is replaced, so a crash never leaves a caller waiting
// forever. Every job has a time budget (jobTimeoutMs, default 30 s): past it the worker is terminated and
// replaced and the job fails with JobTimeoutError, so one hostile input costs at most one worker for that
// long and never holds the queue behind it. Both are PoolErrors (503 + Retry-After), not bugs: the node
// could not finish the work, and a 500 would claim one.
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { errorCodes } from '../error-codes.js';
import { reviveError, type JobRequest, type JobResponse, type WorkerReady } from './protocol.js';

export interface WorkerPoolOptions {
  /**
   * Module run in each worker: it posts READY once loaded, then answers each JobRequest message with
   * one JobResponse message.
   */
  workerUrl: URL;
  /** Number of worker threads; defaults to the number of cores. */
  size?: number;
  /** Jobs allowed to wait while all workers are busy; defaults to 2 × size. */
  maxQueue?: number;
  /** A job running longer than this has its worker terminated and fails with JobTimeoutError; defaults to 30 s. */
  jobTimeoutMs?: number;
  /** A worker not READY this long after it was started is terminated; defaults to 30 s. */
  startTimeoutMs?: number;
  /** Seconds a client should wait before retrying after PoolSaturatedError; defaults to 1. */
  retryAfterSeconds?: number;
  workerData?: unknown;
  resourceLimits?: ResourceLimits;
}

export type PoolErrorCode = 'pool_saturated' | 'worker_crashed' | 'job_timeout' | 'pool_closed';

/** Every PoolErrorCode, for tables that must cover them all. */
export const POOL_ERROR_CODES = errorCodes<PoolErrorCode>({ pool_saturated: true, worker_crashed: true, job_timeout: true, pool_closed: true }).all;

/**
 * The pool could not finish a job for now (busy, crashed worker, time budget, shutting down): not the
 * input's fault and not a bug. `retryAfterSeconds` is when the same job may succeed; none while closing.
 */
export abstract class PoolError extends Error {
  abstract readonly code: PoolErrorCode;
  constructor(
    message: string,
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(message);
  }
}

export class PoolSaturatedError extends PoolError {
  readonly code = 'pool_saturated';
  constructor(retryAfterSeconds: number, busy: number, queued: number) {
    super(`server busy: ${busy} jobs running and ${queued} queued; retry in ${retryAfterSeconds} s`, retryAfterSeconds);
    this.name = 'PoolSaturatedError';
  }
}

export const DEFAULT_JOB_TIMEOUT_MS = 30_000;

export class WorkerCrashedError extends PoolError {
  readonly code = 'worker_crashed';
  constructor(reason: string, retryAfterSeconds = 1) {
    super(`worker thread died while running the job: ${reason}`, retryAfterSeconds);
    this.name = 'WorkerCrashedError';
  }
}

export class JobTimeoutError extends PoolError {
  readonly code = 'job_timeout';
  constructor(readonly budgetMs: number, retryAfterSeconds: number) {
    super(`the job exceeded its time budget of ${budgetMs} ms and was cancelled`, retryAfterSeconds);
    this.name = 'JobTimeoutError';
  }
}

export class PoolClosedError extends PoolError {
  readonly code = 'pool_closed';
  constructor() {
    super('worker pool is shutting down', undefined);
    this.name = 'PoolClosedError';
  }
}

export interface PoolStats {
  size: number;
  busy: number;
  queued: number;
  maxQueue: number;
  crashes: number;
  completed: number;
  rejected: number;
  /** Jobs cancelled (worker terminated and replaced) for running past their time budget. */
  timeouts: number;
}

interface PendingJob<J, R> {
  id: number;
  job: J;
  transfer: ArrayBuffer[];
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

interface Slot<J, R> {
  worker: Worker;
  /** Modules loaded; until then a dispatched job waits in the worker's message queue, untimed. */
  ready: boolean;
  current: PendingJob<J, R> | null;
  /** Job timeout while running a job, start-up timeout before READY. */
  timer: NodeJS.Timeout | null;
  /** Why the worker is going away, recorded by 'error' or a timeout before 'exit' arrives. */
  deathReason: string | null;
  /** Set when the running job's time budget ran out: its caller gets JobTimeoutError, not a crash. */
  timedOut: boolean;
}

const RESPAWN_BACKOFF_MS = [0, 100, 250, 500, 1000, 2000, 5000];

export class WorkerPool<J, R> {
  readonly size: number;
  readonly maxQueue: number;
  private readonly opts: WorkerPoolOptions;
  private readonly jobTimeoutMs: number;
  private readonly retryAfterSeconds: number;
  private readonly slots = new Set<Slot<J, R>>();
  private readonly queue: PendingJob<J, R>[] = [];
  private nextId = 1;
  private closed = false;
  private consecutiveCrashes = 0;
  private readonly counters = { crashes: 0, completed: 0, rejected: 0, timeouts: 0 };

  constructor(opts: WorkerPoolOptions) {
    this.opts = opts;
    this.size = Math.max(1, opts.size ?? availableParallelism());
    this.maxQueue = Math.max(0, opts.maxQueue ?? 2 * this.size);
    this.jobTimeoutMs = opts.jobTimeoutMs ?? DEFAULT_JOB_TIMEOUT_MS;
    this.retryAfterSeconds = opts.retryAfterSeconds ?? 1;
    for (let i = 0; i < this.size; i++) this.spawn();
  }

  /**
   * Runs `job` on a worker. The ArrayBuffers in `transfer` move to the worker (they are detached here),
   * so the caller must not touch them afterwards.
   */
  run(job: J, transfer: ArrayBuffer[] = []): Promise<R> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    if (this.idleSlot() === undefined && this.queue.length >= this.maxQueue) {
      this.counters.rejected++;
      return Promise.reject(new PoolSaturatedError(this.retryAfterSeconds, this.busyCount(), this.queue.length));
    }
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, transfer, resolve, reject });
      this.dispatch();
    });
  }

  /** True when a new job would be refused right now; lets callers refuse before reading a large body. */
  get saturated(): boolean {
    return this.closed || (this.idleSlot() === undefined && this.queue.length >= this.maxQueue);
  }

  get retryAfter(): number {
    return this.retryAfterSeconds;
  }

  stats(): PoolStats {
    return { size: this.size, busy: this.busyCount(), queued: this.queue.length, maxQueue: this.maxQueue, ...this.counters };
  }

  /** Fails queued jobs, waits for running ones to be cut short, and stops every worker. */
  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new PoolClosedError());
    const exits = [...this.slots].map(async (slot) => {
      slot.deathReason = 'pool closed';
      await slot.worker.terminate();
    });
    await Promise.all(exits);
  }

  private spawn(): void {
    const worker = new Worker(this.opts.workerUrl, {
      workerData: this.opts.workerData,
      resourceLimits: this.opts.resourceLimits,
    });
    const slot: Slot<J, R> = { worker, ready: false, current: null, timer: null, deathReason: null, timedOut: false };
    this.slots.add(slot);
    const startTimeoutMs = this.opts.startTimeoutMs ?? 30_000;
    slot.timer = setTimeout(() => this.kill(slot, `worker did not start within ${startTimeoutMs} ms`), startTimeoutMs);
    worker.on('message', (msg: JobResponse<R> | WorkerReady) => ('ready' in msg ? this.onReady(slot) : this.onMessage(slot, msg)));
    worker.on('error', (err) => {
      slot.deathReason ??= `${err.name}: ${err.message}`;
    });
    worker.on('messageerror', (err) => {
      slot.deathReason ??= `unreadable message: ${err.message}`;
      void worker.terminate();
    });
    worker.on('exit', (code) => this.onExit(slot, code));
    // Idle workers must not keep the process alive; busy ones are kept alive by their pending promise.
    worker.unref();
  }

  private onReady(slot: Slot<J, R>): void {
    slot.ready = true;
    this.clearTimer(slot);
    if (slot.current) this.startJobTimer(slot);
  }

  private onMessage(slot: Slot<J, R>, msg: JobResponse<R>): void {
    const pending = slot.current;
    if (!pending || pending.id !== msg.id) return;
    this.release(slot);
    this.consecutiveCrashes = 0;
    this.counters.completed++;
    if (msg.ok) pending.resolve(msg.result);
    else pending.reject(reviveError(msg.error));
    this.dispatch();
  }

  private onExit(slot: Slot<J, R>, code: number): void {
    this.slots.delete(slot);
    const pending = slot.current;
    this.release(slot);
    if (this.closed) {
      pending?.reject(new PoolClosedError());
      return;
    }
    if (slot.timedOut) {
      // the input's fault, not the worker's: replace it at once, no crash back-off
      this.counters.timeouts++;
      pending?.reject(new JobTimeoutError(this.jobTimeoutMs, this.retryAfterSeconds));
      this.respawn();
      return;
    }
    this.counters.crashes++;
    this.consecutiveCrashes++;
    pending?.reject(new WorkerCrashedError(slot.deathReason ?? `exit code ${code}`, this.retryAfterSeconds));
    // A worker that cannot even start would otherwise be respawned in a tight loop.
    const delay = RESPAWN_BACKOFF_MS[Math.min(this.consecutiveCrashes - 1, RESPAWN_BACKOFF_MS.length - 1)]!;
    setTimeout(() => this.respawn(), delay).unref();
  }

  private respawn(): void {
    if (this.closed || this.slots.size >= this.size) return;
    this.spawn();
    this.dispatch();
  }

  private dispatch(): void {
    for (;;) {
      const slot = this.idleSlot();
      const pending = slot && this.queue.shift();
      if (!slot || !pending) return;
      this.start(slot, pending);
    }
  }

  private start(slot: Slot<J, R>, pending: PendingJob<J, R>): void {
    slot.current = pending;
    slot.worker.ref();
    if (slot.ready) this.startJobTimer(slot);
    const request: JobRequest<J> = { id: pending.id, job: pending.job };
    try {
      slot.worker.postMessage(request, pending.transfer);
    } catch (e) {
      // Cloning failed (e.g. an already detached buffer): the job is bad, the worker is fine.
      this.release(slot);
      pending.reject(e instanceof Error ? e : new Error(String(e)));
      queueMicrotask(() => this.dispatch());
    }
  }

  private startJobTimer(slot: Slot<J, R>): void {
    slot.timer = setTimeout(() => {
      slot.timedOut = true;
      this.kill(slot, `job exceeded ${this.jobTimeoutMs} ms and its worker was terminated`);
    }, this.jobTimeoutMs);
  }

  private kill(slot: Slot<J, R>, reason: string): void {
    slot.deathReason = reason;
    void slot.worker.terminate();
  }

  private clearTimer(slot: Slot<J, R>): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
  }

  private release(slot: Slot<J, R>): void {
    this.clearTimer(slot);
    slot.current = null;
    slot.worker.unref();
  }

  private idleSlot(): Slot<J, R> | undefined {
    for (const slot of this.slots) if (slot.current === null && slot.deathReason === null) return slot;
    return undefined;
  }

  private busyCount(): number {
    let busy = 0;
    for (const slot of this.slots) if (slot.current !== null) busy++;
    return busy;
  }
}
