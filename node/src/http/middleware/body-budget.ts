// The per-node byte budget for request and response bodies in flight, and the timeouts that keep a
// slow or stalled client from holding its share for long.
//
// A request with a body reserves its declared length (or the whole body limit when it sends none,
// chunked) before a byte of it is read; when the reservation does not fit, the answer is 503
// `memory_budget` + Retry-After at once, with the body unread (lingerOnEarlyAnswer). The reservation is
// held until the response is finished or the connection closes. A buffered response (an embedded
// image) is added to the budget when the handler is done — it cannot be refused any more, but it keeps
// new bodies out until it has been sent. Streamed responses (object downloads) reserve their window.
// While the body streams in, an idle timeout (no byte for bodyIdleTimeoutMs) and a total one
// (bodyTimeoutMs) cut the connection; while a response is written, a client that reads nothing for
// bodyIdleTimeoutMs is cut too.
import type { Context, Middleware } from 'koa';
import { ApiError } from '../errors.js';
import { lingerOnEarlyAnswer } from './linger.js';

export class ByteBudget {
  private used = 0;
  private peak = 0;

  /** `onRefused` runs on every refused reservation: each one is answered 503 `memory_budget`. */
  constructor(readonly limitBytes: number, private readonly onRefused?: () => void) {}

  get inUse(): number {
    return this.used;
  }

  get peakBytes(): number {
    return this.peak;
  }

  /** Takes `bytes` if they fit; `force` takes them regardless (an answer already computed). */
  tryReserve(bytes: number, force = false): boolean {
    if (!force && this.used + bytes > this.limitBytes) {
      this.onRefused?.();
      return false;
    }
    this.used += bytes;
    this.peak = Math.max(this.peak, this.used);
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

export interface BodyTimeouts {
  /** Longest pause between two body bytes (request or response) before the connection is cut. */
  bodyIdleTimeoutMs: number;
  /** Longest a request body may take to arrive in full. */
  bodyTimeoutMs: number;
}

export interface BudgetOptions extends BodyTimeouts {
  budget: ByteBudget;
  bodyLimitBytes: number;
  retryAfterSeconds?: number;
}

const HAS_BODY = new Set(['POST', 'PUT', 'PATCH']);

export function budgetRefusal(budget: ByteBudget, wanted: number, retryAfterSeconds: number): ApiError {
  return new ApiError(
    'memory_budget',
    503,
    `this node has ${budget.inUse} of its ${budget.limitBytes} bytes for bodies in flight in use and cannot take ${wanted} more; retry in ${retryAfterSeconds} s`,
    { 'Retry-After': String(retryAfterSeconds) },
  );
}

/** Holds `bytes` of `budget` for the life of this request's response; released once. */
export function holdUntilDone(ctx: Context, budget: ByteBudget, bytes: number): void {
  let held = true;
  const done = (): void => {
    if (!held) return;
    held = false;
    budget.release(bytes);
  };
  ctx.res.once('finish', done);
  ctx.res.once('close', done);
}

/**
 * Idle: the socket's own inactivity timeout (Node's HTTP parser refreshes it on every read, without
 * this code touching the body stream, which a 'data' listener would start flowing); total: a timer
 * cleared when the body has arrived. Either cuts the connection.
 */
function guardRequestBody(ctx: Context, t: BodyTimeouts): void {
  const req = ctx.req;
  const socket = req.socket;
  if (req.complete || !socket) return;
  const cut = (): void => {
    socket.destroy();
  };
  socket.setTimeout(t.bodyIdleTimeoutMs, cut);
  const total = setTimeout(cut, t.bodyTimeoutMs);
  total.unref();
  let guarding = true;
  const arrived = (): void => {
    if (!guarding) return;
    guarding = false;
    clearTimeout(total);
    // only while nothing else set a timeout since: after the answer, Node sets the keep-alive one
    if (!ctx.res.writableFinished) socket.setTimeout(0);
    socket.off('timeout', cut);
  };
  req.once('end', arrived);
  req.once('close', arrived);
}

/** Once the answer is being written, a client that reads nothing for the idle timeout is cut. */
function guardResponse(ctx: Context, t: BodyTimeouts): void {
  const socket = ctx.req.socket;
  if (!socket) return;
  const onTimeout = (): void => {
    socket.destroy();
  };
  socket.setTimeout(t.bodyIdleTimeoutMs, onTimeout);
  // Node's own 'finish' handler (registered first) has set the keep-alive timeout by now: leave it
  ctx.res.once('finish', () => socket.off('timeout', onTimeout));
}

function bufferedLength(body: unknown): number {
  if (Buffer.isBuffer(body) || body instanceof Uint8Array) return body.byteLength;
  if (typeof body === 'string') return Buffer.byteLength(body);
  return 0;
}

export function bodyBudget(opts: BudgetOptions): Middleware {
  const retryAfter = opts.retryAfterSeconds ?? 1;
  return async function budgetBodies(ctx, next) {
    if (HAS_BODY.has(ctx.method)) {
      const declared = ctx.request.length;
      const wanted = Math.min(declared ?? opts.bodyLimitBytes, opts.bodyLimitBytes);
      if (!opts.budget.tryReserve(wanted)) {
        lingerOnEarlyAnswer(ctx);
        throw budgetRefusal(opts.budget, wanted, retryAfter);
      }
      holdUntilDone(ctx, opts.budget, wanted);
      guardRequestBody(ctx, opts);
    }
    try {
      await next();
    } finally {
      const answer = bufferedLength(ctx.body);
      if (answer > 0) {
        opts.budget.tryReserve(answer, true);
        holdUntilDone(ctx, opts.budget, answer);
      }
      guardResponse(ctx, opts);
    }
  };
}
