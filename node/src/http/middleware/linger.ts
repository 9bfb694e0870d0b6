// An answer sent before the request body was read (a 413 on Content-Length, a refusal before the upload)
// must reach the client: closing a socket that still has unread input makes the kernel send a reset, and
// a client still writing its body (fetch/undici, most HTTP libraries; curl stops on its own) then sees
// EPIPE or ECONNRESET instead of the JSON error. Like nginx's lingering close, the rest of the body is
// read and discarded — no memory held — for a bounded number of bytes and time; a body declared larger
// than that is not waited for: the connection is closed and such a client may see the reset.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

export interface LingerLimits {
  /** Most bytes discarded after an early answer before the connection is cut. */
  maxBytes: number;
  /** Longest the discarding may take. */
  maxMs: number;
}

export const DEFAULT_LINGER: LingerLimits = { maxBytes: 64 * 1024 * 1024, maxMs: 10_000 };

/**
 * Prepares `ctx` for an answer given while the body may be unread: keep the connection (Node then
 * discards the rest of the body before the next request) when the rest is within `limits`, bounded by
 * a guard that cuts the connection past them; otherwise `Connection: close`.
 */
export function lingerOnEarlyAnswer(ctx: Context, limits: LingerLimits = DEFAULT_LINGER): void {
  const req = ctx.req;
  if (req.complete) return;
  const declared = ctx.request.length;
  if (declared !== undefined && declared > limits.maxBytes) {
    ctx.set('Connection', 'close');
    return;
  }
  guardDiscard(req, limits);
}

function guardDiscard(req: IncomingMessage, limits: LingerLimits): void {
  let seen = 0;
  const cut = (): void => {
    clearTimeout(timer);
    req.socket?.destroy();
  };
  const timer = setTimeout(cut, limits.maxMs);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > limits.maxBytes) cut();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
}
