// What /cluster/status shows: this node's view of the cluster, taken at one instant from one state.
import type { RoleName } from '../metrics/raft.js';
import type { NodeId } from '../raft/types.js';

export interface NodeStatusView {
  id: NodeId;
  role: RoleName;
  healthy: boolean;
  voter: boolean;
  match_index?: number;
  next_index?: number;
  last_contact_ms?: number;
  raft_address: string | null;
}

export interface ClusterStatusView {
  node_id: NodeId;
  term: number;
  leader_id: NodeId | null;
  commit_index: number;
  applied_index: number;
  last_index: number;
  snapshot_index: number;
  /** Why the durable log or the object files failed, if they did. */
  storage_failed: string | null;
  /** Why the node halted for good — a storage failure or an internal one — as `code: message`, if it did. */
  halted: string | null;
  removed: boolean;
  nodes: NodeStatusView[];
}

