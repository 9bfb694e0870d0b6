// The generated credentials: the Raft link secret and the admin token. Created once and never rewritten
// (a new secret would cut every member off from its peers), so the builder takes the random source.
import type { V1Secret } from '@kubernetes/client-node';
import { names } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref } from './common.js';

export const SECRET_KEY_CLUSTER = 'cluster-secret';
export const SECRET_KEY_ADMIN = 'admin-token';

export function credentialsSecret(cr: StegoCluster, randomToken: () => string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: ownedMeta(cr, names.credentialsSecret(ref(cr)), 'node'),
    type: 'Opaque',
    stringData: { [SECRET_KEY_CLUSTER]: randomToken(), [SECRET_KEY_ADMIN]: randomToken() },
  };
}
