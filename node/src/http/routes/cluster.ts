// Cluster introspection: /cluster/status (the design guide's shape plus progress), /readyz.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Router } from '@koa/router';
import type { ClusterApi } from '../../cluster/api.js';
import { stegoHeaders } from './objects.js';

export function clusterRouter(service: ClusterApi): Router {
  const router = new Router();
  router.use(stegoHeaders(service));

  router.get('/cluster/status', async (ctx) => {
    ctx.body = await service.status();
  });

  // 200 only when a leader is known and everything known committed is applied (what a load balancer
  // or a Kubernetes readiness probe should route on); 503 with the reason otherwise.
  router.get('/readyz', async (ctx) => {
    const r = await service.readiness();
    if (r.ready) {
      ctx.body = { status: 'ready', leader_id: r.leader_id, applied_index: r.applied_index };
      return;
    }
    ctx.status = 503;
    ctx.set('Retry-After', '1');
    ctx.body = { error: { code: 'not_ready', message: r.reason } };
  });

  return router;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Wraps the Koa app's request listener: every response names the answering node and the leader it knows,
 * and after a storage failure GET /healthz answers 503 in front of the app (whose /healthz only knows the
 * process is up). Liveness then follows the disk: the node stepped down for good and only a restart
 * (crash-only recovery) brings it back, which is exactly what a failing liveness probe asks for.
 */
export function clusterFront(node: Pick<ClusterApi, 'id' | 'leaderId' | 'haltCause'>, app: Listener): Listener {
  return (req, res) => {
    res.setHeader('X-Stego-Node', node.id);
    res.setHeader('X-Stego-Leader', node.leaderId ?? '');
    const failure = node.haltCause;
    if (failure && req.method === 'GET' && (req.url === '/healthz' || req.url?.startsWith('/healthz?') === true)) {
      res.writeHead(503, { 'Content-Type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ error: { code: failure.code, message: `halted (${failure.code}): ${failure.message}` } }));
      return;
    }
    app(req, res);
  };
}
