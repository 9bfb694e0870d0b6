// Refuses a body whose declared length is over the limit before a single byte of it is read. Bodies
// sent without Content-Length (chunked) are bounded while they stream by the multipart parser's own
// limits (see multipart.ts), which use the same number.
import type { Middleware } from 'koa';
import { ApiError } from '../errors.js';

export function bodyTooLarge(limitBytes: number, receivedBytes?: number): ApiError {
  const got = receivedBytes === undefined ? '' : ` (got ${receivedBytes} bytes)`;
  return new ApiError('body_too_large', 413, `request body exceeds the limit of ${limitBytes} bytes${got}`);
}

export function bodyLimit(limitBytes: number): Middleware {
  return async function limitBody(ctx, next) {
    const declared = ctx.request.length;
    if (declared !== undefined && declared > limitBytes) throw bodyTooLarge(limitBytes, declared);
    await next();
  };
}
