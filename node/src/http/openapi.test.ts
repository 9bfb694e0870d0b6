import { expect } from 'chai';
import { Router } from '@koa/router';
import { silentLogger } from '../log.js';
import { createRegistry } from '../metrics/registry.js';
import { StegoPool } from '../workers/stego-pool.js';
import { createApp, routersOf } from './app.js';
import { httpConfig } from './http-config.js';
import { openapiDocument, undocumentedRoutes } from './openapi.js';
import type { ClusterService } from '../cluster/service.js';
import { objectsRouter } from './routes/objects.js';
import { clusterRouter } from './routes/cluster.js';
import { adminRouter } from './routes/admin.js';

let pool: StegoPool;

function appWith(extra: Router[] = []) {
  return createApp({ pool, config: httpConfig(), logger: silentLogger(), registry: createRegistry({ defaultMetrics: false }), extraRouters: extra });
}

describe('OpenAPI document', () => {
  before(() => {
    pool = new StegoPool({ size: 1 });
  });
  after(() => pool.close());

  it('describes every route the app serves', () => {
    expect(undocumentedRoutes(routersOf(appWith()))).to.deep.equal([]);
  });

  it('describes every route of the cluster layer (objects, cluster status, admin)', () => {
    // Only the route tables are read: the service is never called while listing routes.
    const service = { id: 'n1' } as unknown as ClusterService;
    const cluster = [objectsRouter({ service, pool, config: httpConfig() }), clusterRouter(service), adminRouter(service, 'token')];
    expect(undocumentedRoutes(routersOf(appWith(cluster)))).to.deep.equal([]);
  });

  it('notices a route it does not describe', () => {
    const extra = new Router();
    extra.get('/api/things/:id', (ctx) => {
      ctx.body = {};
    });
    expect(undocumentedRoutes(routersOf(appWith([extra])))).to.deep.equal(['GET /api/things/:id']);
  });

  it('is OpenAPI 3 with a shared error schema used by every error response', () => {
    const doc = openapiDocument as unknown as {
      openapi: string;
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>>;
    };
    expect(doc.openapi).to.match(/^3\.\d+\.\d+$/);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (method === 'parameters') continue;
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) < 400) continue;
          expect(response.content?.['application/json']?.schema.$ref, `${method} ${path} ${status}`).to.equal('#/components/schemas/Error');
        }
      }
    }
  });
});
