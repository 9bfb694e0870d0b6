// The scale planner: a pure function from what the operator observes (Raft membership as the leader sees it,
// the member pods, the StatefulSet's size) to the ONE next action that moves the cluster toward
// spec.replicas without ever losing quorum. The reconciler performs the action and plans again on the next
// pass, so a crash between two steps only repeats the planning (level-triggered).
//
// Rules (etcd-operator and CloudNativePG paid for each of them):
// - one membership change at a time; a new pod joins as a learner and the node promotes it once caught up;
// - scale-down removes the highest ordinal from Raft first, handing leadership away if it leads, and only
//   then shrinks the StatefulSet; a removal that would leave the remaining voters without a healthy quorum
//   waits;
// - no member is added while a voter is down (promoting it would raise the quorum with a member missing);
// - a member whose data is gone (its PVC was replaced) is removed and added again as a learner;
// - pods are replaced for an update one at a time, followers first, the leader after a transfer.

export interface PlannerMember {
  ordinal: number;
  voter: boolean;
  /** As the leader sees it: link up and heard from recently. */
  healthy: boolean;
}

export interface PlannerPod {
  ordinal: number;
  /** Scheduled and its container running: it can be added to Raft. */
  running: boolean;
  /** Its PVC is not the one this member had: the Raft data is gone. */
  dataLost: boolean;
  /** Runs an older pod template than the StatefulSet's update revision. */
  outdated: boolean;
  /** Failed or Succeeded: counts as a failed member. */
  terminal: boolean;
}

export interface PlanInput {
  desired: number;
  /** spec.replicas of the StatefulSet now, null when it does not exist yet. */
  statefulSetReplicas: number | null;
  bootstrapped: boolean;
  leader: number | null;
  /** Raft configuration from the leader's /cluster/status; null when no leader answered. */
  members: PlannerMember[] | null;
  pods: PlannerPod[];
}

export type Action =
  | { type: 'none' }
  | { type: 'wait'; reason: string }
  | { type: 'scaleStatefulSet'; replicas: number; reason: string }
  | { type: 'addMember'; ordinal: number; reason: string }
  | { type: 'removeMember'; ordinal: number; reason: string }
  | { type: 'transferLeadership'; from: number; reason: string }
  | { type: 'deletePod'; ordinal: number; reason: string };

export const quorum = (voters: number): number => Math.floor(voters / 2) + 1;

type Ctx = PlanInput & { members: PlannerMember[]; leader: number; pod: (o: number) => PlannerPod | undefined };

function healthyVoters(members: PlannerMember[], ctx: Ctx): number {
  return members.filter((m) => m.voter && isHealthy(m, ctx)).length;
}

function isHealthy(m: PlannerMember, ctx: Ctx): boolean {
  const p = ctx.pod(m.ordinal);
  return m.healthy && p !== undefined && !p.terminal && !p.dataLost;
}

/** Removing `ordinal` must commit (quorum of the current voters) and leave a healthy quorum behind. */
function removalIsSafe(ordinal: number, ctx: Ctx): boolean {
  const voters = ctx.members.filter((m) => m.voter);
  if (healthyVoters(voters, ctx) < quorum(voters.length)) return false;
  const target = ctx.members.find((m) => m.ordinal === ordinal);
  if (!target?.voter) return true;
  const rest = voters.filter((m) => m.ordinal !== ordinal);
  return rest.length > 0 && healthyVoters(rest, ctx) >= quorum(rest.length);
}

function removeOrTransfer(ordinal: number, reason: string, ctx: Ctx): Action {
  if (ordinal === ctx.leader) {
    return { type: 'transferLeadership', from: ordinal, reason: `${reason}: member ${ordinal} leads, handing leadership away first` };
  }
  if (!removalIsSafe(ordinal, ctx)) return { type: 'wait', reason: `${reason}: removing member ${ordinal} now would leave no healthy quorum` };
  return { type: 'removeMember', ordinal, reason };
}

function planBootstrap(input: PlanInput): Action {
  if (input.statefulSetReplicas === null) return { type: 'scaleStatefulSet', replicas: input.desired, reason: `creating ${input.desired} initial members` };
  return { type: 'wait', reason: 'initial members are forming a cluster' };
}

function planDataLoss(ctx: Ctx): Action | null {
  const lost = ctx.members.filter((m) => ctx.pod(m.ordinal)?.dataLost).sort((a, b) => b.ordinal - a.ordinal)[0];
  if (!lost) return null;
  return removeOrTransfer(lost.ordinal, `member ${lost.ordinal} lost its data and must be re-added as a learner`, ctx);
}

function planLearners(ctx: Ctx): Action | null {
  const learner = ctx.members.find((m) => !m.voter);
  if (!learner) return null;
  const pod = ctx.pod(learner.ordinal);
  if (learner.ordinal >= ctx.desired || !pod || pod.terminal) {
    return { type: 'removeMember', ordinal: learner.ordinal, reason: `learner ${learner.ordinal} is no longer wanted or its pod is gone` };
  }
  return { type: 'wait', reason: `learner ${learner.ordinal} is catching up before promotion` };
}

function planScaleDown(ctx: Ctx): Action | null {
  const extra = ctx.members.filter((m) => m.ordinal >= ctx.desired).sort((a, b) => b.ordinal - a.ordinal)[0];
  if (!extra) return null;
  return removeOrTransfer(extra.ordinal, `scaling down to ${ctx.desired}`, ctx);
}

function planScaleUp(ctx: Ctx): Action | null {
  const present = new Set(ctx.members.map((m) => m.ordinal));
  let next = -1;
  for (let i = 0; i < ctx.desired; i++) {
    if (!present.has(i)) {
      next = i;
      break;
    }
  }
  if (next < 0) return null;
  const down = ctx.members.filter((m) => m.voter && !isHealthy(m, ctx)).map((m) => m.ordinal);
  if (down.length > 0) return { type: 'wait', reason: `member(s) ${down.join(', ')} down: not adding member ${next} until they are back` };
  if ((ctx.statefulSetReplicas ?? 0) < next + 1) return { type: 'scaleStatefulSet', replicas: next + 1, reason: `starting pod ${next} to add it as a learner` };
  const pod = ctx.pod(next);
  if (!pod?.running || pod.terminal) return { type: 'wait', reason: `waiting for pod ${next} to run before adding it` };
  return { type: 'addMember', ordinal: next, reason: `scaling up to ${ctx.desired}: adding member ${next} as a learner` };
}

function planStatefulSetSize(ctx: Ctx): Action | null {
  const highest = Math.max(-1, ...ctx.members.map((m) => m.ordinal));
  const want = Math.max(ctx.desired, highest + 1);
  if (ctx.statefulSetReplicas === want) return null;
  return { type: 'scaleStatefulSet', replicas: want, reason: `membership is ${ctx.members.length}: StatefulSet follows` };
}

function planRollout(ctx: Ctx): Action | null {
  const outdated = ctx.pods.filter((p) => p.outdated).sort((a, b) => b.ordinal - a.ordinal);
  if (outdated.length === 0) return null;
  const unhealthy = ctx.members.filter((m) => !isHealthy(m, ctx));
  if (unhealthy.length > 0) return { type: 'wait', reason: `update paused: member ${unhealthy[0]!.ordinal} is not healthy` };
  const follower = outdated.find((p) => p.ordinal !== ctx.leader);
  if (follower) return { type: 'deletePod', ordinal: follower.ordinal, reason: `updating pod ${follower.ordinal}` };
  return { type: 'transferLeadership', from: ctx.leader, reason: `updating the leader's pod ${ctx.leader}: handing leadership away first` };
}

export function plan(input: PlanInput): Action {
  if (!input.bootstrapped) return planBootstrap(input);
  if (input.leader === null || input.members === null) return { type: 'wait', reason: 'no leader: membership cannot change' };
  const byOrdinal = new Map(input.pods.map((p) => [p.ordinal, p]));
  const ctx: Ctx = { ...input, members: input.members, leader: input.leader, pod: (o) => byOrdinal.get(o) };
  return (
    planDataLoss(ctx) ??
    planLearners(ctx) ??
    planScaleDown(ctx) ??
    planScaleUp(ctx) ??
    planStatefulSetSize(ctx) ??
    planRollout(ctx) ?? { type: 'none' }
  );
}
