// A rate-limited work queue keyed by StegoCluster (namespace/name), like client-go's: a key is queued at
// most once, never processed by two workers at once (an add while it runs re-queues it afterwards),
// failures back off exponentially per key, and `forget` resets a key's back-off after a clean pass.

export interface WorkQueueOptions {
  workers?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onDepth?: (depth: number) => void;
}

export type Handler = (key: string) => Promise<void>;

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #queued = new Set<string>();
  readonly #active = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #idle: (() => void)[] = [];
  #running = 0;
  #stopped = false;
  #handler: Handler | null = null;

  constructor(private readonly opts: WorkQueueOptions = {}) {}

  get depth(): number {
    return this.#queue.length;
  }

  start(handler: Handler): void {
    this.#handler = handler;
    this.pump();
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#queue.push(key);
    this.opts.onDepth?.(this.#queue.length);
    this.pump();
  }

  /** Adds the key after `ms`, unless an earlier delayed add is already pending. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    const at = Date.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#delayed.set(key, { at, timer });
  }

  /** Re-queues a key that failed, after its exponential back-off. */
  addRateLimited(key: string): number {
    const n = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, n);
    const base = this.opts.baseDelayMs ?? 250;
    const delay = Math.min(this.opts.maxDelayMs ?? 60_000, base * 2 ** (n - 1));
    this.addAfter(key, delay);
    return delay;
  }

  forget(key: string): void {
    this.#failures.delete(key);
  }

  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Stops taking work and resolves when the running handlers have finished. */
  async shutdown(): Promise<void> {
    this.#stopped = true;
    for (const d of this.#delayed.values()) clearTimeout(d.timer);
    this.#delayed.clear();
    this.#queue.length = 0;
    this.#queued.clear();
    if (this.#running === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  private pump(): void {
    const workers = this.opts.workers ?? 2;
    while (!this.#stopped && this.#handler && this.#running < workers && this.#queue.length > 0) {
      const key = this.#queue.shift()!;
      this.#queued.delete(key);
      this.opts.onDepth?.(this.#queue.length);
      this.#active.add(key);
      this.#running++;
      void this.process(key);
    }
  }

  private async process(key: string): Promise<void> {
    try {
      await this.#handler!(key);
    } catch {
      // the handler reports its own errors and decides about retries (addRateLimited)
    } finally {
      this.#active.delete(key);
      this.#running--;
      if (this.#dirty.delete(key)) this.add(key);
      if (this.#running === 0 && (this.#stopped || this.#queue.length === 0)) for (const r of this.#idle.splice(0)) r();
      this.pump();
    }
  }
}
