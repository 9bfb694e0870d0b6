// Deterministic simulation of a Raft cluster built from real RawNodes. One seed fixes everything: fault
// rates, the schedule of crashes, partitions, conf changes, snapshots, transfers, reads and proposals, and
// every node's election jitter. After every step the Checker verifies the safety invariants; at the end the
// network heals and the cluster must elect a leader and commit a new proposal within a bound.
import { decodeConfChange, type ConfChange } from '../../src/raft/confchange.js';
import { RaftError } from '../../src/raft/errors.js';
import type { Message } from '../../src/raft/message.js';
import type { UnsafeTestingKnobs } from '../../src/raft/raft.js';
import { RawNode, type Ready } from '../../src/raft/rawnode.js';
import { SeededRandom } from '../../src/raft/rand.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import type { ConfState, Entry, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { Checker, InvariantViolation, entryKey, chainHash } from './checker.js';

export interface SimOptions {
  seed: number;
  /** Initial voters: 3 or 5. */
  voters: number;
  steps: number;
  /** Ticks allowed after healing for a leader to be elected and commit a proposal. */
  livenessTicks?: number;
  knobs?: UnsafeTestingKnobs;
  /** Which nodes get the unsafe knobs (default: all). */
  knobNodes?: number;
}

export interface SimResult {
  seed: number;
  steps: number;
  elections: number;
  commits: number;
  crashes: number;
  snapshotsSent: number;
  confChanges: number;
  reads: number;
  transfers: number;
}

interface Faults {
  drop: number;
  dup: number;
  maxDelay: number;
  crash: number;
  restart: number;
  partition: number;
  heal: number;
  propose: number;
  compact: number;
  transfer: number;
  read: number;
  confChange: number;
  loudPartition: number;
  durableStateMachine: boolean;
  /** Initial members start from a snapshot at index 1 holding the membership (as the cluster driver does) instead of `peers`. */
  bootstrapBySnapshot: boolean;
  /** Probability that an fsync takes 1–3 ticks (the node keeps running meanwhile). */
  slowDisk: number;
  preVote: boolean;
  checkQuorum: boolean;
}

interface SmState {
  applied: number;
  hash: number;
  conf: ConfState;
}

interface SimNode {
  id: NodeId;
  storage: MemoryStorage;
  raw: RawNode | null;
  sm: SmState;
  /** What the state machine persisted (durableStateMachine) — survives crashes. */
  smDurable: SmState;
  /** Snapshot data by index: taken locally or staged from a leader. */
  snapData: Map<number, SmState>;
  /** Proposals this node accepted as leader: index → term, acknowledged when applied with that term. */
  pending: Map<number, number>;
  /** Read requests: ctx → required index (the highest acknowledged write when the read started). */
  reads: Map<string, number>;
  removed: boolean;
  incarnation: number;
  /** A Ready taken from the core whose persistence (fsync) has not completed yet. */
  pendingReady: PendingReady | null;
}

interface PendingReady {
  rd: Ready;
  /** Its messages already went out (sendBeforePersist). */
  early: boolean;
  /** Tick at which the simulated fsync completes. */
  at: number;
  /** The node's term when the Ready was taken: by the time it is persisted the node may have moved on. */
  term: number;
  /** How many of its committed entries were applied before the fsync (those the node already held durably). */
  appliedEarly: number;
}

interface InFlight {
  at: number;
  m: Message;
  /** Snapshot data travelling with a `snap` message (the transport's stream). */
  snap?: SmState;
  /** The snapshot stream broke (loss, partition): the leader is told it failed. */
  failed?: boolean;
}

const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

function pickFaults(rng: SeededRandom): Faults {
  return {
    drop: rng.chance(0.3) ? 0 : rng.next() * 0.15,
    dup: rng.next() * 0.05,
    maxDelay: rng.int(4),
    crash: rng.next() * 0.01,
    restart: 0.02 + rng.next() * 0.05,
    partition: rng.next() * 0.01,
    heal: 0.01 + rng.next() * 0.04,
    propose: 0.1 + rng.next() * 0.4,
    compact: rng.next() * 0.03,
    transfer: rng.next() * 0.005,
    read: rng.next() * 0.05,
    confChange: rng.next() * 0.01,
    loudPartition: rng.next(),
    durableStateMachine: rng.chance(0.5),
    bootstrapBySnapshot: rng.chance(0.5),
    slowDisk: rng.next() * 0.5,
    // Defaults are on; some seeds turn them off so the plain-Raft paths keep their safety too.
    preVote: rng.chance(0.8),
    checkQuorum: rng.chance(0.8),
  };
}

function emptySm(conf: ConfState): SmState {
  return { applied: 0, hash: 0, conf };
}

export class Simulation {
  readonly rng: SeededRandom;
  private readonly faults: Faults;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly initialVoters: NodeId[];
  private nextSpare: number;
  private queue: InFlight[] = [];
  /** Directed links that are cut (partition). */
  private readonly cut = new Set<string>();
  private linkLostQueue: { at: number; node: NodeId; peer: NodeId }[] = [];
  now = 0;
  private valueCounter = 0;
  private readCounter = 0;
  readonly checker = new Checker();
  readonly result: SimResult;

  constructor(private readonly opts: SimOptions) {
    this.rng = new SeededRandom(opts.seed * 7919 + 17);
    this.faults = pickFaults(this.rng);
    this.initialVoters = Array.from({ length: opts.voters }, (_, i) => `n${i + 1}`);
    this.nextSpare = opts.voters + 1;
    for (const id of this.initialVoters) this.createNode(id);
    this.result = { seed: opts.seed, steps: 0, elections: 0, commits: 0, crashes: 0, snapshotsSent: 0, confChanges: 0, reads: 0, transfers: 0 };
  }

  private createNode(id: NodeId): SimNode {
    const n: SimNode = {
      id,
      storage: new MemoryStorage(),
      raw: null,
      sm: emptySm({ voters: [], learners: [] }),
      smDurable: emptySm({ voters: [], learners: [] }),
      snapData: new Map(),
      pending: new Map(),
      reads: new Map(),
      removed: false,
      incarnation: 0,
      pendingReady: null,
    };
    this.nodes.set(id, n);
    if (this.faults.bootstrapBySnapshot && this.initialVoters.includes(id)) {
      const conf = { voters: [...this.initialVoters], learners: [] };
      n.storage.applySnapshot({ index: 1, term: 1, conf });
      n.snapData.set(1, { applied: 1, hash: 1, conf });
    }
    this.boot(n);
    return n;
  }

  /** (Re)builds the RawNode from what was durable: storage, snapshot data, and the state machine if durable. */
  private boot(n: SimNode): void {
    n.incarnation++;
    this.trace?.(`t${this.now} BOOT ${n.id} hs=${JSON.stringify(n.storage.hardState)} last=${n.storage.lastIndex()}`);
    const snap = n.storage.snapshot();
    const fromSnap = n.snapData.get(snap.index) ?? emptySm(snap.conf);
    const durable = this.faults.durableStateMachine && n.smDurable.applied >= fromSnap.applied ? n.smDurable : fromSnap;
    n.sm = { ...durable };
    const isInitial = this.initialVoters.includes(n.id);
    const knobbed = this.opts.knobs && Number(n.id.slice(1)) <= (this.opts.knobNodes ?? 99);
    n.raw = new RawNode({
      id: n.id,
      storage: n.storage,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: HEARTBEAT_TICKS,
      randomSeed: this.opts.seed * 1000 + Number(n.id.slice(1)) * 10 + n.incarnation,
      maxSizePerMsg: 64 + this.rng.int(512),
      maxInflightMsgs: 1 + this.rng.int(8),
      maxUncommittedBytes: 4096,
      preVote: this.faults.preVote,
      checkQuorum: this.faults.checkQuorum,
      applied: n.sm.applied,
      peers: isInitial && !this.faults.bootstrapBySnapshot ? this.initialVoters : [],
      ...(knobbed ? { unsafeTestingKnobs: this.opts.knobs } : {}),
    });
    n.pending.clear();
    n.reads.clear();
    this.checker.onBoot(n.id, n.raw);
  }

  private up(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.raw !== null);
  }

  private leaders(): SimNode[] {
    return this.up().filter((n) => n.raw?.role === 'leader');
  }

  /** The leader with the highest term, if any. */
  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.leaders()) if (!best || (n.raw as RawNode).term > (best.raw as RawNode).term) best = n;
    return best;
  }

  // ---- running ---------------------------------------------------------------------------------------

  run(): SimResult {
    for (let i = 0; i < this.opts.steps; i++) this.step(true);
    this.checkLiveness();
    return this.result;
  }

  step(chaos: boolean): void {
    this.now++;
    this.result.steps++;
    if (chaos) this.chaos();
    for (const n of this.up()) {
      (n.raw as RawNode).tick();
      this.sendUrgent(n);
    }
    this.deliverLinkLost();
    for (let round = 0; round < 20; round++) {
      this.processReadies();
      if (!this.deliverDue()) break;
    }
    this.processReadies();
    this.checker.afterStep([...this.nodes.values()].filter((n) => n.raw).map((n) => ({ id: n.id, raw: n.raw as RawNode })));
  }

  /**
   * Like the real driver: a Ready is taken, (a leader's messages possibly sent at once, committed entries
   * already durable applied), persisted after a simulated fsync delay during which the node keeps ticking
   * and stepping, then sent/applied/advanced.
   */
  private processReadies(): void {
    for (const n of this.up()) {
      for (let guard = 0; guard < 100 && n.raw; guard++) {
        if (n.pendingReady) {
          if (n.pendingReady.at > this.now) break;
          this.finishReady(n, n.pendingReady);
          continue;
        }
        if (!n.raw.hasReady()) break;
        this.startReady(n, n.raw.ready());
      }
    }
  }

  /** Set to a function to see what happens (debugging a failing seed). */
  trace: ((line: string) => void) | undefined;

  private traceReady(n: SimNode, rd: Ready): void {
    if (!this.trace) return;
    const parts = [`t${this.now} ${n.id}`];
    if (rd.softState) parts.push(`soft=${rd.softState.role}/${rd.softState.leader}`);
    if (rd.hardState) parts.push(`hs=${JSON.stringify(rd.hardState)}`);
    if (rd.entries.length) parts.push(`ents=${rd.entries.map((e) => `${e.index}@${e.term}${e.type[0]}`).join(',')}`);
    if (rd.snapshot) parts.push(`snap=${rd.snapshot.index}@${rd.snapshot.term}`);
    if (rd.committedEntries.length) parts.push(`apply=${rd.committedEntries[0]?.index}..${rd.committedEntries[rd.committedEntries.length - 1]?.index}`);
    for (const m of rd.messages) parts.push(`${m.type}->${m.to}(t${m.term} i${m.index} lt${m.logTerm} c${m.commit}${m.reject ? ' R' + m.rejectHint : ''}${m.entries?.length ? ' n' + m.entries.length : ''})`);
    this.trace(parts.join(' '));
  }

  private startReady(n: SimNode, rd: Ready): void {
    this.traceReady(n, rd);
    if (rd.softState?.role === 'leader') this.result.elections++;
    // A crash here loses everything in this Ready: nothing was persisted or sent.
    if (this.rng.chance(this.faults.crash / 4)) return this.crash(n);
    // A leader may overlap its fsync with replication; a crash before the fsync completes leaves
    // followers ahead of its disk.
    const early = rd.sendBeforePersist && this.rng.chance(0.7);
    if (early) for (const m of rd.messages) this.send(n, m);
    // As the driver does: committed entries already durable here (below this Ready's entries) are applied
    // before the fsync. A snapshot in the Ready is installed at persist time in this model, so then none.
    const firstNew = rd.entries[0]?.index ?? Infinity;
    const cut = rd.snapshot ? 0 : rd.committedEntries.filter((e) => e.index < firstNew).length;
    for (const e of rd.committedEntries.slice(0, cut)) this.apply(n, e);
    const delay = this.rng.chance(this.faults.slowDisk) ? 1 + this.rng.int(3) : 0;
    n.pendingReady = { rd, early, at: this.now + delay, term: n.raw!.term, appliedEarly: cut };
  }

  private finishReady(n: SimNode, p: PendingReady): void {
    const raw = n.raw as RawNode;
    const { rd, early, term, appliedEarly } = p;
    n.pendingReady = null;
    if (early && this.rng.chance(this.faults.crash / 4)) return this.crash(n);
    const persistedCommit = n.storage.hardState.commit;
    if (rd.snapshot) this.installSnapshot(n, rd.snapshot);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    n.storage.append(rd.entries);
    this.checker.onPersisted(n.id, raw, rd, n.storage, persistedCommit, term);
    // A crash here keeps what was persisted but sends nothing.
    if (this.rng.chance(this.faults.crash / 4)) return this.crash(n);
    if (!early) for (const m of rd.messages) this.send(n, m);
    for (const e of rd.committedEntries.slice(appliedEarly)) this.apply(n, e);
    for (const rs of rd.readStates) this.onReadState(n, rs.index, dec.decode(rs.ctx));
    raw.advance(rd);
    this.checker.afterAdvance(n.id, raw);
  }

  private installSnapshot(n: SimNode, meta: SnapshotMeta): void {
    const data = n.snapData.get(meta.index);
    if (!data) throw new InvariantViolation(`node ${n.id} installs snapshot ${meta.index} whose data was never staged`);
    this.checker.onInstall(n.id, data.applied, data.hash);
    n.storage.applySnapshot(meta);
    n.sm = { ...data, conf: { voters: [...meta.conf.voters], learners: [...meta.conf.learners] } };
    if (this.faults.durableStateMachine) n.smDurable = { ...n.sm };
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.sm.applied + 1) {
      throw new InvariantViolation(`node ${n.id} applies index ${e.index} after ${n.sm.applied} (apply out of order)`);
    }
    const hash = chainHash(n.sm.hash, entryKey(e));
    this.checker.onApply(n.id, e, hash, (n.raw as RawNode).term);
    n.sm.applied = e.index;
    n.sm.hash = hash;
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      n.sm.conf = (n.raw as RawNode).applyConfChange(cc);
      if (cc.type === 'removeNode' && cc.node === n.id) n.removed = true;
    }
    if (this.faults.durableStateMachine) n.smDurable = { ...n.sm, conf: n.sm.conf };
    const term = n.pending.get(e.index);
    if (term !== undefined) {
      n.pending.delete(e.index);
      if (term === e.term) {
        this.checker.onAck(e.index);
        this.result.commits++;
      }
    }
  }

  private onReadState(n: SimNode, index: number, ctx: string): void {
    const required = n.reads.get(ctx);
    if (required === undefined) return;
    n.reads.delete(ctx);
    if (index < required) {
      throw new InvariantViolation(`read ${ctx} at ${n.id} got read index ${index} but write ${required} was acknowledged before it started (not linearizable)`);
    }
    this.result.reads++;
  }

  // ---- network ---------------------------------------------------------------------------------------

  private linkKey(a: NodeId, b: NodeId): string {
    return `${a}>${b}`;
  }

  private send(from: SimNode, m: Message): void {
    if (m.type === 'snap') return this.sendSnapshot(from, m);
    if (this.rng.chance(this.faults.drop)) return;
    const copies = this.rng.chance(this.faults.dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) this.queue.push({ at: this.now + this.rng.int(this.faults.maxDelay + 1), m });
  }

  /** The transport streams the leader's snapshot data; the `snap` message is stepped once it has arrived. */
  private sendSnapshot(from: SimNode, m: Message): void {
    const meta = m.snapshot as SnapshotMeta;
    const data = from.snapData.get(meta.index);
    if (!data) throw new InvariantViolation(`leader ${from.id} sent snapshot ${meta.index} it does not have`);
    this.result.snapshotsSent++;
    const ok = !this.rng.chance(this.faults.drop) && !this.cut.has(this.linkKey(from.id, m.to));
    const at = this.now + 1 + this.rng.int(this.faults.maxDelay + 3);
    this.queue.push({ at, m, snap: { ...data }, failed: !ok });
  }

  /** Delivers due messages in a random order; returns whether anything was delivered. */
  private deliverDue(): boolean {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const f of this.queue) (f.at <= this.now ? due : later).push(f);
    this.queue = later;
    if (due.length === 0) return false;
    for (let i = due.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [due[i], due[j]] = [due[j] as InFlight, due[i] as InFlight];
    }
    for (const f of due) this.deliver(f);
    return true;
  }

  private deliver(f: InFlight): void {
    const { m } = f;
    const target = this.nodes.get(m.to);
    const linkCut = this.cut.has(this.linkKey(m.from, m.to));
    if (m.type === 'snap') {
      const failed = f.failed === true || linkCut || !target?.raw;
      const sender = this.nodes.get(m.from);
      if (!failed) {
        // Staged by the transport before the core sees the message.
        target.snapData.set((m.snapshot as SnapshotMeta).index, f.snap as SmState);
        (target.raw as RawNode).step(m);
      }
      sender?.raw?.reportSnapshot(m.to, !failed);
      return;
    }
    if (linkCut || !target?.raw) return;
    target.raw.step(m);
    this.sendUrgent(target);
  }

  /**
   * Like the real driver: heartbeats and their answers may leave at once, even while a Ready is being
   * persisted (often, not always: otherwise they leave with the next Ready, which is also correct).
   */
  private sendUrgent(n: SimNode): void {
    if (!n.raw || !this.rng.chance(0.7)) return;
    for (const m of n.raw.takeUrgentMessages()) this.send(n, m);
  }

  // ---- chaos -----------------------------------------------------------------------------------------

  private chaos(): void {
    const f = this.faults;
    const r = this.rng;
    if (r.chance(f.crash)) this.crashRandom();
    if (r.chance(f.restart)) this.restartRandom();
    if (r.chance(f.partition)) this.partition();
    if (r.chance(f.heal)) this.healPartition();
    if (r.chance(f.propose)) this.propose();
    if (r.chance(f.compact)) this.compactRandom();
    if (r.chance(f.transfer)) this.transfer();
    if (r.chance(f.read)) this.read();
    if (r.chance(f.confChange)) this.confChange();
  }

  private crash(n: SimNode): void {
    this.trace?.(`t${this.now} CRASH ${n.id}`);
    n.raw = null;
    n.pendingReady = null;
    this.result.crashes++;
    // Peers see the TCP link drop shortly after the process dies.
    for (const other of this.up()) {
      if (!this.cut.has(this.linkKey(n.id, other.id))) {
        this.linkLostQueue.push({ at: this.now + this.rng.int(3), node: other.id, peer: n.id });
      }
    }
  }

  private crashRandom(): void {
    const ups = this.up();
    if (ups.length === 0) return;
    this.crash(this.rng.pick(ups));
  }

  private restartRandom(): void {
    const downs = [...this.nodes.values()].filter((n) => n.raw === null);
    if (downs.length === 0) return;
    this.boot(this.rng.pick(downs));
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    const side = new Set(ids.filter(() => this.rng.chance(0.4)));
    if (side.size === 0 || side.size === ids.length) return;
    const loud = this.rng.chance(this.faults.loudPartition);
    for (const a of side) {
      for (const b of ids) {
        if (side.has(b)) continue;
        this.cut.add(this.linkKey(a, b));
        this.cut.add(this.linkKey(b, a));
        if (loud) {
          this.linkLostQueue.push({ at: this.now + this.rng.int(3), node: a, peer: b });
          this.linkLostQueue.push({ at: this.now + this.rng.int(3), node: b, peer: a });
        }
      }
    }
  }

  private healPartition(): void {
    this.cut.clear();
  }

  private deliverLinkLost(): void {
    const due = this.linkLostQueue.filter((l) => l.at <= this.now);
    this.linkLostQueue = this.linkLostQueue.filter((l) => l.at > this.now);
    for (const l of due) this.nodes.get(l.node)?.raw?.peerLinkLost(l.peer);
  }

  private propose(): void {
    const leader = this.leader();
    if (!leader?.raw) return;
    const value = `v${++this.valueCounter}`;
    try {
      const { index, term } = leader.raw.propose(enc.encode(value));
      leader.pending.set(index, term);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  private compactRandom(): void {
    const ups = this.up();
    if (ups.length === 0) return;
    const n = this.rng.pick(ups);
    const snapIndex = n.storage.snapshot().index;
    if (n.sm.applied <= snapIndex || n.sm.applied > n.storage.lastIndex()) return;
    // Taken between Readies, so the core's membership is the one in force at sm.applied.
    const conf = (n.raw as RawNode).status().conf;
    n.storage.createSnapshot(n.sm.applied, conf);
    n.snapData.set(n.sm.applied, { ...n.sm, conf });
    const keep = this.rng.int(4);
    if (n.sm.applied - keep > snapIndex) n.storage.compact(n.sm.applied - keep);
    // Keep the data of the two latest snapshots (like the durable store's retention).
    const indexes = [...n.snapData.keys()].sort((a, b) => b - a);
    for (const i of indexes.slice(2)) if (i !== n.storage.snapshot().index) n.snapData.delete(i);
  }

  private transfer(): void {
    const leader = this.leader();
    if (!leader?.raw) return;
    const voters = leader.raw.status().conf.voters.filter((v) => v !== leader.id);
    if (voters.length === 0) return;
    leader.raw.transferLeader(this.rng.pick(voters));
    this.result.transfers++;
  }

  private read(): void {
    const ups = this.up();
    if (ups.length === 0) return;
    const n = this.rng.pick(ups);
    const ctx = `r${++this.readCounter}`;
    try {
      (n.raw as RawNode).readIndex(enc.encode(ctx));
      n.reads.set(ctx, this.checker.maxAcked);
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  private confChange(): void {
    const leader = this.leader();
    if (!leader?.raw) return;
    const st = leader.raw.status();
    const members = st.conf.voters.length + st.conf.learners.length;
    const choices: ConfChange[] = [];
    if (members < 6) choices.push({ type: 'addLearner', node: `n${this.nextSpare}` });
    for (const l of st.conf.learners) {
      // The driver promotes only a caught-up learner.
      if ((st.progress[l]?.match ?? 0) >= st.commit) choices.push({ type: 'promote', node: l });
      choices.push({ type: 'removeNode', node: l });
    }
    if (st.conf.voters.length > 3) {
      for (const v of st.conf.voters) if (v !== leader.id || this.rng.chance(0.2)) choices.push({ type: 'removeNode', node: v });
    }
    if (choices.length === 0) return;
    const cc = this.rng.pick(choices);
    try {
      leader.raw.proposeConfChange(cc);
      this.result.confChanges++;
      if (cc.type === 'addLearner') {
        this.nextSpare++;
        this.createNode(cc.node);
      }
    } catch (e) {
      if (!(e instanceof RaftError)) throw e;
    }
  }

  // ---- liveness --------------------------------------------------------------------------------------

  /** After healing everything, a leader must be elected and commit a new proposal within the bound. */
  private checkLiveness(): void {
    this.cut.clear();
    this.faults.drop = 0;
    this.faults.dup = 0;
    this.faults.crash = 0;
    for (const n of this.nodes.values()) if (n.raw === null && !n.removed) this.boot(n);
    const bound = this.opts.livenessTicks ?? 60 * ELECTION_TICKS;
    const committed = this.awaitCommittedProposal(bound);
    if (!committed) this.failLiveness(`no leader committed a proposal within ${bound} ticks after healing`);
    this.awaitCatchUp(committed, bound);
  }

  /** Proposes on the current leader until one proposal is applied by the leader that made it. */
  private awaitCommittedProposal(bound: number): { leader: SimNode; index: number } | undefined {
    let proposed: { node: SimNode; index: number; term: number } | undefined;
    for (let t = 0; t < bound; t++) {
      this.step(false);
      if (proposed) {
        if (proposed.node.sm.applied >= proposed.index && proposed.node.raw?.debugTerm(proposed.index) === proposed.term) {
          return { leader: proposed.node, index: proposed.index };
        }
        if (proposed.node.raw?.role !== 'leader' || proposed.node.raw.term !== proposed.term) proposed = undefined;
      }
      const leader = this.leader();
      if (!proposed && leader?.raw) {
        try {
          const r = leader.raw.propose(enc.encode(`final${this.now}`));
          leader.pending.set(r.index, r.term);
          proposed = { node: leader, ...r };
        } catch (e) {
          if (!(e instanceof RaftError)) throw e;
        }
      }
    }
    return undefined;
  }

  /** Every member of the leader's configuration (restarted, lagging, or new) must catch up, by log or snapshot. */
  private awaitCatchUp(committed: { leader: SimNode; index: number }, bound: number): void {
    const lagging = (): SimNode[] => {
      const conf = committed.leader.raw?.status().conf ?? { voters: [], learners: [] };
      return [...conf.voters, ...conf.learners]
        .map((id) => this.nodes.get(id))
        .filter((n): n is SimNode => n !== undefined && n.sm.applied < committed.index);
    };
    for (let t = 0; t < bound; t++) {
      if (lagging().length === 0) return;
      this.step(false);
    }
    this.failLiveness(`members ${lagging().map((n) => n.id).join(',')} did not catch up to ${committed.index} within ${bound} ticks`);
  }

  private failLiveness(what: string): never {
    const roles = [...this.nodes.values()].map((n) => `${n.id}:${n.raw ? `${n.raw.role}@${n.raw.term}/applied ${n.sm.applied}` : 'down'}`).join(' ');
    throw new InvariantViolation(`liveness: ${what} (${roles})`);
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
