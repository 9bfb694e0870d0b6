// How `npm start`'s supervisor starts a node: its identity files in the data directory and the environment
// of one node process. Tests that stop a node and start it again themselves use the same environment, so
// the restarted node has the cluster's secrets and the API tokens file like the others.
import { join } from 'node:path';

export interface NodeSpec {
  id: string;
  httpPort: number;
  raftPort: number;
  dataDir: string;
}

export interface ClusterIdentity {
  secret: string;
  adminToken: string;
  /** Bearer token for the API (read, write, delete), written to api-tokens in the data directory. */
  apiToken?: string;
}

/** The cluster's secrets, kept in the data directory (mode 0600). */
export const IDENTITY_FILE = 'cluster.json';
/** The API tokens file the nodes read (STEGO_API_TOKENS_FILE), in the documented line format. */
export const API_TOKENS_FILE = 'api-tokens';
/** The id the generated token is stored under (quotas and idempotency keys are scoped by it). */
export const LOCAL_TOKEN_ID = 'local';

/** The environment of node `n`: `base` (the supervisor's, so STEGO_* settings pass through) plus its place in the cluster. */
export function localNodeEnv(n: NodeSpec, nodes: NodeSpec[], identity: ClusterIdentity, clusterDataDir: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return {
    ...base,
    NODE_ID: n.id,
    PEERS: nodes.map((p) => `${p.id}=127.0.0.1:${p.raftPort}`).join(','),
    HTTP_PORT: String(n.httpPort),
    RAFT_PORT: String(n.raftPort),
    HTTP_HOST: '127.0.0.1',
    RAFT_HOST: '127.0.0.1',
    DATA_DIR: n.dataDir,
    STEGO_CLUSTER_SECRET: identity.secret,
    STEGO_ADMIN_TOKEN: identity.adminToken,
    STEGO_API_TOKENS_FILE: base['STEGO_API_TOKENS_FILE'] || join(clusterDataDir, API_TOKENS_FILE),
  };
}
