// Safety invariants of Raft (paper Figure 3), checked incrementally as the simulation runs:
// election safety, log matching, leader completeness, state machine safety, plus monotonic commit indexes.
// Linearizability of ReadIndex reads is checked by the simulation (it knows when a read started).
import type { RawNode, Ready } from '../../src/raft/rawnode.js';
import type { MemoryStorage } from '../../src/raft/storage.js';
import type { Entry, NodeId } from '../../src/raft/types.js';

export class InvariantViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantViolation';
  }
}

const dec = new TextDecoder();

export function entryKey(e: Entry): string {
  return `${e.term}/${e.type}/${dec.decode(e.data)}`;
}

/** FNV-1a over the previous hash and the entry key: the state machine's state after applying a prefix. */
export function chainHash(prev: number, key: string): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  h = Math.imul(h ^ 0x7c, 0x01000193) >>> 0;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

interface LiveNode {
  id: NodeId;
  raw: RawNode;
}

interface LoggedEntry {
  key: string;
  prevTerm: number | undefined;
}

export class Checker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** index → term → the one entry any log may hold at (index, term). */
  private readonly logged = new Map<number, Map<number, LoggedEntry>>();
  /**
   * index → the committed entry (learned from applies), with `committedBy`: an upper bound on the term
   * of the leader that committed it (the applying node's term when the checker first saw it applied; a
   * node learns of a commit only from a leader of its own term or an earlier one).
   */
  private readonly committed = new Map<number, { term: number; key: string; committedBy: number }>();
  /** index → state machine hash after applying up to index. */
  private readonly appliedHash = new Map<number, number>();
  private readonly memCommit = new Map<NodeId, number>();
  private currentLeaders: LiveNode[] = [];
  maxAcked = 0;

  onBoot(id: NodeId, raw: RawNode): void {
    this.memCommit.set(id, raw.commitIndex);
  }

  /** After the driver made the Ready's hard state and entries durable (entries lost in a crash never count). */
  onPersisted(id: NodeId, raw: RawNode, rd: Ready, storage: MemoryStorage, prevCommit: number, termAtReady: number): void {
    if (rd.hardState && rd.hardState.commit < prevCommit) {
      throw new InvariantViolation(`node ${id}: persisted commit index decreased ${prevCommit} -> ${rd.hardState.commit}`);
    }
    this.checkLogMatching(id, rd, storage);
    if (rd.softState?.role === 'leader') {
      // The term the Ready was produced in: the node may have stepped a higher-term message since.
      this.checkElectionSafety(id, termAtReady);
      this.checkLeaderHasAllCommitted(id, raw);
      this.currentLeaders.push({ id, raw });
    }
  }

  afterAdvance(id: NodeId, raw: RawNode): void {
    this.checkMemCommit(id, raw);
  }

  /** (index, term) identifies an entry and its predecessor's term everywhere (§5.3 Log Matching). */
  private checkLogMatching(id: NodeId, rd: Ready, storage: MemoryStorage): void {
    let prevTerm: number | undefined;
    for (let i = 0; i < rd.entries.length; i++) {
      const e = rd.entries[i] as Entry;
      if (i === 0) prevTerm = this.termBefore(e.index, rd, storage);
      const key = entryKey(e);
      let byTerm = this.logged.get(e.index);
      if (!byTerm) this.logged.set(e.index, (byTerm = new Map()));
      const seen = byTerm.get(e.term);
      if (!seen) byTerm.set(e.term, { key, prevTerm });
      else {
        if (seen.key !== key) throw new InvariantViolation(`log matching: node ${id} holds ${key} at ${e.index}, another log holds ${seen.key}`);
        if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
          throw new InvariantViolation(`log matching: entry ${e.index}@${e.term} follows term ${prevTerm} on ${id} but ${seen.prevTerm} elsewhere`);
        }
        if (seen.prevTerm === undefined) seen.prevTerm = prevTerm;
      }
      prevTerm = e.term;
    }
  }

  private termBefore(index: number, rd: Ready, storage: MemoryStorage): number | undefined {
    if (rd.snapshot && rd.snapshot.index > index - 1) return undefined;
    try {
      return storage.term(index - 1);
    } catch {
      return undefined;
    }
  }

  private checkElectionSafety(id: NodeId, term: number): void {
    const other = this.leaderOfTerm.get(term);
    if (other !== undefined && other !== id) {
      throw new InvariantViolation(`election safety: ${other} and ${id} are both leaders of term ${term}`);
    }
    this.leaderOfTerm.set(term, id);
  }

  /**
   * §5.4 Leader Completeness: a leader holds every entry committed in an earlier (or its own) term. A
   * leader of an older term that has not heard of the newer one yet (a partitioned leader) may lack an
   * entry committed after it: only leaders whose term is at least `committedBy` are checked.
   */
  private checkLeaderHasAllCommitted(id: NodeId, raw: RawNode): void {
    for (const [index, c] of this.committed) this.checkLeaderHas(id, raw, index, c.term, c.committedBy);
  }

  private checkLeaderHas(id: NodeId, raw: RawNode, index: number, term: number, committedBy: number): void {
    if (raw.role !== 'leader' || term > raw.term || committedBy > raw.term) return;
    const t = raw.debugTerm(index);
    if (t === term) return;
    if (t === undefined && index < raw.firstIndex) return; // compacted into a snapshot, fine
    throw new InvariantViolation(
      `leader completeness: leader ${id} of term ${raw.term} has ${t === undefined ? 'no entry' : `term ${t}`} at ${index}, committed with term ${term}`,
    );
  }

  private checkMemCommit(id: NodeId, raw: RawNode): void {
    const prev = this.memCommit.get(id) ?? 0;
    if (raw.commitIndex < prev) throw new InvariantViolation(`node ${id}: commit index decreased ${prev} -> ${raw.commitIndex}`);
    this.memCommit.set(id, raw.commitIndex);
  }

  /** §5.4.3 State Machine Safety: every node applies the same entry at each index (prefix property via hash chain). */
  onApply(id: NodeId, e: Entry, hash: number, applierTerm: number): void {
    const known = this.appliedHash.get(e.index);
    if (known === undefined) this.appliedHash.set(e.index, hash);
    else if (known !== hash) throw new InvariantViolation(`state machine safety: node ${id} applied a different sequence up to ${e.index}`);
    if (!this.committed.has(e.index)) {
      this.committed.set(e.index, { term: e.term, key: entryKey(e), committedBy: applierTerm });
      for (const l of this.currentLeaders) this.checkLeaderHas(l.id, l.raw, e.index, e.term, applierTerm);
    }
  }

  onInstall(id: NodeId, index: number, hash: number): void {
    const known = this.appliedHash.get(index);
    if (known !== undefined && known !== hash) {
      throw new InvariantViolation(`state machine safety: node ${id} installed a snapshot at ${index} that differs from the applied state`);
    }
  }

  onAck(index: number): void {
    if (index > this.maxAcked) this.maxAcked = index;
  }

  afterStep(nodes: LiveNode[]): void {
    this.currentLeaders = [];
    for (const n of nodes) {
      if (n.raw.role === 'leader') {
        this.checkElectionSafety(n.id, n.raw.term);
        this.currentLeaders.push(n);
      }
      this.checkMemCommit(n.id, n.raw);
    }
  }
}
