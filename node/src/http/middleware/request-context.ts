// Gives each request an id (the caller's X-Request-Id when it is sane, else a fresh UUID), a child
// logger carrying it, one access-log line, and an observation in the request-duration histogram,
// labelled by route template so /api/objects/:id does not explode into one series per object.
import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { Histogram, type Registry } from 'prom-client';
import type { Logger } from '../../log.js';
import { errorAnswer } from '../errors.js';

const SANE_REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Probes, scrapes and load-balancer leader polls arrive several times a second; their access lines go to debug to keep logs readable. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/cluster/status']);

const histograms = new WeakMap<Registry, Histogram<'method' | 'route' | 'status'>>();

/** One histogram per registry: several apps in one process (tests) may share a registry. */
export function httpDurationHistogram(registry: Registry): Histogram<'method' | 'route' | 'status'> {
  let h = histograms.get(registry);
  if (!h) {
    h = new Histogram({
      name: 'stego_http_request_duration_seconds',
      help: 'HTTP request duration by method, route template and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    });
    histograms.set(registry, h);
  }
  return h;
}

export function requestContext(logger: Logger, registry: Registry): Middleware {
  const duration = httpDurationHistogram(registry);
  return async function trackRequest(ctx, next) {
    const started = process.hrtime.bigint();
    const given = ctx.get('X-Request-Id');
    const requestId = SANE_REQUEST_ID.test(given) ? given : randomUUID();
    ctx.state.requestId = requestId;
    // The child logger is made on first use: most requests log nothing at the level a loaded node runs
    // at, and a pino child serializes its bindings when created.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', {
      configurable: true,
      enumerable: true,
      get: () => (child ??= logger.child({ req: requestId })),
      set: (l: Logger) => void (child = l),
    });
    ctx.set('X-Request-Id', requestId);
    let status = 0;
    try {
      await next();
      status = ctx.status;
    } catch (e) {
      status = errorAnswer(e).status;
      throw e;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = typeof ctx._matchedRoute === 'string' ? ctx._matchedRoute : 'unmatched';
      duration.observe({ method: ctx.method, route, status: String(status) }, seconds);
      const level = QUIET_ROUTES.has(route) && status < 400 ? 'debug' : 'info';
      if (logger.isLevelEnabled(level)) {
        const line = { method: ctx.method, path: ctx.path, route, status, ms: Math.round(seconds * 1000) };
        (ctx.state.log as Logger)[level](line, 'request');
      }
    }
  };
}
