// The `gateway` front door: nginx run by the operator, configured by the same pure renderer as the local
// cluster (node/src/lb/nginx-config.ts). Writes go first to the leader Service, which follows the
// stego.io/role=leader label within about a second of an election, with every member as a backup (a
// follower forwards to the leader), so an election needs no new config. Members are named by their member
// Services (a virtual IP per member that outlives pod IPs), never by pod IP, so a member coming back with a
// new address needs no new config either: the file depends only on the cluster's name, namespace, spec and
// member count. It changes when the member count does; its hash in the pod template then rolls the nginx pods
// one at a time, and each old pod drains before it exits (see GATEWAY_PRESTOP).
import { createHash } from 'node:crypto';
import type { V1ConfigMap, V1Deployment, V1Service } from '@kubernetes/client-node';
import { renderNginxConf, type UpstreamNode } from '../../../node/src/lb/nginx-config.js';
import { GATEWAY_PORT, HTTP_PORT, commonLabels, names, selectorLabels } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref, toResources, type BuildContext } from './common.js';

export const NGINX_CONF_KEY = 'nginx.conf';
export const NGINX_CONF_DIR = '/etc/stego-nginx';
export const NGINX_PREFIX = '/tmp/nginx';
export const ANNOTATION_CONFIG_HASH = 'stego.io/config-hash';
const TEMP_DIRS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
/** uid of the nginx user in the unprivileged nginx images. */
export const NGINX_UID = 101;
/**
 * Seconds a terminating gateway pod keeps accepting connections before it stops listening: kube-proxy on
 * every node must first drop the pod from the gateway Service, or new connections routed to it are refused.
 */
export const GATEWAY_DRAIN_SECONDS = 5;

/**
 * The gateway pod's preStop: keep serving while the endpoint removal propagates, then quit gracefully (no
 * new connections, in-flight requests finish) and wait for the master to exit, so the stop signal the kubelet
 * sends afterwards (SIGTERM, which nginx takes as "fast shutdown") finds nothing left to cut off. Needs a
 * POSIX shell in the image (the upstream nginx images and the local one have one).
 */
export const GATEWAY_PRESTOP = [
  'sh',
  '-c',
  `sleep ${GATEWAY_DRAIN_SECONDS}; nginx -p ${NGINX_PREFIX} -c ${NGINX_CONF_DIR}/${NGINX_CONF_KEY} -s quit; ` +
    `while [ -e ${NGINX_PREFIX}/nginx.pid ]; do sleep 0.2; done`,
];

/**
 * How many members the gateway names: enough for the desired and the running StatefulSet, so a scale in
 * either direction changes the config once (a member Service without a ready pod refuses at once and nginx
 * moves on to the next member).
 */
export function gatewayMemberCount(cr: StegoCluster, statefulSetReplicas: number | undefined): number {
  return Math.max(1, cr.spec.replicas, statefulSetReplicas ?? 0);
}

/** Depends on the member count only: neither an election nor a member's new pod IP changes it. */
export function renderGatewayConf(cr: StegoCluster, memberCount: number, ctx: BuildContext): string {
  const c = ref(cr);
  const svcHost = (name: string): string => `${name}.${c.namespace}.svc.${ctx.clusterDomain}:${HTTP_PORT}`;
  const nodes: UpstreamNode[] = Array.from({ length: Math.max(1, memberCount) }, (_, i) => ({
    id: names.pod(c, i),
    address: svcHost(names.memberService(c, i)),
  }));
  return renderNginxConf({
    prefix: NGINX_PREFIX,
    listen: GATEWAY_PORT,
    nodes,
    leaderId: null,
    writePrimary: { id: 'leader-service', address: svcHost(names.leaderService(c)) },
    workerProcesses: 'auto',
    // No per-address limits here: behind a NodePort or LoadBalancer Service (externalTrafficPolicy
    // Cluster) nginx sees node addresses, so every client behind a node would share one address's limit
    // and a busy cluster's whole write rate would be capped at it. The nodes' per-token rate limits apply.
    clientWritesPerSecond: 0,
    clientWritesInFlight: 0,
    clientLargeUploadsPerSecond: 0,
  });
}

export function gatewayConfigMap(cr: StegoCluster, conf: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(cr, names.gatewayConfigMap(ref(cr)), 'gateway'),
    data: { [NGINX_CONF_KEY]: conf },
  };
}

export function configHash(conf: string): string {
  return createHash('sha256').update(conf).digest('hex').slice(0, 16);
}

export function gatewayDeployment(cr: StegoCluster, conf: string): V1Deployment {
  const c = ref(cr);
  const g = cr.spec.frontDoor.gateway;
  const probe = { httpGet: { path: '/nginx_status', port: 'http' }, periodSeconds: 5, timeoutSeconds: 2 };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: ownedMeta(cr, names.gateway(c), 'gateway'),
    spec: {
      replicas: g.replicas,
      selector: { matchLabels: selectorLabels(c, 'gateway') },
      // a new config (a new member count) rolls in one pod at a time; the old pod drains (GATEWAY_PRESTOP)
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: commonLabels(c, 'gateway'), annotations: { [ANNOTATION_CONFIG_HASH]: configHash(conf) } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // the drain, then the longest request (proxy timeouts of 60 s) may finish
          terminationGracePeriodSeconds: GATEWAY_DRAIN_SECONDS + 65,
          securityContext: { runAsNonRoot: true, runAsUser: NGINX_UID, runAsGroup: NGINX_UID, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'nginx',
              image: g.image,
              imagePullPolicy: g.imagePullPolicy,
              command: ['nginx', '-p', NGINX_PREFIX, '-c', `${NGINX_CONF_DIR}/${NGINX_CONF_KEY}`, '-g', 'daemon off; error_log stderr warn;'],
              ports: [{ name: 'http', containerPort: GATEWAY_PORT, protocol: 'TCP' }],
              ...toResources(g.resources),
              readinessProbe: probe,
              livenessProbe: { ...probe, periodSeconds: 10, failureThreshold: 3 },
              lifecycle: { preStop: { exec: { command: GATEWAY_PRESTOP } } },
              volumeMounts: [
                { name: 'config', mountPath: NGINX_CONF_DIR, readOnly: true },
                { name: 'run', mountPath: NGINX_PREFIX },
                // nginx creates no parent directories for its temp paths: subPath mounts make them exist
                ...TEMP_DIRS.map((d) => ({ name: 'run', mountPath: `${NGINX_PREFIX}/tmp/${d}`, subPath: `tmp/${d}` })),
              ],
              securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: names.gatewayConfigMap(c) } },
            { name: 'run', emptyDir: {} },
          ],
        },
      },
    },
  };
}

export function gatewayService(cr: StegoCluster): V1Service {
  const c = ref(cr);
  const g = cr.spec.frontDoor.gateway;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cr, names.gateway(c), 'gateway'),
    spec: {
      type: g.serviceType,
      selector: selectorLabels(c, 'gateway'),
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', ...(g.nodePort ? { nodePort: g.nodePort } : {}) }],
    },
  };
}
