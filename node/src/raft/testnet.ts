// In-memory cluster for unit tests (etcd raft_test.go `network`): delivers messages synchronously,
// persists every Ready into each node's MemoryStorage, and can drop, cut and isolate links.
import { decodeConfChange } from './confchange.js';
import type { Message } from './message.js';
import { RawNode, type Ready } from './rawnode.js';
import type { RaftConfig, ReadState } from './raft.js';
import { MemoryStorage } from './storage.js';
import type { Entry, NodeId } from './types.js';

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
}

export type NodeOverrides = Partial<Omit<RaftConfig, 'id' | 'storage'>>;

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  private readonly cut = new Set<string>();
  /** Messages dropped by type (e.g. 'app'), for targeted scenarios. */
  readonly dropTypes = new Set<string>();
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];

  constructor(voters: NodeId[], overrides: NodeOverrides = {}, learners: NodeId[] = []) {
    let seed = 1;
    for (const id of [...voters, ...learners]) this.add(id, { peers: voters, learners, ...overrides, randomSeed: seed++ });
    // Persist and apply the bootstrap entries, as a driver does right after construction.
    this.settle();
  }

  add(id: NodeId, overrides: NodeOverrides, storage = new MemoryStorage()): TestNode {
    const node = new RawNode({ id, storage, electionTicks: 10, heartbeatTicks: 1, randomSeed: 1, ...overrides });
    const n: TestNode = { id, node, storage, applied: [], readStates: [] };
    this.nodes.set(id, n);
    return n;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raw(id: NodeId): RawNode {
    return this.get(id).node;
  }

  private key(a: NodeId, b: NodeId): string {
    return `${a}->${b}`;
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(this.key(a, b));
    this.cut.add(this.key(b, a));
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cutLink(id, other);
  }

  heal(): void {
    this.cut.clear();
    this.dropTypes.clear();
  }

  /** Processes every node's Ready and delivers the resulting messages until the cluster is quiet. */
  settle(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const outbox: Message[] = [];
      for (const n of this.nodes.values()) {
        while (n.node.hasReady()) outbox.push(...this.handleReady(n, n.node.ready()));
      }
      if (outbox.length === 0) return;
      for (const m of outbox) this.deliver(m);
    }
    throw new Error('network did not settle');
  }

  private deliver(m: Message): void {
    if (this.cut.has(this.key(m.from, m.to)) || this.dropTypes.has(m.type)) return;
    const target = this.nodes.get(m.to);
    if (!target) return;
    this.delivered.push(m);
    target.node.step(m);
  }

  private handleReady(n: TestNode, rd: Ready): Message[] {
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    n.storage.append(rd.entries);
    for (const e of rd.committedEntries) {
      n.applied.push(e);
      if (e.type === 'conf') n.node.applyConfChange(decodeConfChange(e.data));
    }
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
    return rd.messages;
  }

  /** Ticks every node `ticks` times, settling after each tick. */
  tick(ticks: number, only?: NodeId[]): void {
    for (let i = 0; i < ticks; i++) {
      for (const n of this.nodes.values()) if (!only || only.includes(n.id)) n.node.tick();
      this.settle();
    }
  }

  /** Snapshots the node at its applied index and drops the log up to it (keeping `keep` entries). */
  compact(id: NodeId, keep = 0): void {
    const n = this.get(id);
    const applied = n.node.appliedIndex;
    n.storage.createSnapshot(applied, n.node.status().conf);
    if (applied - keep >= n.storage.firstIndex()) n.storage.compact(applied - keep);
  }

  /** Every message queued by this node is taken out of the network (for inspecting one node's Ready). */
  readyOf(id: NodeId): Ready {
    return this.raw(id).ready();
  }

  /** The leader of the highest term (a cut-off old leader may still believe it leads). */
  leader(): NodeId | null {
    let best: TestNode | null = null;
    for (const n of this.nodes.values()) {
      if (n.node.role === 'leader' && (!best || n.node.term > best.node.term)) best = n;
    }
    return best?.id ?? null;
  }

  campaign(id: NodeId): void {
    this.raw(id).campaign();
    this.settle();
  }

  propose(id: NodeId, text: string): { index: number; term: number } {
    const r = this.raw(id).propose(new TextEncoder().encode(text));
    this.settle();
    return r;
  }
}

export function texts(entries: Entry[]): string[] {
  return entries.filter((e) => e.type === 'normal').map((e) => new TextDecoder().decode(e.data));
}
