// Membership changes, one at a time (Raft thesis §4.1 single-server changes, applied etcd-style: a change
// takes effect when its entry is applied, and the leader refuses a new one while one is unapplied).
// New members join as learners (they replicate but neither vote nor count toward quorum) and are promoted
// once caught up, so adding a member never weakens availability while it copies the log.
import { ConfChangeError } from './errors.js';
import type { ConfState, NodeId } from './types.js';

/**
 * `addVoter` only appears in the bootstrap entries a brand-new cluster writes at indexes 1..n (so that
 * a member joining later learns the initial membership from the log); proposeConfChange refuses it.
 */
export type ConfChangeType = 'addLearner' | 'promote' | 'removeNode' | 'addVoter';

export interface ConfChange {
  type: ConfChangeType;
  node: NodeId;
}

const TYPES: readonly ConfChangeType[] = ['addLearner', 'promote', 'removeNode', 'addVoter'];

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ type: cc.type, node: cc.node }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ConfChangeError('conf change entry is not valid JSON');
  }
  const o = parsed as { type?: unknown; node?: unknown };
  if (typeof o !== 'object' || o === null || !TYPES.includes(o.type as ConfChangeType) || typeof o.node !== 'string' || o.node === '') {
    throw new ConfChangeError('conf change entry has an invalid shape');
  }
  return { type: o.type as ConfChangeType, node: o.node };
}

/** Why `cc` cannot be applied to `conf`, or null if it can. */
export function confChangeProblem(conf: ConfState, cc: ConfChange): string | null {
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case 'addVoter':
      return isVoter ? `${cc.node} is already a voter` : null;
    case 'addLearner':
      if (isVoter) return `${cc.node} is already a voter`;
      if (isLearner) return `${cc.node} is already a learner`;
      return null;
    case 'promote':
      if (isVoter) return `${cc.node} is already a voter`;
      if (!isLearner) return `${cc.node} is not a learner of this cluster`;
      return null;
    case 'removeNode':
      if (!isVoter && !isLearner) return `${cc.node} is not a member of this cluster`;
      if (isVoter && conf.voters.length === 1) return `cannot remove the last voter ${cc.node}`;
      return null;
  }
}

/** The configuration after `cc`; an inapplicable change leaves it unchanged (every node decides the same). */
export function applyToConf(conf: ConfState, cc: ConfChange): ConfState {
  if (confChangeProblem(conf, cc) !== null) return { voters: [...conf.voters], learners: [...conf.learners] };
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  if (cc.type === 'addLearner') learners.push(cc.node);
  if (cc.type === 'promote' || cc.type === 'addVoter') voters.push(cc.node);
  return { voters: voters.sort(), learners: learners.sort() };
}
