// In-process transport for cluster tests: same interface and semantics as WsTransport (asynchronous
// delivery, linkUp/linkDown, counted drops, RPC, snapshot files in a staging dir), plus hooks to drop,
// delay and partition. Messages go through the real codec so nothing is shared between nodes.
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { decodeFrame, encodeFrame, payloadBytesOf } from './codec.js';
import { RemoteError, TransportError } from './errors.js';
import { PendingRequests } from './pending.js';
import { snapshotBaseName } from './snapshot.js';
import type { LinkStats, Message, RequestHandler, SnapshotHandler, SnapshotSendResult, SnapshotSource, Transport, TransportEvents } from './types.js';

export interface InMemoryTransportOptions {
  /** Where received snapshots are written; required only if this node receives snapshots. */
  snapshotStagingDir?: string;
  /** Cap on bytes of entry payload scheduled but not yet delivered towards one peer (default: unlimited). */
  maxInflightBytes?: number;
}

/** Decides per message whether it is lost; `m` is undefined for RPC and snapshot traffic. */
export type DropFilter = (from: NodeId, to: NodeId, m: Message | undefined) => boolean;
/** Delivery delay in ms per message (0 = next macrotask). */
export type DelayFn = (from: NodeId, to: NodeId, m: Message | undefined) => number;

interface PeerCounters {
  sentMsgs: number;
  droppedMsgs: number;
  reconnects: number;
  everUp: boolean;
  inflightBytes: number;
  lastContact: number | undefined;
}

/** The shared medium of a set of InMemoryTransports, with fault injection. */
export class InMemoryNetwork {
  private readonly nodes = new Map<NodeId, InMemoryTransport>();
  private readonly linked = new Set<string>();
  private readonly cut = new Set<string>();
  private dropFilter: DropFilter | undefined;
  private delayFn: DelayFn = () => 0;

  create(id: NodeId, opts: InMemoryTransportOptions = {}): InMemoryTransport {
    if (this.nodes.has(id)) throw new Error(`node ${id} already exists on this network`);
    const t = new InMemoryTransport(id, this, opts);
    this.nodes.set(id, t);
    return t;
  }

  /** Nodes in different groups cannot reach each other; nodes in no group are isolated. */
  partition(...groups: NodeId[][]): void {
    this.cut.clear();
    const groupOf = new Map<NodeId, number>();
    groups.forEach((g, i) => g.forEach((id) => groupOf.set(id, i)));
    for (const a of this.nodes.keys()) {
      for (const b of this.nodes.keys()) {
        if (a !== b && (groupOf.get(a) === undefined || groupOf.get(a) !== groupOf.get(b))) this.cut.add(pairKey(a, b));
      }
    }
    this.refreshLinks();
  }

  /** Cuts (or restores) the link between two nodes. */
  setReachable(a: NodeId, b: NodeId, reachable: boolean): void {
    if (reachable) this.cut.delete(pairKey(a, b));
    else this.cut.add(pairKey(a, b));
    this.refreshLinks();
  }

  heal(): void {
    this.cut.clear();
    this.refreshLinks();
  }

  /** Loses every message for which `filter` returns true (undefined = lose nothing). */
  setDropFilter(filter: DropFilter | undefined): void {
    this.dropFilter = filter;
  }

  setDelay(fn: DelayFn | number): void {
    this.delayFn = typeof fn === 'number' ? () => fn : fn;
  }

  isLinked(a: NodeId, b: NodeId): boolean {
    return this.linked.has(pairKey(a, b));
  }

  /** @internal */
  node(id: NodeId): InMemoryTransport | undefined {
    return this.nodes.get(id);
  }

  /** @internal */
  shouldDrop(from: NodeId, to: NodeId, m: Message | undefined): boolean {
    return this.dropFilter?.(from, to, m) ?? false;
  }

  /** @internal */
  delay(from: NodeId, to: NodeId, m: Message | undefined): number {
    return Math.max(0, this.delayFn(from, to, m));
  }

  /** @internal Recomputes which started, uncut pairs are linked and emits the differences. */
  refreshLinks(): void {
    const started = [...this.nodes.values()].filter((n) => n.running);
    const wanted = new Set<string>();
    for (const a of started) for (const b of started) if (a.id < b.id && !this.cut.has(pairKey(a.id, b.id))) wanted.add(pairKey(a.id, b.id));
    for (const key of [...this.linked]) {
      if (wanted.has(key)) continue;
      this.linked.delete(key);
      const [a, b] = key.split('\u0000') as [NodeId, NodeId];
      this.nodes.get(a)?.linkChanged(b, false);
      this.nodes.get(b)?.linkChanged(a, false);
    }
    for (const key of wanted) {
      if (this.linked.has(key)) continue;
      this.linked.add(key);
      const [a, b] = key.split('\u0000') as [NodeId, NodeId];
      this.nodes.get(a)?.linkChanged(b, true);
      this.nodes.get(b)?.linkChanged(a, true);
    }
  }
}

function pairKey(a: NodeId, b: NodeId): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export class InMemoryTransport extends EventEmitter<TransportEvents> implements Transport {
  running = false;
  private readonly counters = new Map<NodeId, PeerCounters>();
  private readonly handlers = new Map<string, RequestHandler>();
  private snapshotHandler: SnapshotHandler | undefined;
  private readonly pending = new PendingRequests();
  private readonly snapshotsOut = new Set<NodeId>();
  private peersWanted = new Map<NodeId, string>();

  constructor(
    readonly id: NodeId,
    private readonly net: InMemoryNetwork,
    private readonly opts: InMemoryTransportOptions,
  ) {
    super();
  }

  async start(): Promise<void> {
    if (this.opts.snapshotStagingDir) await fsp.mkdir(this.opts.snapshotStagingDir, { recursive: true });
    this.running = true;
    this.net.refreshLinks();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.net.refreshLinks();
  }

  /** Recorded only: like WsTransport accepting any authenticated peer, links follow the network's nodes. */
  setPeers(peers: Map<NodeId, string>): void {
    this.peersWanted = new Map(peers);
  }

  get peers(): ReadonlyMap<NodeId, string> {
    return this.peersWanted;
  }

  isConnected(peer: NodeId): boolean {
    return this.running && this.net.isLinked(this.id, peer);
  }

  send(m: Message): void {
    const c = this.counter(m.to);
    const target = this.net.node(m.to);
    if (!target || !this.isConnected(m.to) || this.net.shouldDrop(this.id, m.to, m)) {
      c.droppedMsgs++;
      return;
    }
    const payload = payloadBytesOf(m);
    const cap = this.opts.maxInflightBytes;
    if (cap !== undefined && payload > 0 && c.inflightBytes > 0 && c.inflightBytes + payload > cap) {
      c.droppedMsgs++;
      return;
    }
    c.sentMsgs++;
    c.inflightBytes += payload;
    const wire = encodeFrame({ t: 'raft', msg: m });
    this.later(m.to, m, () => {
      c.inflightBytes -= payload;
      if (!this.isConnected(m.to)) return; // lost with the link
      const f = decodeFrame(wire);
      if (f.t === 'raft') target.deliver(this.id, f.msg);
    });
  }

  async sendSnapshot(to: NodeId, meta: SnapshotMeta, source: SnapshotSource): Promise<SnapshotSendResult> {
    const target = this.net.node(to);
    if (!target || !this.isConnected(to)) throw new TransportError('link_down', `no link to ${to}`);
    if (this.snapshotsOut.has(to)) throw new TransportError('busy', `a snapshot to ${to} is already streaming`);
    this.snapshotsOut.add(to);
    try {
      await target.receiveSnapshot(this.id, meta, source);
      if (!this.isConnected(to)) throw new TransportError('link_lost', `link to ${to} closed during the snapshot`);
      await target.snapshotReceived(this.id, meta);
      return { resumedFrom: 0, bytesSent: source.size };
    } finally {
      this.snapshotsOut.delete(to);
    }
  }

  request(to: NodeId, kind: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const target = this.net.node(to);
    if (!target || !this.isConnected(to)) return Promise.reject(new TransportError('link_down', `no link to ${to}`));
    return this.pending.open(to, kind, timeoutMs, (id) => {
      if (this.net.shouldDrop(this.id, to, undefined)) return; // lost: the caller sees a timeout
      const copy = Uint8Array.from(body);
      this.later(to, undefined, () => {
        if (!this.isConnected(to)) return;
        target.serve(this.id, kind, copy).then(
          (res) => this.later(to, undefined, () => this.pending.resolve(id, to, Uint8Array.from(res))),
          (err: RemoteError) => this.later(to, undefined, () => this.pending.reject(id, to, err)),
        );
      });
    });
  }

  handle(kind: string, fn: RequestHandler): void {
    this.handlers.set(kind, fn);
  }

  handleSnapshots(fn: SnapshotHandler): void {
    this.snapshotHandler = fn;
  }

  linkStats(): Map<NodeId, LinkStats> {
    const now = Date.now();
    const out = new Map<NodeId, LinkStats>();
    for (const [peer, c] of this.counters) {
      const s: LinkStats = {
        connected: this.isConnected(peer),
        inflightBytes: c.inflightBytes,
        sentMsgs: c.sentMsgs,
        droppedMsgs: c.droppedMsgs,
        reconnects: c.reconnects,
        authFailures: 0,
      };
      if (c.lastContact !== undefined) s.lastContactMs = now - c.lastContact;
      out.set(peer, s);
    }
    return out;
  }

  // ---- called by the network and by peer transports ---------------------------------------------

  /** @internal */
  linkChanged(peer: NodeId, up: boolean): void {
    const c = this.counter(peer);
    if (up) {
      if (c.everUp) c.reconnects++;
      c.everUp = true;
      c.lastContact = Date.now();
      setImmediate(() => this.running && this.emit('linkUp', peer));
      return;
    }
    this.pending.linkLost(peer);
    if (this.running) setImmediate(() => this.emit('linkDown', peer));
  }

  /** @internal */
  deliver(from: NodeId, m: Message): void {
    if (!this.running) return;
    this.counter(from).lastContact = Date.now();
    this.emit('message', m);
  }

  /** @internal */
  async serve(from: NodeId, kind: string, body: Uint8Array): Promise<Uint8Array> {
    this.counter(from).lastContact = Date.now();
    const handler = this.handlers.get(kind);
    if (!handler) throw new RemoteError('no_handler', `no handler for '${kind}' on ${this.id}`, this.id);
    try {
      return await handler(from, body);
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      throw new RemoteError(typeof e.code === 'string' ? e.code : 'internal', String(e.message ?? err), this.id);
    }
  }

  /** @internal Writes the snapshot to the staging dir, fsync'd, under the same name WsTransport uses. */
  async receiveSnapshot(from: NodeId, meta: SnapshotMeta, source: SnapshotSource): Promise<void> {
    const dir = this.opts.snapshotStagingDir;
    if (!dir) throw new RemoteError('no_staging_dir', `${this.id} has no snapshotStagingDir`, this.id);
    const tmp = join(dir, `${snapshotBaseName(from, meta)}-${source.size}.partial`);
    const fd = await fsp.open(tmp, 'w+');
    try {
      // one piece at a time: the source may reuse a piece's buffer once the next is asked for
      for await (const piece of source.read()) await fd.write(piece);
      const { size } = await fd.stat();
      if (size !== source.size) throw new RemoteError('size_mismatch', `received ${size} of ${source.size} bytes`, this.id);
      await fd.sync();
    } finally {
      await fd.close();
    }
    await fsp.rename(tmp, this.snapshotPath(from, meta));
  }

  /** @internal Hands the received file to the handler; its rejection is the sender's, as over a real link. */
  async snapshotReceived(from: NodeId, meta: SnapshotMeta): Promise<void> {
    if (!this.running) return;
    try {
      await this.snapshotHandler?.(from, meta, this.snapshotPath(from, meta));
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      throw new RemoteError(typeof err.code === 'string' ? err.code : 'snapshot_refused', String(err.message ?? e), this.id);
    }
  }

  private snapshotPath(from: NodeId, meta: SnapshotMeta): string {
    return join(this.opts.snapshotStagingDir!, `${snapshotBaseName(from, meta)}.snap`);
  }

  private later(to: NodeId, m: Message | undefined, fn: () => void): void {
    const ms = this.net.delay(this.id, to, m);
    if (ms === 0) setImmediate(fn);
    else setTimeout(fn, ms);
  }

  private counter(peer: NodeId): PeerCounters {
    let c = this.counters.get(peer);
    if (!c) {
      c = { sentMsgs: 0, droppedMsgs: 0, reconnects: 0, everUp: false, inflightBytes: 0, lastContact: undefined };
      this.counters.set(peer, c);
    }
    return c;
  }
}
