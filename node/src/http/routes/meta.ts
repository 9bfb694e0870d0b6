// Endpoints about the service itself: its API description and its metrics.
import { Router } from '@koa/router';
import type { Registry } from 'prom-client';
import { openapiDocument } from '../openapi.js';

export type MetricsSource = Pick<Registry, 'contentType' | 'metrics'>;

export function metaRouter(registry: MetricsSource): Router {
  const router = new Router();
  router.get('/openapi.json', (ctx) => {
    ctx.body = openapiDocument;
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}
