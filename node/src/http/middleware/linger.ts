// An answer sent before the request body was read (a 413 on Content-Length, a refusal before the upload,
// a PNG refused at its header) must reach the client, and must cost this node as little as possible.
// Closing a socket that still has unread input makes the kernel send a reset, and a client still writing
// its body (fetch/undici, most HTTP libraries, nginx forwarding a buffered body) may then lose the answer
// and see EPIPE or ECONNRESET instead of the JSON error. Two ways out, chosen by the declared body size:
//   - a small rest (declared length ≤ maxBytes): read and discard it, for at most maxMs, and keep the
//     connection, like nginx's lingering close;
//   - anything larger, or an undeclared (chunked) length: stop reading at once. Every byte read costs the
//     HTTP thread a buffer (and the garbage collector external memory: a few MB discarded per request
//     were a full collection every few requests under bench:abuse), so the rest stays in the kernel's
//     socket buffers, the answer is sent with `Connection: close` and a FIN, and the connection is
//     destroyed closeAfterMs later — time for the peer to read the answer before the close resets the
//     connection. (Node's own close after a `Connection: close` answer destroys the socket as soon as the
//     answer is written, which resets it at once while the peer may still be sending.) Clients that read
//     while they send (fetch, curl, Node's http, nginx) get the answer and close first. The close matters:
//     a body small enough to sit in the socket buffers counts as sent for nginx, which would otherwise
//     keep the connection and queue its next request behind bytes this node never reads.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'koa';

export interface LingerLimits {
  /** Largest declared body whose unread rest is read and discarded after an early answer. */
  maxBytes: number;
  /** Longest the discarding may take. */
  maxMs: number;
  /** When the rest is not read: how long after the answer the connection is destroyed. */
  closeAfterMs: number;
}

export const DEFAULT_LINGER: LingerLimits = { maxBytes: 1024 * 1024, maxMs: 10_000, closeAfterMs: 2_000 };

/**
 * Prepares `ctx` for an answer given while the body may be unread: discard a small rest and keep the
 * connection, or stop reading and close the connection shortly after the answer (see the header).
 */
export function lingerOnEarlyAnswer(ctx: Context, limits: LingerLimits = DEFAULT_LINGER): void {
  const req = ctx.req;
  if (req.complete) return;
  const declared = ctx.request.length;
  if (declared !== undefined && declared <= limits.maxBytes) {
    guardDiscard(req, limits);
    return;
  }
  stopReading(ctx, limits.closeAfterMs);
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

/**
 * Stops reading the socket now (the HTTP server reads a consumed socket in C++; pausing the socket stops
 * those reads), answers with `Connection: close`, and replaces the immediate destroy Node does after such
 * an answer by a FIN now and a destroy closeAfterMs later. Nothing resumes the reads: the request stream
 * is paused too, and the connection ends with this answer.
 */
function stopReading(ctx: Context, closeAfterMs: number): void {
  const socket = ctx.req.socket;
  if (!socket) return;
  ctx.set('Connection', 'close');
  ctx.req.pause();
  socket.pause();
  socket.destroySoon = (): void => {
    socket.end();
    const timer = setTimeout(() => socket.destroy(), closeAfterMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  };
}
