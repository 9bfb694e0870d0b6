// The `httpRoute` and `ingress` front doors, for clusters that already run a Gateway API implementation or
// an Ingress controller: object writes (and /admin) to the leader Service, everything else to the client
// Service.
import type { V1Ingress, V1IngressRule } from '@kubernetes/client-node';
import { HTTP_PORT, names } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref } from './common.js';

export const HTTPROUTE_API = 'gateway.networking.k8s.io/v1';
const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'] as const;

export interface HTTPRoute {
  apiVersion: typeof HTTPROUTE_API;
  kind: 'HTTPRoute';
  metadata: ReturnType<typeof ownedMeta>;
  spec: Record<string, unknown>;
}

export function httpRoute(cr: StegoCluster): HTTPRoute {
  const c = ref(cr);
  const spec = cr.spec.frontDoor.httpRoute;
  if (!spec || spec.parentRefs.length === 0) throw new Error('frontDoor.httpRoute.parentRefs is required in mode httpRoute');
  const backend = (name: string): Record<string, unknown>[] => [{ name, port: HTTP_PORT }];
  return {
    apiVersion: HTTPROUTE_API,
    kind: 'HTTPRoute',
    metadata: ownedMeta(cr, names.httpRoute(c), 'gateway'),
    spec: {
      parentRefs: spec.parentRefs.map((p) => ({ group: 'gateway.networking.k8s.io', kind: 'Gateway', ...p })),
      ...(spec.hostnames?.length ? { hostnames: spec.hostnames } : {}),
      rules: [
        {
          matches: [
            ...WRITE_METHODS.map((method) => ({ path: { type: 'PathPrefix', value: '/api/objects' }, method })),
            { path: { type: 'PathPrefix', value: '/admin' } },
          ],
          backendRefs: backend(names.leaderService(c)),
        },
        { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: backend(names.clientService(c)) },
      ],
    },
  };
}

/** Body-size annotations both NGINX Ingress flavours read; the user's annotations win. */
export const DEFAULT_INGRESS_ANNOTATIONS: Record<string, string> = {
  'nginx.org/client-max-body-size': '50m',
  'nginx.ingress.kubernetes.io/proxy-body-size': '50m',
};

export function ingress(cr: StegoCluster): V1Ingress {
  const c = ref(cr);
  const spec = cr.spec.frontDoor.ingress ?? {};
  const backend = (name: string): V1IngressRule['http'] extends infer _ ? { service: { name: string; port: { number: number } } } : never => ({
    service: { name, port: { number: HTTP_PORT } },
  });
  // An Ingress cannot match on method: all of /api/objects goes to the leader (its reads are linearizable,
  // served through the leader anyway).
  const rule: V1IngressRule = {
    ...(spec.host ? { host: spec.host } : {}),
    http: {
      paths: [
        { path: '/api/objects', pathType: 'Prefix', backend: backend(names.leaderService(c)) },
        { path: '/admin', pathType: 'Prefix', backend: backend(names.leaderService(c)) },
        { path: '/', pathType: 'Prefix', backend: backend(names.clientService(c)) },
      ],
    },
  };
  const meta = ownedMeta(cr, names.ingress(c), 'gateway');
  meta.annotations = { ...DEFAULT_INGRESS_ANNOTATIONS, ...(spec.annotations ?? {}) };
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: meta,
    spec: {
      ...(spec.className ? { ingressClassName: spec.className } : {}),
      ...(spec.tls ? { tls: [{ secretName: spec.tls.secretName, ...(spec.host ? { hosts: [spec.host] } : {}) }] } : {}),
      rules: [rule],
    },
  };
}
