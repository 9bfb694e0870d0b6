// Outermost middleware: turns every thrown value into `{"error":{"code","message"}}` with the right
// status, and answers unmatched routes with a JSON 404 instead of Koa's plain-text "Not Found".
import type { Middleware } from 'koa';
import type { Logger } from '../../log.js';
import { ApiError, errorAnswer } from '../errors.js';
import { lingerOnEarlyAnswer } from './linger.js';

export function errorHandler(logger: Logger): Middleware {
  return async function handleErrors(ctx, next) {
    try {
      await next();
      if (ctx.status === 404 && ctx.body == null) {
        throw new ApiError('not_found', 404, `no route for ${ctx.method} ${ctx.path}`);
      }
    } catch (e) {
      const answer = errorAnswer(e);
      const log = (ctx.state.log as Logger | undefined) ?? logger;
      if (answer.unexpected) log.error({ err: e, status: answer.status }, 'request failed unexpectedly');
      else log.debug({ code: answer.body.error.code, status: answer.status }, answer.body.error.message);
      ctx.set(answer.headers);
      lingerOnEarlyAnswer(ctx);
      ctx.status = answer.status;
      ctx.body = answer.body;
    }
  };
}
