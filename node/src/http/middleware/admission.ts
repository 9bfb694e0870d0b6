// Refuses work the pool could not take anyway before the (up to 50 MB) body is read, so an overloaded
// node answers 503 in microseconds instead of buffering uploads it will then reject.
import type { Middleware } from 'koa';
import { PoolSaturatedError } from '../../workers/pool.js';

export interface AdmissionSource {
  readonly saturated: boolean;
  readonly retryAfterSeconds: number;
  stats(): { busy: number; queued: number };
}

export function refuseWhenSaturated(pool: AdmissionSource): Middleware {
  return async function admit(_ctx, next) {
    if (pool.saturated) {
      const s = pool.stats();
      throw new PoolSaturatedError(pool.retryAfterSeconds, s.busy, s.queued);
    }
    await next();
  };
}
