// The StegoCluster status as a pure function of one reconcile pass: counts, leader, members, conditions,
// phase. observedGeneration moves only after a pass without errors.
import { findCondition, setCondition } from '../api/conditions.js';
import { selectorLabels, selectorString, refOf } from '../api/names.js';
import type { Phase, StegoCluster, StegoClusterStatus } from '../api/types.js';
import type { ClusterView } from './observe.js';
import { quorum, type Action } from './scale-planner.js';

export interface PassResult {
  view: ClusterView;
  action: Action;
  bootstrapped: boolean;
  /** Member pods that exist (all of them before the cluster formed). */
  podCount: number;
  volumes: Record<string, string>;
  frontDoor: { ready: boolean; reason: string; message: string };
  error: string | null;
}

export const QUORUM_RECOVERY_DOC = 'docs/operator.md#recovering-from-quorum-loss';

function lastVoters(cr: StegoCluster, view: ClusterView): number {
  const members = view.members ?? cr.status?.members ?? [];
  return members.filter((m) => m.membership === 'voter').length;
}

/**
 * How long a formed cluster may go without a leader, with fewer than a quorum of voters answering, before
 * QuorumLost is raised. One pass is not enough evidence: when a drain evicts the leader, the survivors
 * spend an election (150–300 ms) and the evicted pod's restart without a leader, and a survivor busy with
 * that election can miss one probe. A real loss of quorum lasts until a human acts, so waiting a few
 * reconcile passes (a wait requeues every 2 s) costs nothing and keeps the Warning Event for real losses.
 */
export const QUORUM_LOSS_GRACE_MS = 10_000;

/** When the cluster was last seen with a leader ended: the LeaderElected=False transition, or now. */
function leaderlessSince(cr: StegoCluster, now: Date): number {
  const c = findCondition(cr.status?.conditions, 'LeaderElected');
  if (!c || c.status !== 'False') return now.getTime();
  const t = Date.parse(c.lastTransitionTime);
  return Number.isFinite(t) ? t : now.getTime();
}

function quorumLost(cr: StegoCluster, r: PassResult, now: Date): { lost: boolean; message: string } {
  if (!r.bootstrapped || r.view.leader) return { lost: false, message: r.view.leader ? 'a leader is elected' : 'cluster not formed yet' };
  const voters = lastVoters(cr, r.view);
  const answering = r.view.reports.size;
  if (voters === 0 || answering >= quorum(voters)) return { lost: false, message: `no leader yet, ${answering} of ${voters} members answer: election in progress` };
  const short = `only ${answering} of ${voters} members answer (quorum ${quorum(voters)})`;
  if (now.getTime() - leaderlessSince(cr, now) < QUORUM_LOSS_GRACE_MS) {
    return { lost: false, message: `no leader and ${short}; quorum counts as lost if this lasts ${QUORUM_LOSS_GRACE_MS / 1000} s` };
  }
  return {
    lost: true,
    message: `${short}; writes are refused until enough members return. The operator will not re-bootstrap: see ${QUORUM_RECOVERY_DOC}`,
  };
}

function phaseOf(r: PassResult, lost: boolean, degraded: boolean): { phase: Phase; reason: string } {
  if (lost) return { phase: 'QuorumLost', reason: 'too few members answer to elect a leader' };
  if (!r.bootstrapped) return { phase: 'Creating', reason: r.action.type === 'wait' ? r.action.reason : 'creating the initial members' };
  if (r.action.type !== 'none' && r.action.type !== 'wait') return { phase: 'Scaling', reason: r.action.reason };
  if (r.action.type === 'wait' && r.view.leader) return { phase: 'Scaling', reason: r.action.reason };
  if (degraded || r.error) return { phase: 'Degraded', reason: r.error ?? 'some members are not healthy or not ready' };
  return { phase: 'Healthy', reason: 'all members healthy' };
}

export function computeStatus(cr: StegoCluster, r: PassResult, now: Date): StegoClusterStatus {
  const gen = cr.metadata.generation ?? 0;
  const prev = cr.status ?? {};
  const v = r.view;
  const members = v.members ?? prev.members ?? [];
  const memberIds = new Set(members.map((m) => m.id));
  const readyReplicas = [...v.ready].filter((p) => memberIds.has(p) || !r.bootstrapped).length;
  const unhealthy = (v.members ?? []).filter((m) => !m.healthy).map((m) => m.id);
  const voters = members.filter((m) => m.membership === 'voter').length;
  const { lost, message: quorumMessage } = quorumLost(cr, r, now);
  const degraded = unhealthy.length > 0 || (v.members !== null && readyReplicas < members.length);
  const available = v.leader !== null && readyReplicas >= quorum(Math.max(1, voters));
  const even = cr.spec.replicas % 2 === 0 ? ` Note: ${cr.spec.replicas} members tolerate no more failures than ${cr.spec.replicas - 1}.` : '';
  const moving = r.action.type !== 'none';

  let c = prev.conditions ?? [];
  c = setCondition(c, v.leader ? { type: 'LeaderElected', status: 'True', reason: 'LeaderElected', message: `${v.leader} leads at term ${v.term}` } : { type: 'LeaderElected', status: 'False', reason: 'NoLeader', message: 'no member reports itself leader' }, gen, now);
  c = setCondition(c, { type: 'QuorumLost', status: lost ? 'True' : 'False', reason: lost ? 'QuorumLost' : 'QuorumHeld', message: quorumMessage }, gen, now);
  c = setCondition(c, available
    ? { type: 'Available', status: 'True', reason: 'Serving', message: `${readyReplicas} of ${members.length} members ready, leader ${v.leader}.${even}` }
    : { type: 'Available', status: 'False', reason: v.leader ? 'TooFewReady' : 'NoLeader', message: `${readyReplicas} members ready; need a leader and ${quorum(Math.max(1, voters))} ready.${even}` }, gen, now);
  c = setCondition(c, moving
    ? { type: 'Progressing', status: 'True', reason: actionReason(r.action), message: 'reason' in r.action ? r.action.reason : '' }
    : { type: 'Progressing', status: 'False', reason: 'Converged', message: `${members.length} members, as desired` }, gen, now);
  c = setCondition(c, degraded || r.error
    ? { type: 'Degraded', status: 'True', reason: r.error ? 'ReconcileError' : 'MembersUnhealthy', message: r.error ?? `unhealthy: ${unhealthy.join(', ') || 'none'}; ready ${readyReplicas} of ${members.length}` }
    : { type: 'Degraded', status: 'False', reason: 'AllHealthy', message: 'every member healthy and ready' }, gen, now);
  c = setCondition(c, { type: 'FrontDoorReady', status: r.frontDoor.ready ? 'True' : 'False', reason: r.frontDoor.reason, message: r.frontDoor.message }, gen, now);

  const { phase, reason } = phaseOf(r, lost, degraded);
  const status: StegoClusterStatus = {
    phase,
    phaseReason: reason,
    replicas: r.bootstrapped ? members.length : r.podCount,
    readyReplicas,
    members,
    conditions: c,
    selector: selectorString(selectorLabels(refOf(cr.metadata))),
    bootstrapped: r.bootstrapped,
    volumes: r.volumes,
  };
  if (v.leader) {
    status.leader = v.leader;
    status.term = v.term;
  } else if (v.term > 0) {
    status.term = v.term;
  }
  const observed = r.error ? prev.observedGeneration : gen;
  if (observed !== undefined) status.observedGeneration = observed;
  return status;
}

function actionReason(a: Action): string {
  switch (a.type) {
    case 'wait':
      return 'Waiting';
    case 'scaleStatefulSet':
      return 'ScalingPods';
    case 'addMember':
      return 'AddingMember';
    case 'removeMember':
      return 'RemovingMember';
    case 'transferLeadership':
      return 'TransferringLeadership';
    case 'deletePod':
      return 'ReplacingPod';
    default:
      return 'Converged';
  }
}
