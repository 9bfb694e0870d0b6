// Keeps the OpenAPI document honest: lists the routes of an app's routers (app.ts's routersOf) that the
// document does not describe. The app's test calls it for the built-in routes; the cluster's test can call
// it with its extra routers mounted. Takes the routers, not the app, so that this module (which
// routes/meta.ts serves) does not import app.ts, which mounts routes/meta.ts.
import type { Router } from '@koa/router';
// tsc copies an imported JSON file into dist/, so the document kept in the repo is what gets served.
import openapi from './openapi.json' with { type: 'json' };

export interface OpenApiDocument {
  paths: Record<string, Record<string, unknown>>;
}

export const openapiDocument: OpenApiDocument = openapi as OpenApiDocument;

/** Koa-router path syntax to OpenAPI's: /api/objects/:id → /api/objects/{id}. */
export function toOpenApiPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}');
}

/** Every "METHOD /path" served by `routers` with no operation in `doc` (HEAD is implied by GET). */
export function undocumentedRoutes(routers: readonly Router[], doc: OpenApiDocument = openapiDocument): string[] {
  const missing: string[] = [];
  for (const router of routers) {
    for (const layer of router.stack) {
      if (typeof layer.path !== 'string' || layer.methods.length === 0) continue;
      const path = toOpenApiPath(layer.path);
      for (const method of layer.methods.map((m) => m.toLowerCase())) {
        if (method === 'head' && layer.methods.includes('GET')) continue;
        if (!doc.paths[path]?.[method]) missing.push(`${method.toUpperCase()} ${layer.path}`);
      }
    }
  }
  return missing;
}
