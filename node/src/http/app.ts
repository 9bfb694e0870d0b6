// The node's Koa application: middleware wiring only. Order matters and each piece has one job:
//   1. errorHandler    – every failure becomes {"error":{"code","message"}} with its status
//   2. requestContext  – request id, child logger, access log, request-duration histogram
//   3. bodyLimit       – refuse an over-limit Content-Length before reading it
//   4. identify        – bearer token (401 if wrong) and its rate limit (429)
//   5. bodyBudget      – reserve the body's bytes in the node's budget before reading it (503 if full),
//                        body and response timeouts
//   6. routers         – stego + meta routes, then the cluster's routers (extraRouters)
import Koa from 'koa';
import type { Router } from '@koa/router';
import type { Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { StegoPool } from '../workers/stego-pool.js';
import type { HttpConfig } from './http-config.js';
import { ApiError } from './errors.js';
import { errorHandler } from './middleware/error-handler.js';
import { requestContext } from './middleware/request-context.js';
import { bodyLimit } from './middleware/body-limit.js';
import { stegoRouter } from './routes/stego.js';
import type { StegoMetrics } from '../metrics/stego.js';
import { identify } from '../auth/middleware.js';
import { TokenRegistry } from '../auth/tokens.js';
import { Gauge } from 'prom-client';
import { bodyBudget, ByteBudget } from './middleware/body-budget.js';
import { metaRouter, type MetricsSource } from './routes/meta.js';

export interface AppDeps {
  pool: StegoPool;
  config: HttpConfig;
  logger: Logger;
  registry: Registry;
  /** What /metrics serves; `registry` when absent (the node adds its consensus thread's metrics). */
  metrics?: MetricsSource;
  /** Routers mounted after the built-in ones (cluster status, objects, admin). */
  extraRouters?: Router[];
  /** API tokens (none: object routes answer 401; stateless routes stay open unless statelessAuth is 'token'). */
  tokens?: TokenRegistry;
  /** The node's byte budget for bodies in flight (created from config when absent). */
  budget?: ByteBudget;
  /** Payload and carrier bytes of successful stego jobs. */
  stegoMetrics?: StegoMetrics;
}

const budgets = new WeakMap<Koa, ByteBudget>();

/** The byte budget an app admits bodies against (tests, metrics). */
export function budgetOf(app: Koa): ByteBudget | undefined {
  return budgets.get(app);
}

const notAllowed = (): ApiError => new ApiError('method_not_allowed', 405, 'method not allowed on this path');
// A method no route implements is still a method this path does not allow: 405, like any other.
const notImplemented = notAllowed;

const routersOfApp = new WeakMap<Koa, Router[]>();

/** Every router mounted in `app`, for tests that compare the routes with the OpenAPI document. */
export function routersOf(app: Koa): Router[] {
  return routersOfApp.get(app) ?? [];
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  // Errors are logged once, by the error middleware; Koa's default handler would print them again.
  app.silent = true;
  app.use(errorHandler(deps.logger));
  app.use(requestContext(deps.logger, deps.registry));
  app.use(bodyLimit(deps.config.bodyLimitBytes));
  app.use(identify(deps.tokens ?? new TokenRegistry([])));
  const budget = deps.budget ?? new ByteBudget(deps.config.inflightBudgetBytes);
  budgets.set(app, budget);
  registerBudgetGauge(deps.registry, budget);
  app.use(bodyBudget({ budget, ...deps.config }));
  const routers = [stegoRouter({ pool: deps.pool, config: deps.config, ...(deps.stegoMetrics ? { metrics: deps.stegoMetrics } : {}) }), metaRouter(deps.metrics ?? deps.registry), ...(deps.extraRouters ?? [])];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods({ throw: true, methodNotAllowed: notAllowed, notImplemented }));
  }
  routersOfApp.set(app, routers);
  return app;
}

function registerBudgetGauge(registry: Registry, budget: ByteBudget): void {
  if (registry.getSingleMetric('stego_http_body_bytes_in_flight')) return;
  new Gauge({
    name: 'stego_http_body_bytes_in_flight',
    help: 'Request and response body bytes reserved in the node budget (STEGO_INFLIGHT_BODY_BYTES)',
    registers: [registry],
    collect() {
      this.set(budget.inUse);
    },
  });
}
