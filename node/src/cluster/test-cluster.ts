// In-process cluster for the cluster layer's tests: real RaftNodes (real core, real durable log in temp
// dirs, real object store) over InMemoryTransport, so faults (partitions, crashes, disk stalls) are
// injected at the edges and nothing in between is faked.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../log.js';
import type { NodeId } from '../raft/types.js';
import type { StorageFaults } from '../storage/options.js';
import { InMemoryNetwork, type InMemoryTransport } from '../transport/in-memory.js';
import { RaftNode, type RaftNodeOptions } from './raft-node.js';
import { ClusterService } from './service.js';

export interface TestMember {
  id: NodeId;
  dir: string;
  transport: InMemoryTransport;
  node: RaftNode;
  service: ClusterService;
  faults: MutableFaults;
}

/** The durable log's fault hook, switchable at run time: set `stallMs` or `fail` to make the next fsync misbehave. */
export class MutableFaults implements StorageFaults {
  stallMs = 0;
  fail = false;
  async beforeSync(): Promise<void> {
    if (this.fail) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
    if (this.stallMs > 0) await new Promise((r) => setTimeout(r, this.stallMs));
  }
}

export interface TestClusterOptions {
  size?: number;
  overrides?: Partial<RaftNodeOptions>;
  maxObjectBytes?: number;
  /** How long addMember waits for a learner before answering 202. */
  catchUpTimeoutMs?: number;
  logger?: Logger;
}

export class TestCluster {
  readonly net = new InMemoryNetwork();
  readonly members = new Map<NodeId, TestMember>();
  private readonly transports = new Map<NodeId, InMemoryTransport>();
  private constructor(
    readonly root: string,
    private readonly opts: TestClusterOptions,
  ) {}

  static async start(opts: TestClusterOptions = {}): Promise<TestCluster> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'stego-cluster-'));
    const c = new TestCluster(root, opts);
    const ids = Array.from({ length: opts.size ?? 3 }, (_, i) => `n${i + 1}`);
    await Promise.all(ids.map((id) => c.startMember(id, ids, false)));
    return c;
  }

  addressOf(id: NodeId): string {
    return `mem-${id}:1`;
  }

  async startMember(id: NodeId, peerIds: NodeId[], join: boolean): Promise<TestMember> {
    const dir = path.join(this.root, id);
    let transport = this.transports.get(id);
    if (!transport) {
      transport = this.net.create(id, { snapshotStagingDir: path.join(dir, 'staging') });
      this.transports.set(id, transport);
    }
    transport.removeAllListeners();
    const faults = new MutableFaults();
    const node = await RaftNode.start({
      id,
      dataDir: dir,
      peers: new Map(peerIds.map((p) => [p, this.addressOf(p)])),
      join,
      tickMs: 5,
      heartbeatTicks: 4,
      electionTicks: 20,
      snapshotEntries: 10_000,
      snapshotBytes: 1 << 30,
      snapshotTrailingEntries: 5,
      linkLostRankMs: 15,
      fsyncDeadlineMs: 2000,
      requestTimeoutMs: 5000,
      transport,
      logger: this.opts.logger ?? silentLogger(),
      storageFaults: faults,
      ...this.opts.overrides,
    });
    await transport.start();
    const service = new ClusterService(node, transport, { requestTimeoutMs: 5000, maxObjectBytes: this.opts.maxObjectBytes ?? 1 << 24, logger: this.opts.logger ?? silentLogger(), catchUpTimeoutMs: this.opts.catchUpTimeoutMs ?? 10_000 });
    const m: TestMember = { id, dir, transport, node, service, faults };
    this.members.set(id, m);
    return m;
  }

  member(id: NodeId): TestMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Polls until every running member agrees on one leader; returns it. */
  async waitForLeader(among: NodeId[] = [...this.members.keys()], deadlineMs = 10_000): Promise<NodeId> {
    let leader: NodeId | null = null;
    await pollUntil('a leader agreed by all members', deadlineMs, () => {
      const seen = among.map((id) => this.member(id).node.leaderId);
      leader = seen[0] ?? null;
      return leader !== null && seen.every((l) => l === leader) && among.includes(leader) && this.member(leader).node.isLeader;
    });
    return leader!;
  }

  /** Simulates a crash: the node stops (no leadership hand-over), its links go down. */
  async crash(id: NodeId): Promise<void> {
    const m = this.member(id);
    await m.transport.stop();
    await m.node.stop({ transferLeadership: false });
    this.members.delete(id);
  }

  async restart(id: NodeId, peerIds: NodeId[]): Promise<TestMember> {
    return this.startMember(id, peerIds, false);
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) {
      await m.transport.stop();
      await m.node.stop({ transferLeadership: false });
    }
    this.members.clear();
    await fs.rm(this.root, { recursive: true, force: true, maxRetries: 5 });
  }
}

export async function pollUntil(what: string, deadlineMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function fakePng(seed: string, size = 2048): { png: Buffer; sha256: string } {
  const png = Buffer.alloc(size);
  Buffer.from('\x89PNG\r\n\x1a\n', 'latin1').copy(png);
  const fill = createHash('sha256').update(seed).digest();
  for (let i = 8; i < size; i++) png[i] = fill[i % 32]!;
  return { png, sha256: createHash('sha256').update(png).digest('hex') };
}
