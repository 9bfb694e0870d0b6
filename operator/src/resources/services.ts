// The Services of the members: headless (peer discovery, before anyone is ready), client (every serving
// member), leader (the pod labelled stego.io/role=leader; writes go there first) and one per member (a
// virtual IP that stays the same when the pod comes back with a new address, so the nginx gateway can name
// each member in its upstreams without ever being reconfigured for an address change).
import type { V1Service } from '@kubernetes/client-node';
import { HTTP_PORT, LABEL_POD_NAME, LABEL_ROLE, RAFT_PORT, ROLE_LEADER, names, selectorLabels } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref } from './common.js';

export const LABEL_SERVICE = 'stego.io/service';

const httpPort = { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' };

export function headlessService(cr: StegoCluster): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cr, names.headlessService(ref(cr)), 'node', { [LABEL_SERVICE]: 'peers' }),
    spec: {
      clusterIP: 'None',
      // Members must resolve each other while none is ready: readiness needs a leader, which needs peers.
      publishNotReadyAddresses: true,
      selector: selectorLabels(ref(cr)),
      ports: [httpPort, { name: 'raft', port: RAFT_PORT, targetPort: 'raft', protocol: 'TCP' }],
    },
  };
}

export function clientService(cr: StegoCluster): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cr, names.clientService(ref(cr)), 'node', { [LABEL_SERVICE]: 'client' }),
    spec: { type: 'ClusterIP', selector: selectorLabels(ref(cr)), ports: [httpPort] },
  };
}

export function leaderService(cr: StegoCluster): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cr, names.leaderService(ref(cr)), 'node', { [LABEL_SERVICE]: 'leader' }),
    spec: { type: 'ClusterIP', selector: { ...selectorLabels(ref(cr)), [LABEL_ROLE]: ROLE_LEADER }, ports: [httpPort] },
  };
}

/**
 * The Service of member `ordinal`: its endpoint is the pod while the pod is ready, and none otherwise, so a
 * connection to a member that is down or restarting is refused at once (kube-proxy rejects connections to a
 * Service without endpoints) instead of waiting out a connect timeout on a vanished pod IP.
 */
export function memberService(cr: StegoCluster, ordinal: number): V1Service {
  const c = ref(cr);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cr, names.memberService(c, ordinal), 'node', { [LABEL_SERVICE]: 'member' }),
    spec: { type: 'ClusterIP', selector: { ...selectorLabels(c), [LABEL_POD_NAME]: names.pod(c, ordinal) }, ports: [httpPort] },
  };
}
