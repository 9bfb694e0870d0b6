// Endpoints about the service itself: its API description and its metrics.
import { Router } from '@koa/router';
import type { Registry } from 'prom-client';
// tsc copies an imported JSON file into dist/, so the document kept in the repo is what gets served.
import openapi from '../openapi.json' with { type: 'json' };

export const openapiDocument: unknown = openapi;

export function metaRouter(registry: Registry): Router {
  const router = new Router();
  router.get('/openapi.json', (ctx) => {
    ctx.body = openapi;
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });
  return router;
}
