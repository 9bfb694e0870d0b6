// One structured log line per election event, derived from what the core does (role changes in
// Ready.softState, outgoing vote answers) plus what only the driver knows (a link to the leader dropped,
// a transfer was requested, the disk failed), which is the "reason".
import type { Logger } from '../log.js';
import type { Message } from '../raft/message.js';
import type { NodeId } from '../raft/types.js';
import type { RaftMetrics, RoleName } from '../metrics/raft.js';
import type { HaltError } from './errors.js';

export type ElectionEvent =
  | 'campaign_started'
  | 'pre_vote_granted'
  | 'pre_vote_denied'
  | 'vote_granted'
  | 'vote_denied'
  | 'became_leader'
  | 'stepped_down'
  | 'leader_changed';

export class ElectionLog {
  private leaderLinkLostAt = -Infinity;
  private timeoutNowAt = -Infinity;
  private transferRequestedAt = -Infinity;

  constructor(
    private readonly logger: Logger,
    private readonly nodeId: NodeId,
    private readonly recentMs: number,
    private readonly metrics?: RaftMetrics,
  ) {}

  leaderLinkLost(): void {
    this.leaderLinkLostAt = Date.now();
  }

  transferRequested(): void {
    this.transferRequestedAt = Date.now();
  }

  timeoutNowReceived(): void {
    this.timeoutNowAt = Date.now();
  }

  /** Role/leader transition seen in Ready.softState. */
  transition(prev: { role: RoleName; leader: NodeId | null; term: number }, next: { role: RoleName; leader: NodeId | null; term: number }): void {
    if (next.role !== prev.role) {
      if (next.role === 'PreCandidate' || (next.role === 'Candidate' && prev.role !== 'PreCandidate')) {
        this.emit('campaign_started', next.term, this.campaignReason(), { pre_vote: next.role === 'PreCandidate' });
      }
      if (next.role === 'Leader') this.emit('became_leader', next.term, prev.role === 'Candidate' ? 'won the election' : 'elected');
      if (prev.role === 'Leader') {
        this.emit('stepped_down', next.term, this.stepDownReason(prev.term, next.term), {
          new_role: next.role,
        });
      }
    }
    if (next.leader !== prev.leader) {
      this.emit('leader_changed', next.term, next.leader === null ? 'leader unknown' : 'leader known', {
        leader: next.leader,
        previous_leader: prev.leader,
      });
    }
  }

  /** Called for every outgoing message: our vote answers are election events. */
  outgoing(m: Message): void {
    if (m.type !== 'voteResp' && m.type !== 'preVoteResp') return;
    const pre = m.type === 'preVoteResp';
    const event: ElectionEvent = pre ? (m.reject ? 'pre_vote_denied' : 'pre_vote_granted') : m.reject ? 'vote_denied' : 'vote_granted';
    const reason = m.reject ? 'candidate log behind, already voted, or a live leader is known' : 'candidate log up to date';
    this.emit(event, m.term, reason, { candidate: m.to });
  }

  halted(term: number, err: HaltError): void {
    const reason = err.storage ? 'storage failure' : 'internal failure';
    this.logger.fatal({ event: 'stepped_down', term, reason, code: err.code, err: err.message }, `election: stepped down (${reason})`);
    this.metrics?.electionEvents.inc({ event: 'stepped_down' });
  }

  private stepDownReason(prevTerm: number, term: number): string {
    if (Date.now() - this.transferRequestedAt < this.recentMs) return 'leadership transferred';
    return term > prevTerm ? 'saw a higher term' : 'lost contact with a quorum (check-quorum)';
  }

  private campaignReason(): string {
    const now = Date.now();
    if (now - this.timeoutNowAt < this.recentMs) return 'leadership transfer';
    if (now - this.leaderLinkLostAt < this.recentMs) return 'link to the leader closed';
    return 'election timeout';
  }

  private emit(event: ElectionEvent, term: number, reason: string, extra: Record<string, unknown> = {}): void {
    this.metrics?.electionEvents.inc({ event });
    this.logger.info({ event, term, reason, election_node: this.nodeId, ...extra }, `election: ${event.replace(/_/g, ' ')}`);
  }
}
