// Raft links over persistent WebSockets (ws@8) on a dedicated port. Design and wire format:
// docs/transport.md. In short: both sides dial; after an HMAC challenge-response each side sends on one
// link per peer and channel (a restarted peer's new link replaces the old; a duplicate from a
// simultaneous dial is kept as a delivering spare until the smaller id closes it). Two channels per peer,
// like etcd's stream and pipeline: the control channel carries heartbeats, votes, acknowledgements and
// small RPCs; the bulk channel carries appends (in order), snapshots and large RPCs. A heartbeat thus
// never queues in TCP behind megabytes of an append. Entry-carrying frames are capped per peer.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import { handshakeMac, macMatches, newNonce, type HandshakeTranscript } from './auth.js';
import { decodeFrame, encodeFrame, encodeFrameSegments, encodePartInto, payloadBytesOf, segmentsLength, type Frame, type FrameOf } from './codec.js';
import { PendingRequests } from './pending.js';
import { RemoteError, TransportError } from './errors.js';
import { SnapshotInbox, SnapshotSender } from './snapshot.js';
import type { LinkStats, Message, RequestHandler, SnapshotHandler, SnapshotSendResult, SnapshotSource, Transport, TransportEvents } from './types.js';

/** pino-compatible subset. */
export interface TransportLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Optional push hooks; `linkStats()` remains the pull source for gauges. */
export interface TransportMetricsSink {
  authFailure?(claimedPeer: NodeId | undefined, reason: string): void;
  linkUp?(peer: NodeId): void;
  linkDown?(peer: NodeId): void;
}

/**
 * What the transport tells Raft (etcd's ReportUnreachable): a message to `peer` was dropped (no link, or
 * its in-flight cap reached), so the leader should stop streaming optimistically to it and probe again.
 */
export interface RaftReporter {
  reportUnreachable(peer: NodeId, reason: 'link_down' | 'backpressure'): void;
  /** True for a member removed from the cluster: its links are refused with reason 'removed'. */
  isRemoved(peer: NodeId): boolean;
  /** `peer` refused our link because we were removed from the cluster (we may not have learnt it). */
  reportRemoved(peer: NodeId): void;
}

export interface WsTransportOptions {
  id: NodeId;
  listenHost: string;
  /** 0 picks a free port; read it back from `port` after start(). */
  listenPort: number;
  peers: Map<NodeId, string /* host:port */>;
  secret: string | Uint8Array;
  /** Cap on bytes queued towards one peer for frames carrying entry payloads (see docs/transport.md). */
  maxInflightBytes: number;
  snapshotStagingDir: string;
  /** Bound into every handshake MAC: nodes of another cluster are refused even with the same secret. */
  clusterId?: string;
  logger?: TransportLogger;
  metrics?: TransportMetricsSink;
  raft?: RaftReporter;
  /** Frames without entry payload may exceed maxInflightBytes by this much (votes, heartbeats, responses). */
  controlReserveBytes?: number;
  pingIntervalMs?: number;
  /** A link with nothing received (not even a pong) for this long is declared dead. */
  deadAfterMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  handshakeTimeoutMs?: number;
  maxFrameBytes?: number;
  snapshotChunkBytes?: number;
  snapshotWindowBytes?: number;
  snapshotStallMs?: number;
  /** Rate cap of a snapshot sent to a peer, bytes per second (0: none). */
  snapshotBytesPerSecond?: number;
}

const DEFAULTS = {
  clusterId: 'stegocluster',
  controlReserveBytes: 1 << 20,
  pingIntervalMs: 500,
  deadAfterMs: 2000,
  reconnectBaseMs: 50,
  reconnectMaxMs: 1000,
  handshakeTimeoutMs: 3000,
  maxFrameBytes: 256 << 20,
  snapshotChunkBytes: 1 << 20,
  snapshotWindowBytes: 4 << 20,
  snapshotStallMs: 30_000,
  snapshotBytesPerSecond: 0,
};

const CLOSE_DUPLICATE = 4000;
const CLOSE_REMOVED = 4001;
const CLOSE_AUTH = 4401;
const CLOSE_PROTOCOL = 4400;
const CLOSE_DEAD = 4408;
/** The two channels of a peer and the URL path each is dialled on. */
type Channel = 'bulk' | 'control';
const CHANNEL_PATHS: Record<Channel, string> = { bulk: '/raft', control: '/raft/control' };
const CHANNELS: readonly Channel[] = ['bulk', 'control'];

function channelOfPath(url: string | undefined): Channel | undefined {
  return CHANNELS.find((c) => CHANNEL_PATHS[c] === url);
}

/**
 * Raft messages that take the control channel: they carry no entries and Raft tolerates their reordering
 * against appends (a stale answer or heartbeat is recognised by its term and index). Appends, empty ones
 * included, stay on the bulk channel so a probe never overtakes the entries it probes for.
 */
const CONTROL_MESSAGES: ReadonlySet<Message['type']> = new Set([
  'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'heartbeat', 'heartbeatResp', 'timeoutNow', 'readIndex', 'readIndexResp', 'transferLeader',
]);
/** Until a connection has authenticated, its frames are capped far below maxFrameBytes. */
const HANDSHAKE_FRAME_BYTES = 16 << 10;
/** RPC bodies up to this size take the control channel (a read barrier, an admin call, an answer). */
const CONTROL_BODY_BYTES = 16 << 10;
/** Frames above this size take the bulk lane (see writeFrame). */
const BULK_FRAME_BYTES = 64 << 10;
/** Bulk frames larger than this are sent as `part` frames of this size (see pumpBulk). */
const PART_BYTES = 256 << 10;
/** Room for a part's preamble, header and data. */
const PART_SCRATCH_BYTES = PART_BYTES + 1024;
/**
 * How long the smaller id keeps a duplicate link open before closing it: the bigger id may have adopted
 * that one first and be sending on it; closing it later than the handshake race lets that traffic land.
 */
const DUPLICATE_GRACE_MS = 2000;

class Link {
  inflight = 0;
  corked = false;
  closed = false;
  /** Closing with no open spare: its loss is processed on the next turn (see abandonSoon). */
  abandoning = false;
  lastRecv = Date.now();
  pingTimer: NodeJS.Timeout | undefined;
  /** Set on the losing link of a duplicate pair: it keeps delivering until this fires, then closes. */
  retireTimer: NodeJS.Timeout | undefined;
  /** Large frames waiting for the previous large frame to reach the kernel (see writeFrame). */
  readonly bulkQueue: { segments: Uint8Array[]; size: number; done: (err?: Error) => void }[] = [];
  bulkWriting = false;
  /** Sender: id of the last large frame split into parts. Receiver: the frame being reassembled. */
  partSeq = 0;
  /** Sender: the buffer parts are encoded into, reused once the previous part reached the kernel. */
  partScratch: Buffer | undefined;
  partId: number | undefined;
  /** Receiver: the frame's buffer, filled part by part when the first part named the total size. */
  partBuf: Buffer | undefined;
  partAt = 0;
  /** Receiver: the parts of a frame whose first part did not name its size (kept, joined at the end). */
  parts: Uint8Array[] = [];
  constructor(
    readonly peer: NodeId,
    readonly ws: WebSocket,
    readonly dialledBy: NodeId,
    readonly peerIncarnation: string,
    readonly channel: Channel,
  ) {}
}

/** One channel towards a peer: its link, duplicates, and dialling state. */
interface ChannelState {
  /** The link we send on. */
  link: Link | undefined;
  /** Losing duplicates still open for DUPLICATE_GRACE_MS: frames the peer sent on them are delivered. */
  spares: Set<Link>;
  dialing: boolean;
  /** The socket of the dial in progress, so stop() can cut it. */
  dialSocket: WebSocket | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  attempt: number;
}

function newChannelState(): ChannelState {
  return { link: undefined, spares: new Set(), dialing: false, dialSocket: undefined, retryTimer: undefined, attempt: 0 };
}

/**
 * A peer: "connected" (linkUp/linkDown, isConnected) follows the bulk channel, which carries everything
 * when the control channel is down (e.g. towards a peer that does not offer one).
 */
interface PeerState {
  id: NodeId;
  addr: string | undefined;
  bulk: ChannelState;
  control: ChannelState;
  everUp: boolean;
  sentMsgs: number;
  droppedMsgs: number;
  reconnects: number;
  authFailures: number;
  lastContact: number | undefined;
  snapshotOut: { link: Link; sender: SnapshotSender } | undefined;
  /** The link the current incoming snapshot's offer came on (keeps a duplicate from being retired under it). */
  snapshotInLink: Link | undefined;
  /** Set while links to a restarted peer process are torn down, so that no redial starts meanwhile. */
  replacing: boolean;
}

type Settings = typeof DEFAULTS & WsTransportOptions;

export class WsTransport extends EventEmitter<TransportEvents> implements Transport {
  readonly id: NodeId;
  /** Random per process start: lets the peer tell a restarted node's new link from a duplicate dial. */
  readonly incarnation = randomUUID();
  private readonly cfg: Settings;
  private readonly secret: Uint8Array;
  private readonly peers = new Map<NodeId, PeerState>();
  private readonly handlers = new Map<string, RequestHandler>();
  private snapshotHandler: SnapshotHandler | undefined;
  private readonly pending = new PendingRequests();
  private readonly inbox: SnapshotInbox;
  private server: WebSocketServer | undefined;
  private stopped = false;
  private totalAuthFailures = 0;

  constructor(opts: WsTransportOptions) {
    super();
    this.cfg = { ...DEFAULTS, ...stripUndefined(opts) } as Settings;
    this.id = opts.id;
    this.secret = typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : opts.secret;
    if (this.secret.byteLength === 0) throw new Error('WsTransport: the cluster secret must not be empty');
    this.inbox = new SnapshotInbox(opts.snapshotStagingDir, async (from, meta, path) => {
      if (!this.stopped) await this.snapshotHandler?.(from, meta, path);
    });
    for (const [peer, addr] of opts.peers) if (peer !== this.id) this.peerState(peer).addr = addr;
  }

  /** The bound listen port (useful with listenPort 0). */
  get port(): number {
    const addr = this.server?.address() as AddressInfo | undefined;
    if (!addr) throw new Error('WsTransport not started');
    return addr.port;
  }

  async start(): Promise<void> {
    await this.inbox.init();
    const server = new WebSocketServer({
      host: this.cfg.listenHost,
      port: this.cfg.listenPort,
      perMessageDeflate: false,
      maxPayload: this.cfg.maxFrameBytes,
      // one path per channel; any other is refused before the upgrade
      verifyClient: (info: { req: { url?: string } }) => channelOfPath(info.req.url) !== undefined,
    });
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    server.on('error', (err) => this.cfg.logger?.warn({ err }, 'raft listener error'));
    server.on('connection', (ws, req) => {
      req.socket.setNoDelay(true);
      this.acceptInbound(ws, channelOfPath(req.url) ?? 'bulk');
    });
    this.server = server;
    for (const p of this.peers.values()) this.ensureDialing(p);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const p of this.peers.values()) {
      p.snapshotOut?.sender.fail(new TransportError('stopped', 'transport stopped'));
      for (const l of linksOf(p)) l.ws.terminate();
      for (const c of CHANNELS) {
        clearTimeout(p[c].retryTimer);
        p[c].dialSocket?.terminate();
      }
    }
    this.pending.stopAll();
    await this.inbox.abortAll();
    const server = this.server;
    if (server) {
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  setPeers(peers: Map<NodeId, string>): void {
    for (const [id, addr] of peers) {
      if (id === this.id) continue;
      const p = this.peerState(id);
      p.addr = addr;
      this.ensureDialing(p);
    }
    for (const p of this.peers.values()) {
      if (peers.has(p.id) || p.addr === undefined) continue;
      p.addr = undefined;
      for (const c of CHANNELS) {
        clearTimeout(p[c].retryTimer);
        p[c].retryTimer = undefined;
      }
      for (const l of linksOf(p)) l.ws.close(CLOSE_REMOVED, 'removed from the cluster');
    }
  }

  isConnected(peer: NodeId): boolean {
    const p = this.peers.get(peer);
    return p !== undefined && this.sendLink(p.bulk) !== undefined;
  }

  /** Closes the current link to `peer` (it redials as after any link loss). For tests and operators. */
  dropLink(peer: NodeId): void {
    const p = this.peers.get(peer);
    if (p) for (const l of linksOf(p)) this.closeLink(l, CLOSE_DEAD, 'dropped');
  }

  /** Connections refused for failed authentication, whatever peer they claimed to be. */
  get authFailures(): number {
    return this.totalAuthFailures;
  }

  send(m: Message): void {
    const p = this.peerState(m.to);
    const payload = payloadBytesOf(m);
    // the peer counts as reachable while its bulk link is up (isConnected, linkDown): without it a
    // message is dropped even if a control link has not noticed the loss yet
    const bulk = this.sendLink(p.bulk);
    if (!bulk) return this.drop(p, 'link_down');
    const link = (payload === 0 && CONTROL_MESSAGES.has(m.type) ? this.sendLink(p.control) : undefined) ?? bulk;
    const limit = payload > 0 ? this.cfg.maxInflightBytes : this.cfg.maxInflightBytes + this.cfg.controlReserveBytes;
    // An idle link takes any one message, so an entry larger than the cap still gets through.
    if (link.inflight > 0 && link.inflight + payload > limit) return this.drop(p, 'backpressure');
    p.sentMsgs++;
    this.writeFrame(link, { t: 'raft', msg: m }).catch(() => undefined);
  }

  async sendSnapshot(to: NodeId, meta: SnapshotMeta, source: SnapshotSource): Promise<SnapshotSendResult> {
    const p = this.peerState(to);
    const link = this.sendLink(p.bulk);
    if (!link) throw new TransportError('link_down', `no link to ${to}`);
    if (p.snapshotOut) throw new TransportError('busy', `a snapshot to ${to} is already streaming`);
    const sender = new SnapshotSender((f) => this.writeFrame(link, f), to, {
      chunkBytes: this.cfg.snapshotChunkBytes,
      windowBytes: this.cfg.snapshotWindowBytes,
      stallMs: this.cfg.snapshotStallMs,
      bytesPerSecond: this.cfg.snapshotBytesPerSecond,
    });
    p.snapshotOut = { link, sender };
    try {
      return await sender.run(meta, source);
    } finally {
      p.snapshotOut = undefined;
    }
  }

  request(to: NodeId, kind: string, body: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    const p = this.peers.get(to);
    // a small request (a read barrier, an admin call) does not wait behind forwarded uploads
    const bulk = p && this.sendLink(p.bulk);
    if (!p || !bulk) return Promise.reject(new TransportError('link_down', `no link to ${to}`));
    const link = (body.byteLength <= CONTROL_BODY_BYTES ? this.sendLink(p.control) : undefined) ?? bulk;
    if (link.inflight > 0 && link.inflight + body.byteLength > this.cfg.maxInflightBytes) {
      return Promise.reject(new TransportError('backpressure', `in-flight cap towards ${to} reached`));
    }
    return this.pending.open(to, kind, timeoutMs, (id) => this.writeFrame(link, { t: 'req', id, kind, body }));
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
    for (const p of this.peers.values()) {
      const stats: LinkStats = {
        connected: this.isConnected(p.id),
        inflightBytes: p.bulk.link ? Math.max(p.bulk.link.inflight, p.bulk.link.ws.bufferedAmount) : 0,
        sentMsgs: p.sentMsgs,
        droppedMsgs: p.droppedMsgs,
        reconnects: p.reconnects,
        authFailures: p.authFailures,
      };
      if (p.lastContact !== undefined) stats.lastContactMs = now - p.lastContact;
      out.set(p.id, stats);
    }
    return out;
  }

  // ---- links -------------------------------------------------------------------------------------

  private peerState(id: NodeId): PeerState {
    let p = this.peers.get(id);
    if (!p) {
      p = {
        id, addr: undefined, bulk: newChannelState(), control: newChannelState(), everUp: false,
        sentMsgs: 0, droppedMsgs: 0, reconnects: 0, authFailures: 0, lastContact: undefined, snapshotOut: undefined,
        snapshotInLink: undefined, replacing: false,
      };
      this.peers.set(id, p);
    }
    return p;
  }

  private ensureDialing(p: PeerState): void {
    for (const channel of CHANNELS) this.ensureDialingChannel(p, channel);
  }

  private ensureDialingChannel(p: PeerState, channel: Channel): void {
    const c = p[channel];
    if (this.stopped || !this.server || p.replacing || p.addr === undefined || c.link || c.dialing || c.retryTimer) return;
    // First retry is immediate; then 50 ms doubling to 1 s, each delay jittered to 50–100 % of its value.
    const ceiling = Math.min(this.cfg.reconnectMaxMs, this.cfg.reconnectBaseMs * 2 ** (c.attempt - 1));
    const delay = c.attempt === 0 ? 0 : ceiling * (0.5 + Math.random() / 2);
    c.attempt++;
    c.retryTimer = setTimeout(() => {
      c.retryTimer = undefined;
      if (this.stopped || c.link || p.addr === undefined) return;
      c.dialing = true;
      this.dial(p, p.addr, channel)
        .catch((err: Error) => this.cfg.logger?.debug({ peer: p.id, channel, err: err.message }, 'raft dial failed'))
        .finally(() => {
          c.dialing = false;
          this.ensureDialingChannel(p, channel);
        });
    }, delay);
  }

  /** Client side of the handshake: challenge → auth → welcome. Resolves once the link is adopted. */
  private dial(p: PeerState, addr: string, channel: Channel): Promise<void> {
    const c = p[channel];
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(`ws://${addr}${CHANNEL_PATHS[channel]}`, {
        perMessageDeflate: false,
        maxPayload: this.cfg.maxFrameBytes,
        handshakeTimeout: this.cfg.handshakeTimeoutMs,
        generateMask: ZERO_MASK,
      });
      c.dialSocket = ws;
      const clientNonce = newNonce();
      let serverNonce: string | undefined;
      let settled = false;
      const finish = (err?: Error, authFailure?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (c.dialSocket === ws) c.dialSocket = undefined;
        ws.off('message', onMessage);
        ws.off('close', onClose);
        if (authFailure) this.countAuthFailure(p.id, authFailure);
        if (err) {
          ws.on('error', () => undefined);
          ws.terminate();
          reject(err);
        } else resolve();
      };
      const timer = setTimeout(() => finish(new Error('handshake timeout'), 'handshake_timeout'), this.cfg.handshakeTimeoutMs);
      ws.on('upgrade', (res) => res.socket.setNoDelay(true));
      ws.on('open', () => setMaxFrameBytes(ws, HANDSHAKE_FRAME_BYTES));
      ws.on('error', (err) => finish(err));
      const onClose = () => finish(new Error('closed during handshake'));
      ws.on('close', onClose);
      const onMessage = (data: RawData) => {
        const f = this.decodeOrNull(data);
        if (f?.t === 'challenge' && serverNonce === undefined) {
          if (f.cluster !== this.cfg.clusterId || f.id !== p.id) {
            return finish(new Error(`peer at ${addr} is ${f.id}@${f.cluster}, expected ${p.id}@${this.cfg.clusterId}`), 'wrong_peer');
          }
          serverNonce = f.nonce;
          const t = this.transcript(this.id, p.id, serverNonce, clientNonce, this.incarnation);
          ws.send(encodeFrame({ t: 'auth', cluster: this.cfg.clusterId, from: this.id, to: p.id, nonce: clientNonce, incarnation: this.incarnation, mac: handshakeMac(this.secret, 'client', t) }));
        } else if (f?.t === 'welcome' && serverNonce !== undefined) {
          const t = this.transcript(this.id, p.id, serverNonce, clientNonce, f.incarnation);
          if (!macMatches(this.secret, 'server', t, f.mac)) return finish(new Error(`${p.id} failed to prove the secret`), 'bad_mac');
          finish();
          this.adopt(p.id, ws, this.id, f.incarnation, channel);
        } else if (f?.t === 'deny' && f.code === REMOVED) {
          finish(new Error(`${p.id} refused us: ${f.message}`));
          this.cfg.raft?.reportRemoved(p.id);
        } else if (f?.t === 'deny') {
          finish(new Error(`${p.id} refused us: ${f.code} ${f.message}`), f.code);
        } else {
          finish(new Error(`unexpected frame during handshake with ${p.id}`), 'protocol');
        }
      };
      ws.on('message', onMessage);
    });
  }

  /** Server side of the handshake: send a challenge, verify the dialler's auth, answer with welcome. */
  private acceptInbound(ws: WebSocket, channel: Channel): void {
    ws.on('error', () => undefined);
    setMaxFrameBytes(ws, HANDSHAKE_FRAME_BYTES);
    if (this.stopped) return ws.terminate();
    const serverNonce = newNonce();
    let done = false;
    const refuse = (claimed: NodeId | undefined, code: string, message: string) => {
      done = true;
      clearTimeout(timer);
      this.countAuthFailure(claimed, code);
      ws.removeAllListeners('message');
      ws.send(encodeFrame({ t: 'deny', code, message }), () => ws.close(CLOSE_AUTH, code));
    };
    const timer = setTimeout(() => refuse(undefined, 'handshake_timeout', 'no auth frame in time'), this.cfg.handshakeTimeoutMs);
    ws.on('close', () => {
      if (!done) refuse(undefined, 'closed_unauthenticated', 'closed before authenticating');
    });
    ws.once('message', (data) => {
      if (done) return;
      const f = this.decodeOrNull(data);
      if (f?.t !== 'auth') return refuse(undefined, 'protocol', 'expected an auth frame');
      if (f.cluster !== this.cfg.clusterId) return refuse(f.from, 'wrong_cluster', `this is cluster ${this.cfg.clusterId}`);
      if (f.to !== this.id || f.from === this.id) return refuse(f.from, 'wrong_peer', `this is node ${this.id}`);
      const claimed = this.transcript(f.from, this.id, serverNonce, f.nonce, f.incarnation);
      if (!macMatches(this.secret, 'client', claimed, f.mac)) return refuse(f.from, 'bad_mac', 'authentication failed');
      if (this.cfg.raft?.isRemoved(f.from)) {
        // not an authentication failure: a genuine former member, told why so it stops trying
        done = true;
        clearTimeout(timer);
        ws.removeAllListeners('message');
        ws.send(encodeFrame({ t: 'deny', code: REMOVED, message: `${f.from} was removed from cluster ${this.cfg.clusterId}` }), () => ws.close(CLOSE_AUTH, REMOVED));
        return;
      }
      done = true;
      clearTimeout(timer);
      const mine = this.transcript(f.from, this.id, serverNonce, f.nonce, this.incarnation);
      ws.send(encodeFrame({ t: 'welcome', incarnation: this.incarnation, mac: handshakeMac(this.secret, 'server', mine) }));
      this.adopt(f.from, ws, f.from, f.incarnation, channel);
    });
    ws.send(encodeFrame({ t: 'challenge', cluster: this.cfg.clusterId, id: this.id, nonce: serverNonce }));
  }

  private transcript(client: NodeId, server: NodeId, serverNonce: string, clientNonce: string, incarnation: string): HandshakeTranscript {
    return { cluster: this.cfg.clusterId, client, server, serverNonce, clientNonce, incarnation };
  }

  /**
   * Makes an authenticated socket a link to `peer`. With a link already present: a different peer
   * incarnation means the old link goes to a dead process (linkDown, then linkUp for the new one); the
   * same incarnation means both sides dialled: the new socket becomes a spare (see below).
   */
  private adopt(peer: NodeId, ws: WebSocket, dialledBy: NodeId, peerIncarnation: string, channel: Channel): void {
    if (this.stopped) return ws.terminate();
    const p = this.peerState(peer);
    const c = p[channel];
    const link = new Link(peer, ws, dialledBy, peerIncarnation, channel);
    setMaxFrameBytes(ws, this.cfg.maxFrameBytes);
    ws.on('message', (data) => this.onData(link, data));
    ws.on('pong', () => this.touch(link));
    ws.on('close', () => this.linkClosed(link));
    ws.on('error', (err) => {
      this.cfg.logger?.debug({ peer, err: err.message }, 'raft link error');
      ws.terminate();
    });
    link.pingTimer = setInterval(() => this.keepAlive(link), this.cfg.pingIntervalMs);
    this.touch(link);
    c.attempt = 0;
    clearTimeout(c.retryTimer);
    c.retryTimer = undefined;

    const old = c.link;
    if (old && old.peerIncarnation === peerIncarnation) {
      // Both sides dialled. Each side keeps sending on the link it adopted first; only the smaller id
      // closes duplicates, so the bigger id's current link may be closed under it, and it then
      // promotes its spare (the smaller id's choice). Frames on a spare are still delivered.
      c.spares.add(link);
      if (this.id < peer) this.scheduleRetire(p, c, link);
      this.cfg.logger?.debug({ peer, dialledBy, channel }, 'raft duplicate link kept as spare');
      return;
    }
    const stale = linksOf(p).filter((l) => l.peerIncarnation !== peerIncarnation);
    if (stale.length > 0) {
      // The peer restarted: every link of its old incarnation, on either channel, went to a dead process.
      p.replacing = true;
      for (const l of stale) this.closeLink(l, CLOSE_DUPLICATE, 'peer restarted');
      p.replacing = false;
    }
    c.link = link;
    if (channel === 'bulk') {
      if (p.everUp) p.reconnects++;
      p.everUp = true;
      this.cfg.logger?.info({ peer, dialledBy }, 'raft link up');
      this.cfg.metrics?.linkUp?.(peer);
      this.emitUnlessStopped('linkUp', peer);
    } else this.cfg.logger?.debug({ peer, dialledBy }, 'raft control link up');
    // a channel whose old link was closed above dials the new incarnation
    this.ensureDialing(p);
  }

  /** Closes a duplicate after DUPLICATE_GRACE_MS, or later while a snapshot still streams on it. */
  private scheduleRetire(p: PeerState, c: ChannelState, link: Link): void {
    link.retireTimer = setTimeout(() => {
      if (link.closed || c.link === link) return;
      if (p.snapshotOut?.link === link || p.snapshotInLink === link) return this.scheduleRetire(p, c, link);
      link.ws.close(CLOSE_DUPLICATE, 'duplicate link');
    }, DUPLICATE_GRACE_MS);
  }

  /** The link to send on: the current one while open, else an open spare, which becomes current. */
  private sendLink(c: ChannelState): Link | undefined {
    if (c.link && c.link.ws.readyState === WebSocket.OPEN) return c.link;
    const spare = [...c.spares].find((l) => l.ws.readyState === WebSocket.OPEN);
    if (!spare || !c.link) {
      if (c.link) this.abandonSoon(c.link);
      return undefined;
    }
    c.spares.delete(spare);
    c.spares.add(c.link);
    c.link = spare;
    return spare;
  }

  /**
   * A current link that is closing and has no open spare carries nothing more, but its 'close' event waits
   * for the peer to finish the close handshake — up to ws's 30 s close timeout when the peer does not
   * answer — and until then the peer would be neither reported down nor redialled. Its loss is processed
   * on the next turn instead (not synchronously: sendLink runs inside senders and isConnected).
   */
  private abandonSoon(link: Link): void {
    if (link.abandoning || link.ws.readyState === WebSocket.OPEN) return;
    link.abandoning = true;
    setImmediate(() => {
      if (link.closed || link.ws.readyState === WebSocket.OPEN) return;
      link.ws.terminate();
      this.linkClosed(link);
    });
  }

  /** Closes a link now and processes its loss synchronously (the ws 'close' event comes later). */
  private closeLink(link: Link, code: number, reason: string): void {
    link.ws.close(code, reason);
    link.ws.terminate();
    this.linkClosed(link);
  }

  private keepAlive(link: Link): void {
    if (Date.now() - link.lastRecv > this.cfg.deadAfterMs) {
      this.cfg.logger?.info({ peer: link.peer }, 'raft link silent: closing');
      link.ws.close(CLOSE_DEAD, 'no traffic');
      link.ws.terminate();
      return;
    }
    link.ws.ping();
  }

  private touch(link: Link): void {
    link.lastRecv = Date.now();
    this.peerState(link.peer).lastContact = link.lastRecv;
  }

  private linkClosed(link: Link): void {
    if (link.closed) return;
    link.closed = true;
    clearInterval(link.pingTimer);
    clearTimeout(link.retireTimer);
    const p = this.peerState(link.peer);
    const c = p[link.channel];
    c.spares.delete(link);
    if (p.snapshotOut?.link === link) p.snapshotOut.sender.fail(new TransportError('link_lost', `link to ${link.peer} closed`));
    if (p.snapshotInLink === link) p.snapshotInLink = undefined;
    if (c.link !== link) return;
    const spare = [...c.spares].find((l) => l.ws.readyState === WebSocket.OPEN);
    if (spare) {
      // The other side closed the duplicate we were sending on: carry on with the one it kept.
      c.spares.delete(spare);
      c.link = spare;
      return;
    }
    c.link = undefined;
    if (link.channel === 'bulk') return this.peerLost(p);
    // requests sent on the control link will not be answered on it: their callers retry at once
    this.pending.linkLost(p.id);
    this.ensureDialingChannel(p, 'control');
  }

  private peerLost(p: PeerState): void {
    this.pending.linkLost(p.id);
    void this.inbox.abort(p.id);
    this.cfg.logger?.info({ peer: p.id }, 'raft link down');
    this.cfg.metrics?.linkDown?.(p.id);
    this.emitUnlessStopped('linkDown', p.id);
    this.ensureDialing(p);
  }

  // ---- frames ------------------------------------------------------------------------------------

  /**
   * Small frames go to the socket at once. Large ones (and entry-carrying raft frames while large ones
   * wait, so appends stay in order) go through the bulk lane: one at a time, the next only once the
   * previous reached the kernel. A heartbeat or vote thus waits behind at most one large frame in user
   * space, not behind the whole in-flight window. Resolves once the frame reached the kernel.
   */
  private writeFrame(link: Link, f: Frame): Promise<void> {
    if (link.closed) return Promise.reject(new TransportError('link_lost', `link to ${link.peer} closed`));
    // the payloads are not copied here: a large frame is copied one part at a time as it is written
    const segments = encodeFrameSegments(f);
    const size = segmentsLength(segments);
    link.inflight += size;
    const ordered = f.t === 'raft' && (f.msg.entries?.length ?? 0) > 0;
    const bulk = size > BULK_FRAME_BYTES || (ordered && (link.bulkWriting || link.bulkQueue.length > 0));
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        link.inflight -= size;
        if (err) reject(new TransportError('link_lost', `link to ${link.peer} closed: ${err.message}`));
        else resolve();
      };
      if (!bulk) return this.rawSend(link, joinSegments(segments, size), done);
      link.bulkQueue.push({ segments, size, done });
      this.pumpBulk(link);
    });
  }

  private rawSend(link: Link, buf: Buffer, done: (err?: Error) => void): void {
    this.corkUntilNextTick(link);
    link.ws.send(buf, { binary: true }, done);
  }

  /**
   * Writes the bulk queue one frame at a time. A frame larger than PART_BYTES goes as `part` frames, each
   * written only once the previous one reached the kernel: a heartbeat sent meanwhile goes between two
   * parts, behind at most one part (plus what the kernel holds) instead of behind a whole 16 MiB append
   * on the same TCP stream.
   */
  private pumpBulk(link: Link): void {
    if (link.bulkWriting) return;
    const next = link.bulkQueue.shift();
    if (!next) return;
    link.bulkWriting = true;
    const finish = (err?: Error): void => {
      link.bulkWriting = false;
      next.done(err);
      this.pumpBulk(link);
    };
    if (next.size <= PART_BYTES) return this.rawSend(link, joinSegments(next.segments, next.size), finish);
    const id = ++link.partSeq;
    const cursor = new SegmentCursor(next.segments);
    const writePart = (offset: number): void => {
      if (link.closed) return finish(new Error('link closed'));
      const end = Math.min(offset + PART_BYTES, next.size);
      const last = end === next.size;
      const data = cursor.take(end - offset);
      const part: FrameOf<'part'> = offset === 0 ? { t: 'part', id, last, data, total: next.size } : { t: 'part', id, last, data };
      // one buffer per link: the next part is encoded only from this one's write callback, once ws and
      // the kernel are done with it
      link.partScratch ??= Buffer.allocUnsafeSlow(PART_SCRATCH_BYTES);
      this.rawSend(link, encodePartInto(link.partScratch, part), (err) => {
        if (err || last) finish(err);
        else writePart(end);
      });
    };
    writePart(0);
  }

  /** Reassembles a large frame from its parts (they arrive in order: one link, one bulk lane). */
  private onPart(link: Link, f: FrameOf<'part'>): void {
    if (link.partId !== f.id) {
      link.partId = f.id;
      link.parts = [];
      link.partAt = 0;
      // one allocation, filled as parts arrive: no whole-frame copy at the end (a 45 MB Buffer.concat
      // held this loop ~80 ms); its pages are touched part by part, spread over the transfer
      link.partBuf = f.total !== undefined && f.total <= this.cfg.maxFrameBytes ? Buffer.allocUnsafe(f.total) : undefined;
    }
    const buf = link.partBuf;
    if (buf) {
      if (link.partAt + f.data.byteLength > buf.length) {
        this.cfg.logger?.warn({ peer: link.peer, total: buf.length }, 'frame parts exceed the size the first part announced; frame dropped');
        return this.resetParts(link);
      }
      buf.set(f.data, link.partAt);
      link.partAt += f.data.byteLength;
    } else link.parts.push(f.data);
    if (!f.last) return;
    const whole = buf ? (link.partAt === buf.length ? buf : undefined) : Buffer.concat(link.parts);
    this.resetParts(link);
    if (!whole) {
      this.cfg.logger?.warn({ peer: link.peer }, 'frame parts fall short of the size the first part announced; frame dropped');
      return;
    }
    this.onData(link, whole);
  }

  private resetParts(link: Link): void {
    link.parts = [];
    link.partBuf = undefined;
    link.partAt = 0;
    link.partId = undefined;
  }

  /**
   * A Ready batch sends many small frames in one synchronous run; corking the socket until the next
   * tick turns them into one writev instead of a syscall per frame. Uses ws's underlying socket
   * (`_socket`, stable across ws 7–8); without it frames are simply written one by one.
   */
  private corkUntilNextTick(link: Link): void {
    if (link.corked) return;
    const socket = (link.ws as unknown as { _socket?: Socket })._socket;
    if (!socket || typeof socket.cork !== 'function') return;
    link.corked = true;
    socket.cork();
    process.nextTick(() => {
      link.corked = false;
      socket.uncork();
    });
  }

  private onData(link: Link, data: RawData): void {
    this.touch(link);
    const f = this.decodeOrNull(data);
    // The peer is authenticated and spoke our version during the handshake: a frame we cannot read is
    // one bad message (dropped, like a lost one), not a reason to cut the link and trigger elections.
    if (!f) return;
    switch (f.t) {
      case 'part':
        return this.onPart(link, f);
      case 'raft':
        return this.onRaft(link, f.msg);
      case 'req':
        return void this.onRequest(link, f);
      case 'res':
      case 'err':
        return this.onResponse(link, f);
      case 'snapOffer':
        this.peerState(link.peer).snapshotInLink = link;
        return void this.inbox.onOffer(link.peer, f, (r) => void this.writeFrame(link, r).catch(() => undefined));
      case 'snapChunk':
        return this.inbox.onChunk(link.peer, f);
      case 'snapEnd':
        return this.inbox.onEnd(link.peer, f);
      case 'snapAccept':
      case 'snapAck':
      case 'snapDone': {
        const out = this.peerState(link.peer).snapshotOut;
        if (out && out.sender.sid === f.sid) out.sender.onFrame(f);
        return;
      }
      default:
        link.ws.close(CLOSE_PROTOCOL, `unexpected ${f.t} frame`);
    }
  }

  private onRaft(link: Link, m: Message): void {
    // The link's peer id was authenticated; a message claiming another sender is not believed.
    if (m.from !== link.peer || m.to !== this.id) {
      this.cfg.logger?.warn({ peer: link.peer, from: m.from, to: m.to }, 'raft message with foreign from/to dropped');
      return;
    }
    this.emitUnlessStopped('message', m);
  }

  private async onRequest(link: Link, f: FrameOf<'req'>): Promise<void> {
    const handler = this.handlers.get(f.kind);
    let reply: Frame;
    if (!handler) {
      reply = { t: 'err', id: f.id, code: 'no_handler', message: `no handler for '${f.kind}' on ${this.id}` };
    } else {
      try {
        reply = { t: 'res', id: f.id, body: await handler(link.peer, f.body) };
      } catch (err) {
        const e = err as { code?: unknown; message?: unknown };
        reply = { t: 'err', id: f.id, code: typeof e.code === 'string' ? e.code : 'internal', message: String(e.message ?? err) };
      }
    }
    // Answer on the link we send on now (the one the request came in on may be a retiring duplicate): a
    // small answer on the control channel, so a read barrier's answer does not wait behind uploads.
    const p = this.peerState(link.peer);
    const small = reply.t === 'err' || reply.body.byteLength <= CONTROL_BODY_BYTES;
    const out = (small ? this.sendLink(p.control) : undefined) ?? this.sendLink(p.bulk) ?? link;
    await this.writeFrame(out, reply).catch(() => undefined);
  }

  private onResponse(link: Link, f: FrameOf<'res'> | FrameOf<'err'>): void {
    if (f.t === 'res') this.pending.resolve(f.id, link.peer, f.body);
    else this.pending.reject(f.id, link.peer, new RemoteError(f.code, f.message, link.peer));
  }

  private decodeOrNull(data: RawData): Frame | null {
    try {
      return decodeFrame(rawToBuffer(data));
    } catch (err) {
      this.cfg.logger?.warn({ err: (err as Error).message }, 'undecodable raft frame');
      return null;
    }
  }

  private drop(p: PeerState, reason: 'link_down' | 'backpressure'): void {
    p.droppedMsgs++;
    this.cfg.raft?.reportUnreachable(p.id, reason);
  }

  private countAuthFailure(claimed: NodeId | undefined, reason: string): void {
    this.totalAuthFailures++;
    if (claimed !== undefined && this.peers.has(claimed)) this.peers.get(claimed)!.authFailures++;
    this.cfg.logger?.warn({ peer: claimed, reason }, 'raft link authentication failed');
    this.cfg.metrics?.authFailure?.(claimed, reason);
  }

  private emitUnlessStopped<K extends keyof TransportEvents>(event: K, ...args: TransportEvents[K]): void {
    if (!this.stopped) (this.emit as (e: K, ...a: TransportEvents[K]) => boolean)(event, ...args);
  }
}

function linksOf(p: PeerState): Link[] {
  const out: Link[] = [];
  for (const c of CHANNELS) {
    if (p[c].link) out.push(p[c].link!);
    out.push(...p[c].spares);
  }
  return out;
}


/**
 * Client frames are sent with an all-zero mask, which ws (both ends) recognises and does not apply.
 * Masking exists so browser scripts cannot shape bytes seen by intermediaries; these links carry only
 * HMAC-authenticated peers on the raft port, and ws's JavaScript masking loop (without the optional
 * native bufferutil) holds the consensus event loop ~50 ms per 16 MiB append on each end.
 */
/** The deny code a former member's link is refused with. */
const REMOVED = 'removed';

function ZERO_MASK(mask: Buffer): void {
  mask.fill(0);
}

// ws has no public per-connection frame limit; its receiver's `_maxPayload` is checked per frame.
function setMaxFrameBytes(ws: WebSocket, bytes: number): void {
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = bytes;
}

function joinSegments(segments: Uint8Array[], size: number): Buffer {
  if (segments.length === 1) return Buffer.from(segments[0]!.buffer, segments[0]!.byteOffset, segments[0]!.byteLength);
  return Buffer.concat(segments, size);
}

/** Reads consecutive slices of a frame's segments; a slice within one segment is a view, not a copy. */
class SegmentCursor {
  private i = 0;
  private at = 0;
  constructor(private readonly segments: Uint8Array[]) {}

  take(n: number): Uint8Array {
    const pieces: Uint8Array[] = [];
    let left = n;
    while (left > 0 && this.i < this.segments.length) {
      const seg = this.segments[this.i]!;
      const k = Math.min(left, seg.byteLength - this.at);
      pieces.push(seg.subarray(this.at, this.at + k));
      this.at += k;
      left -= k;
      if (this.at === seg.byteLength) {
        this.i++;
        this.at = 0;
      }
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, n - left);
  }
}

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

