// The one retry policy for requests that must run on the leader (replicated writes, membership and
// leadership operations): an attempt goes to the leader known now; when it fails in a way a new attempt
// against another leader may not meet, the next attempt starts as soon as a different leader is known,
// or after a short pause that grows with each attempt (the same leader may answer next time, e.g. after
// a dropped link), until the caller's deadline. Every other failure is final.
import type { NodeId } from '../raft/types.js';
import { RemoteError, TransportError } from '../transport/errors.js';
import { ClusterError, isClusterErrorCode } from './errors.js';

/** Failures of one attempt that a new attempt, against the leader known then, may not meet. */
export const RETRY_AGAINST_NEW_LEADER: ReadonlySet<string> = new Set(['no_leader', 'proposal_lost', 'link_down', 'link_lost', 'not_leader']);

/** What the policy needs to know about the local node (RaftNode has all of it). */
export interface LeaderView {
  readonly leaderId: NodeId | null;
  assertServing(): void;
  /** Resolves when a leader is known, or rejects with no_leader after `ms`. */
  waitForLeader(ms: number): Promise<NodeId>;
  /** Resolves once a leader other than `previous` is known, or after `ms`. */
  waitForLeaderChange(previous: NodeId | null, ms: number): Promise<void>;
  /** How long an attempt waits for an election before giving up with no_leader. */
  leaderWaitMs(): number;
}

/** The longest pause before retrying against the same leader, after `attempt` (0-based) failed attempts. */
export function retryPauseMs(attempt: number): number {
  return Math.min(100, 10 * (attempt + 1));
}

/** Time that must be left before the deadline for another attempt to be worth starting. */
const MIN_ATTEMPT_MS = 20;

/**
 * Runs `attempt(leader, leftMs)` against the leader known at each try, retrying as described above until
 * `deadline` (epoch ms). The error of the last attempt is thrown as a ClusterError where it has a
 * cluster meaning (a remote cluster error keeps its code; an unreachable leader is no_leader or timeout).
 */
export async function onLeader<T>(
  node: LeaderView,
  deadline: number,
  attempt: (leader: NodeId, leftMs: number) => Promise<T>,
  onRetry?: (attempt: number, code: string, err: Error) => void,
): Promise<T> {
  for (let n = 0; ; n++) {
    node.assertServing();
    // waiting for an election is bounded on its own: with no leader in sight, answer 503 promptly
    const leader = node.leaderId ?? (await node.waitForLeader(node.leaderWaitMs()));
    try {
      return await attempt(leader, Math.max(1, deadline - Date.now()));
    } catch (e) {
      const err = fromRemote(e);
      const code = (err as { code?: string }).code ?? '';
      if (!RETRY_AGAINST_NEW_LEADER.has(code) || Date.now() > deadline - MIN_ATTEMPT_MS) throw asClusterError(err);
      onRetry?.(n, code, err);
      await node.waitForLeaderChange(leader, Math.min(retryPauseMs(n), Math.max(1, deadline - Date.now())));
    }
  }
}

/** A remote cluster error keeps its code on this side of the link. */
function fromRemote(e: unknown): Error {
  if (e instanceof RemoteError && isClusterErrorCode(e.code)) return new ClusterError(e.code, e.message);
  return e as Error;
}

function asClusterError(e: Error): Error {
  if (e instanceof ClusterError) return e;
  if (e instanceof TransportError) {
    return new ClusterError(e.code === 'timeout' ? 'timeout' : 'no_leader', `the leader could not be reached: ${e.message}`);
  }
  if (e instanceof RemoteError) return new ClusterError('unavailable', `the leader refused: ${e.code}: ${e.message}`);
  return e;
}
