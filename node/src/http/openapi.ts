// Keeps the OpenAPI document honest: lists the routes mounted in an app that the document does not
// describe. The app's test calls it for the built-in routes; the cluster's test can call it with its
// extra routers mounted.
import type Koa from 'koa';
import { routersOf } from './app.js';
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

/** Every "METHOD /path" served by `app` with no operation in `doc` (HEAD is implied by GET). */
export function undocumentedRoutes(app: Koa, doc: OpenApiDocument = openapiDocument): string[] {
  const missing: string[] = [];
  for (const router of routersOf(app)) {
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
