// The `gateway` front door: nginx run by the operator, configured by the same pure renderer as the local
// cluster (node/src/lb/nginx-config.ts). Writes go first to the leader Service, which follows the
// stego.io/role=leader label within about a second of an election, with every member as a backup (a
// follower forwards to the leader), so an election needs no new config. The config changes only when the
// members or their addresses do; its hash in the pod template then rolls the nginx pods one at a time.
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

export interface GatewayMember {
  id: string;
  /** Pod IP; members without one yet are left out. */
  podIP: string;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Depends on the members' addresses only: an election changes nothing here (writes follow the leader Service). */
export function renderGatewayConf(cr: StegoCluster, members: GatewayMember[], ctx: BuildContext): string {
  const c = ref(cr);
  const svcHost = (name: string): string => `${name}.${c.namespace}.svc.${ctx.clusterDomain}:${HTTP_PORT}`;
  const nodes: UpstreamNode[] = members.map((m) => ({ id: m.id, address: hostPort(m.podIP, HTTP_PORT) })).sort((a, b) => a.id.localeCompare(b.id));
  return renderNginxConf({
    prefix: NGINX_PREFIX,
    listen: GATEWAY_PORT,
    // before any member has an address, the client Service stands in for them
    nodes: nodes.length > 0 ? nodes : [{ id: 'client-service', address: svcHost(names.clientService(c)) }],
    leaderId: null,
    writePrimary: { id: 'leader-service', address: svcHost(names.leaderService(c)) },
    workerProcesses: 'auto',
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
      // a new config rolls in one pod at a time; the old pod finishes its requests (nginx -s quit)
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: commonLabels(c, 'gateway'), annotations: { [ANNOTATION_CONFIG_HASH]: configHash(conf) } },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 70,
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
              lifecycle: { preStop: { exec: { command: ['nginx', '-p', NGINX_PREFIX, '-c', `${NGINX_CONF_DIR}/${NGINX_CONF_KEY}`, '-s', 'quit'] } } },
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
