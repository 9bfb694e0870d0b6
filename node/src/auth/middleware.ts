// Bearer-token checks for the HTTP routes. `identify` reads `Authorization: Bearer <token>` once per
// request (a wrong token is a 401 wherever it is sent, never silently anonymous) and applies the token's
// rate limit (429 + Retry-After); `requireScope` guards a route. Errors are ApiErrors, shaped by the
// error middleware.
import type { Context, Middleware } from 'koa';
import { ApiError } from '../http/errors.js';
import { RateLimiter } from './rate-limit.js';
import type { ApiToken, Scope, TokenRegistry } from './tokens.js';

const TOKEN_STATE = 'apiToken';

export function tokenOf(ctx: Context): ApiToken | undefined {
  return ctx.state[TOKEN_STATE] as ApiToken | undefined;
}

function unauthorized(ctx: Context, message: string): ApiError {
  ctx.set('WWW-Authenticate', 'Bearer realm="stegocluster"');
  return new ApiError('unauthorized', 401, message);
}

/** /admin/* carries the separate admin token (routes/admin.ts), never an API token. */
const OWN_AUTH_PREFIX = '/admin/';

export function identify(tokens: TokenRegistry, limiter = new RateLimiter()): Middleware {
  return async function identifyToken(ctx, next) {
    const header = ctx.get('Authorization');
    if (header !== '' && !ctx.path.startsWith(OWN_AUTH_PREFIX)) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const token = m ? tokens.authenticate(m[1]!) : undefined;
      if (!token) throw unauthorized(ctx, 'unknown or malformed bearer token');
      const rate = limiter.take(token.id, token.ratePerSecond);
      if (!rate.allowed) {
        throw new ApiError('rate_limited', 429, `token ${token.id} is over its rate of ${token.ratePerSecond} requests per second`, {
          'Retry-After': String(rate.retryAfterSeconds),
        });
      }
      ctx.state[TOKEN_STATE] = token;
    }
    await next();
  };
}

/** The route needs a token carrying `scope` (401 without a token, 403 with one that lacks it). */
export function requireScope(scope: Scope): Middleware {
  return async function checkScope(ctx, next) {
    const token = tokenOf(ctx);
    if (!token) throw unauthorized(ctx, `this route needs a bearer token with the '${scope}' scope`);
    if (!token.scopes.has(scope)) throw new ApiError('forbidden', 403, `token ${token.id} lacks the '${scope}' scope`);
    await next();
  };
}

/** Any valid token (STEGO_STATELESS_AUTH=token closes embed/extract/capacity to anonymous callers). */
export function requireToken(): Middleware {
  return async function checkToken(ctx, next) {
    if (!tokenOf(ctx)) throw unauthorized(ctx, 'this node requires a bearer token for every API call');
    await next();
  };
}
