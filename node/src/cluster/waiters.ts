// Promises keyed by log position: "tell me when index i is applied" and "tell me whether my proposal
// at (index, term) is the entry that got applied there". Both are settled by the driver's apply loop.

import { ClusterError } from './errors.js';

interface Pending {
  index: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

/** Waiters for "applied ≥ index", kept sorted so each apply step only looks at the front. */
export class AppliedWaiters {
  private waiting: Pending[] = [];

  constructor(private applied: () => number) {}

  wait(index: number, timeoutMs: number): Promise<void> {
    if (this.applied() >= index) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const p: Pending = { index, resolve, reject, timer: undefined };
      p.timer = setTimeout(() => {
        this.remove(p);
        reject(new ClusterError('timeout', `index ${index} not applied within ${timeoutMs} ms (applied ${this.applied()})`));
      }, timeoutMs);
      const at = this.waiting.findIndex((w) => w.index > index);
      if (at < 0) this.waiting.push(p);
      else this.waiting.splice(at, 0, p);
    });
  }

  /** Call after every apply step. */
  notify(): void {
    const applied = this.applied();
    let n = 0;
    while (n < this.waiting.length && this.waiting[n]!.index <= applied) n++;
    if (n === 0) return;
    for (const w of this.waiting.splice(0, n)) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  failAll(e: Error): void {
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }

  get size(): number {
    return this.waiting.length;
  }

  private remove(p: Pending): void {
    const i = this.waiting.indexOf(p);
    if (i >= 0) this.waiting.splice(i, 1);
  }
}

interface Proposal {
  term: number;
  resolve: (index: number) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Proposals awaiting application. A proposal is ours only if the entry applied at its index carries the
 * term it was proposed in; any other term there means a new leader overwrote it (not committed).
 */
export class ProposalTracker {
  private byIndex = new Map<number, Proposal>();

  track(index: number, term: number, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byIndex.delete(index);
        reject(new ClusterError('timeout', `proposal at index ${index} not committed within ${timeoutMs} ms`));
      }, timeoutMs);
      this.byIndex.set(index, { term, resolve, reject, timer });
    });
  }

  /** Called for every applied entry, in order. */
  applied(index: number, term: number, error?: Error): void {
    const p = this.byIndex.get(index);
    if (!p) return;
    this.byIndex.delete(index);
    clearTimeout(p.timer);
    if (p.term !== term) p.reject(new ClusterError('proposal_lost', `entry ${index} was replaced by a new leader (term ${p.term} → ${term})`));
    else if (error) p.reject(error);
    else p.resolve(index);
  }

  /** After a snapshot install jumps past pending indexes we cannot tell what happened to them. */
  failUpTo(index: number): void {
    for (const [i, p] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      clearTimeout(p.timer);
      p.reject(new ClusterError('proposal_lost', `entry ${i} was superseded by a snapshot; its outcome is unknown`));
    }
  }

  failAll(e: Error): void {
    for (const [i, p] of this.byIndex) {
      this.byIndex.delete(i);
      clearTimeout(p.timer);
      p.reject(e);
    }
  }

  get size(): number {
    return this.byIndex.size;
  }
}

/**
 * Resolves true once `ready()` holds — checked now and after every `event` from `emitter` — or false after
 * `timeoutMs`. Never rejects, never polls.
 */
export function until<E extends Record<string, unknown[]>>(
  emitter: import('node:events').EventEmitter<E>,
  event: keyof E & string,
  ready: () => boolean,
  timeoutMs: number,
): Promise<boolean> {
  if (ready()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const target = emitter as unknown as import('node:events').EventEmitter;
    const check = (): void => {
      if (!ready()) return;
      finish(true);
    };
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      target.off(event, check);
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    target.on(event, check);
  });
}
