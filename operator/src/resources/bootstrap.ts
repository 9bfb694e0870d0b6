// The bootstrap ConfigMap: while the initial members form a cluster it lists them (PEERS); afterwards it is
// empty, and a member pod starting with no data joins as a new member (STEGO_JOIN=1) to be added by the
// operator, instead of bootstrapping a second cluster. A file, not an env var, so changing it restarts no pod.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { names, raftAddress } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref, type BuildContext } from './common.js';

export const BOOTSTRAP_PEERS_KEY = 'peers';

export function initialPeers(cr: StegoCluster, count: number, ctx: BuildContext): string {
  const c = ref(cr);
  return Array.from({ length: count }, (_, i) => `${names.pod(c, i)}=${raftAddress(c, i, ctx.clusterDomain)}`).join(',');
}

export function bootstrapConfigMap(cr: StegoCluster, initialMembers: number, ctx: BuildContext): V1ConfigMap {
  const peers = cr.status?.bootstrapped ? '' : initialPeers(cr, initialMembers, ctx);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: ownedMeta(cr, names.bootstrapConfigMap(ref(cr)), 'node'),
    data: { [BOOTSTRAP_PEERS_KEY]: peers },
  };
}
