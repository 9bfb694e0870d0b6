// What the operator knows about a StegoCluster's Raft group, derived purely from the member pods and their
// /cluster/status answers: the leader agreed at the highest term (only a node that names itself leader is
// believed, so a deposed leader that has not heard the news cannot keep the label), the membership as the
// leader sees it, and each pod's role label.
import { pickLeader } from '../../../node/src/lb/leader-watch.js';
import { ROLE_FOLLOWER, ROLE_LEADER, ROLE_LEARNER, ROLE_UNKNOWN, ordinalOf, type ClusterRef } from '../api/names.js';
import type { MemberRole, MemberStatus } from '../api/types.js';
import type { ClusterStatusReport, PodProbe } from './node-client.js';

export interface ClusterView {
  leader: string | null;
  term: number;
  /** The leader's configuration (voters and learners); null without a leader. */
  members: MemberStatus[] | null;
  /** Pods whose /readyz answered 200. */
  ready: Set<string>;
  reports: Map<string, ClusterStatusReport>;
}

const ROLES: Record<string, MemberRole> = { Leader: 'Leader', Follower: 'Follower', Candidate: 'Candidate', PreCandidate: 'Candidate', Learner: 'Learner' };

export function observe(probes: PodProbe[]): ClusterView {
  const reports = new Map<string, ClusterStatusReport>();
  for (const p of probes) if (p.status) reports.set(p.pod, p.status);
  const { leaderId, term } = pickLeader([...reports.values()]);
  const ready = new Set(probes.filter((p) => p.ready).map((p) => p.pod));
  const leaderReport = leaderId ? reports.get(leaderId) : undefined;
  const members = leaderReport?.nodes
    ? leaderReport.nodes.map<MemberStatus>((n) => ({
        id: n.id,
        pod: n.id,
        role: n.id === leaderId ? 'Leader' : (ROLES[n.role] ?? 'Unknown'),
        healthy: n.healthy,
        membership: n.voter ? 'voter' : 'learner',
        ...(reports.get(n.id)?.applied_index !== undefined ? { appliedIndex: reports.get(n.id)!.applied_index! } : {}),
      }))
    : null;
  return { leader: leaderReport ? leaderId : null, term: leaderReport ? term : maxTerm(reports), members, ready, reports };
}

function maxTerm(reports: Map<string, ClusterStatusReport>): number {
  return Math.max(0, ...[...reports.values()].map((r) => r.term ?? 0));
}

/** The stego.io/role label each member pod should carry. */
export function roleLabel(pod: string, view: ClusterView): string {
  if (pod === view.leader) return ROLE_LEADER;
  const m = view.members?.find((x) => x.id === pod);
  if (!m) return ROLE_UNKNOWN;
  if (m.membership === 'learner') return ROLE_LEARNER;
  return m.healthy ? ROLE_FOLLOWER : ROLE_UNKNOWN;
}

/** The members as the scale planner sees them (ordinals instead of ids; ids of other clusters dropped). */
export function plannerMembers(c: ClusterRef, view: ClusterView): { ordinal: number; voter: boolean; healthy: boolean }[] | null {
  if (!view.members) return null;
  return view.members.flatMap((m) => {
    const ordinal = ordinalOf(c, m.id);
    return ordinal === null ? [] : [{ ordinal, voter: m.membership === 'voter', healthy: m.healthy }];
  });
}

/** A summary that changes exactly when something the reconciler acts on changes (the prober compares it). */
export function signature(view: ClusterView): string {
  return JSON.stringify([view.leader, view.term, view.members?.map((m) => [m.id, m.role, m.healthy, m.membership]) ?? null, [...view.ready].sort()]);
}
