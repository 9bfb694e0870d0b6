// Cluster introspection: /cluster/status (the design guide's shape plus progress), /readyz.
import { Router } from '@koa/router';
import type { ClusterService } from '../../cluster/service.js';
import { stegoHeaders } from './objects.js';

export function clusterRouter(service: ClusterService): Router {
  const router = new Router();
  router.use(stegoHeaders(service));

  router.get('/cluster/status', (ctx) => {
    ctx.body = service.node.status();
  });

  // 200 only when a leader is known and everything known committed is applied (what a load balancer
  // or a Kubernetes readiness probe should route on); 503 with the reason otherwise.
  router.get('/readyz', (ctx) => {
    const r = service.node.readiness();
    if (r.ready) {
      ctx.body = { status: 'ready', leader_id: service.node.leaderId, applied_index: service.node.appliedIndex };
      return;
    }
    ctx.status = 503;
    ctx.set('Retry-After', '1');
    ctx.body = { error: { code: 'not_ready', message: r.reason } };
  });

  return router;
}
