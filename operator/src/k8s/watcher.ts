// An informer that survives the API server: list, then watch from the list's resourceVersion (with
// bookmarks); re-list on 410 Gone; re-watch with back-off after any other end; a periodic resync that hands
// every cached object to the handlers again; and a watchdog that restarts a watch that has gone silent
// (client-node's informers are known to stop without a word: kubernetes-client/javascript #364, #596, #958).
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import { ApiError, type KObject, type KubeClient } from './client.js';

export type WatchEventType = 'added' | 'modified' | 'deleted' | 'resync';
export type RestartReason = 'gone' | 'ended' | 'error' | 'watchdog';

export interface WatcherOptions {
  /** Collection path, e.g. /apis/apps/v1/statefulsets (all namespaces) or a namespaced one. */
  path: string;
  /** Short name for logs and metrics. */
  resource: string;
  labelSelector?: string;
  resyncMs?: number;
  /** No event, bookmark or end of stream for this long restarts the watch. */
  silenceMs?: number;
  /** Server-side watch timeout; the server ends the stream and we re-watch. */
  watchTimeoutSeconds?: number;
}

export interface WatcherHooks<T extends KObject> {
  onEvent: (type: WatchEventType, obj: T) => void;
  onRestart?: (reason: RestartReason, err?: unknown) => void;
  onUnavailable?: (err: unknown) => void;
}

export function objectKey(o: KObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export class Watcher<T extends KObject> {
  readonly cache = new Map<string, T>();
  #resourceVersion = '';
  #abort: AbortController | null = null;
  /** A watch request is open or being opened (the watchdog covers a request hanging before its headers). */
  #watching = false;
  #running = false;
  #synced = false;
  #lastActivity = Date.now();
  #backoffMs = 0;
  #timers: NodeJS.Timeout[] = [];
  #retry: NodeJS.Timeout | null = null;
  #generation = 0;
  /** True once the API server served the list (false when, e.g., the CRD for this kind is not installed). */
  available = false;

  constructor(
    private readonly client: KubeClient,
    private readonly kc: KubeConfig,
    private readonly opts: WatcherOptions,
    private readonly hooks: WatcherHooks<T>,
  ) {}

  get synced(): boolean {
    return this.#synced;
  }

  get resource(): string {
    return this.opts.resource;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const resync = this.opts.resyncMs ?? 5 * 60_000;
    const silence = this.opts.silenceMs ?? 3 * 60_000;
    this.#timers.push(setInterval(() => this.resync(), resync).unref());
    this.#timers.push(setInterval(() => this.checkSilence(silence), Math.max(250, silence / 4)).unref());
    void this.relist();
  }

  stop(): void {
    this.#running = false;
    this.#watching = false;
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    if (this.#retry) clearTimeout(this.#retry);
    this.#abort?.abort();
    this.#abort = null;
  }

  /** Resolves once the first list has been served (or the deadline passes: then false). */
  async waitForSync(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#synced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.#synced;
  }

  private resync(): void {
    for (const obj of this.cache.values()) this.hooks.onEvent('resync', obj);
  }

  private checkSilence(silenceMs: number): void {
    if (!this.#running || !this.#watching) return;
    if (Date.now() - this.#lastActivity < silenceMs) return;
    this.restart('watchdog');
  }

  /** A 410 or our own watchdog re-lists (the stream may have missed events); anything else re-watches. */
  private restart(reason: RestartReason, err?: unknown, relist = reason === 'gone' || reason === 'watchdog'): void {
    this.hooks.onRestart?.(reason, err);
    this.#generation++;
    this.#watching = false;
    this.#abort?.abort();
    this.#abort = null;
    if (relist) void this.relist();
    else this.scheduleWatch();
  }

  private scheduleWatch(): void {
    this.#backoffMs = Math.min(30_000, this.#backoffMs === 0 ? 200 : this.#backoffMs * 2);
    this.retryLater(() => void this.watch(), this.#backoffMs);
  }

  private retryLater(fn: () => void, ms: number): void {
    if (!this.#running) return;
    if (this.#retry) clearTimeout(this.#retry);
    this.#retry = setTimeout(fn, ms);
  }

  private async relist(): Promise<void> {
    if (!this.#running) return;
    const generation = ++this.#generation;
    try {
      const items = await this.listAll();
      if (generation !== this.#generation || !this.#running) return;
      this.replaceCache(items.items);
      this.#resourceVersion = items.resourceVersion;
      this.available = true;
      this.#synced = true;
      this.#backoffMs = 0;
      void this.watch();
    } catch (err) {
      this.available = !(err instanceof ApiError && err.notFound);
      if (!this.available) this.hooks.onUnavailable?.(err);
      this.#backoffMs = Math.min(30_000, this.#backoffMs === 0 ? 500 : this.#backoffMs * 2);
      this.retryLater(() => void this.relist(), this.#backoffMs);
    }
  }

  private async listAll(): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    do {
      const page = await this.client.list<T>(this.opts.path, { labelSelector: this.opts.labelSelector, limit: 500, continue: cont });
      items.push(...page.items);
      rv = page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  /** After a re-list: emits what changed or disappeared while we were not watching. */
  private replaceCache(items: T[]): void {
    const fresh = new Map(items.map((o) => [objectKey(o), o]));
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.hooks.onEvent('deleted', old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.hooks.onEvent('added', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.hooks.onEvent('modified', obj);
    }
  }

  private async watch(): Promise<void> {
    if (!this.#running) return;
    const generation = this.#generation;
    this.#lastActivity = Date.now();
    const query = {
      resourceVersion: this.#resourceVersion,
      allowWatchBookmarks: true,
      labelSelector: this.opts.labelSelector,
      timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
    };
    const done = (err: unknown): void => {
      if (generation !== this.#generation || !this.#running) return;
      if ((err as { statusCode?: number } | null)?.statusCode === 410) return this.restart('gone', err);
      // client-node's Watch aborts a stream that stayed silent for 30 s: its watchdog, ours re-watches
      if ((err as { name?: string } | null)?.name === 'TimeoutError') return this.restart('watchdog', err, false);
      this.restart(err ? 'error' : 'ended', err);
    };
    this.#watching = true;
    try {
      const abort = await new Watch(this.kc).watch(this.opts.path, query, (type, obj) => this.onWatchEvent(generation, type, obj as T), done);
      // restarted (watchdog, stop) while the request was still opening: close this stream at once
      if (generation !== this.#generation || !this.#running) abort.abort();
      else this.#abort = abort;
    } catch (err) {
      done(err);
    }
  }

  private onWatchEvent(generation: number, type: string, obj: T): void {
    if (generation !== this.#generation) return;
    this.#lastActivity = Date.now();
    this.#backoffMs = 0;
    const rv = obj?.metadata?.resourceVersion;
    if (type === 'ERROR') {
      const code = (obj as unknown as { code?: number }).code;
      this.restart(code === 410 ? 'gone' : 'error', new Error(`watch error ${code}`));
      return;
    }
    if (rv) this.#resourceVersion = rv;
    if (type === 'BOOKMARK') return;
    const key = objectKey(obj);
    if (type === 'DELETED') {
      this.cache.delete(key);
      this.hooks.onEvent('deleted', obj);
      return;
    }
    const known = this.cache.has(key);
    this.cache.set(key, obj);
    this.hooks.onEvent(known ? 'modified' : 'added', obj);
  }
}
