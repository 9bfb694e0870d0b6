import { expect } from 'chai';
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { handshakeMac } from './auth.js';
import { decodeFrame, encodeFrame, type Frame, type FrameOf } from './codec.js';
import { RemoteError, TransportError } from './errors.js';
import { Harness, append, heartbeat, waitFor } from './test-helpers.js';
import { makeMessage, type Message } from '../raft/message.js';
import { WsTransport } from './ws-transport.js';

describe('WsTransport links', function () {
  const h = new Harness();
  afterEach(() => h.cleanup());

  it('brings one link up between two nodes and carries messages both ways, entries with binary data intact', async () => {
    const a = await h.node('a');
    const b = await h.node('b');
    const ups: string[] = [];
    a.on('linkUp', (p) => ups.push(`a:${p}`));
    b.on('linkUp', (p) => ups.push(`b:${p}`));
    h.mesh(a, b);
    await h.linked(a, b);
    await waitFor('both linkUp events', () => ups.length === 2);
    expect(ups.sort()).to.deep.equal(['a:b', 'b:a']);

    const atB: Message[] = [];
    const atA: Message[] = [];
    b.on('message', (m) => atB.push(m));
    a.on('message', (m) => atA.push(m));
    const blob = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff);
    a.send(append('a', 'b', [blob, new Uint8Array(0), Uint8Array.of(0, 255)]));
    b.send(makeMessage({ type: 'appResp', from: 'b', to: 'a', term: 1, index: 3, ctx: Uint8Array.of(9, 8, 7) }));
    await waitFor('messages delivered', () => atB.length === 1 && atA.length === 1);

    const entries = atB[0]!.entries!;
    expect(entries.map((e) => e.index)).to.deep.equal([1, 2, 3]);
    expect(Buffer.from(entries[0]!.data).equals(Buffer.from(blob))).to.equal(true);
    expect([...entries[2]!.data]).to.deep.equal([0, 255]);
    expect([...atA[0]!.ctx!]).to.deep.equal([9, 8, 7]);
    expect(atA[0]).to.include({ type: 'appResp', index: 3, reject: false });
    expect(a.linkStats().get('b')).to.include({ connected: true, sentMsgs: 1, droppedMsgs: 0, authFailures: 0 });
  });

  it('keeps exactly one link when both sides dial at once', async () => {
    const a = await h.node('a');
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    // Let any duplicate resolution settle, then check that traffic flows and nobody flapped.
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    for (let i = 0; i < 50; i++) a.send(heartbeat('a', 'b', i + 1));
    await waitFor('50 heartbeats', () => got.length === 50);
    expect(got.map((m) => m.term)).to.deep.equal(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(a.linkStats().get('b')!.reconnects).to.equal(0);
    expect(b.linkStats().get('a')!.reconnects).to.equal(0);
    // After the grace period one socket per channel remains (the smaller id closes the duplicates).
    const inbound = (t: WsTransport) => (t as unknown as { server: { clients: Set<unknown> } }).server.clients.size;
    await waitFor('duplicates retired', () => inbound(a) + inbound(b) === 2, 5000);
    expect(a.isConnected('b') && b.isConnected('a')).to.equal(true);
  });

  it('reports a link stuck closing (the peer never finishes the close handshake) as down at once, and redials', async () => {
    const a = await h.node('a');
    // b does not notice a's silence in the test's time: only a can end the stuck link
    const b = await h.node('b', { deadAfterMs: 60_000 });
    h.mesh(a, b);
    await h.linked(a, b);
    const inbound = (t: WsTransport) => (t as unknown as { server: { clients: Set<unknown> } }).server.clients.size;
    await waitFor('duplicates retired', () => inbound(a) + inbound(b) === 2, 5000);
    type Internals = { peers: Map<string, { bulk: { link?: { ws: WebSocket } } }> };
    const stuck = (a as unknown as Internals).peers.get('b')!.bulk.link!.ws;
    // a's bulk socket reads as CLOSING for good, as when a close frame was sent and the peer never
    // answers it (ws then waits 30 s before giving up), while b goes on sending appends on it, so a's
    // keep-alive (no traffic for deadAfterMs) does not end it either
    Object.defineProperty(stuck, 'readyState', { get: () => WebSocket.CLOSING });
    const chatter = setInterval(() => b.send(append('b', 'a', [Uint8Array.of(1, 2, 3)])), 50);
    try {
      const downs: number[] = [];
      a.on('linkDown', () => downs.push(Date.now()));
      a.send(heartbeat('a', 'b', 7));
      await waitFor('linkDown on a', () => downs.length > 0, 3000);
      const got: Message[] = [];
      b.on('message', (m) => got.push(m));
      await waitFor('a heartbeat reaches b over a new link', () => {
        a.send(heartbeat('a', 'b', 8));
        return got.some((m) => m.term === 8);
      }, 10_000);
    } finally {
      clearInterval(chatter);
    }
  });

  it('meshes five nodes dialling each other at once into exactly one socket per pair, all traffic delivered', async () => {
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const ts = await Promise.all(ids.map((id) => h.node(id)));
    const got = new Map<string, Message[]>(ids.map((id) => [id, []]));
    ts.forEach((t) => t.on('message', (m) => got.get(t.id)!.push(m)));
    const downs: string[] = [];
    ts.forEach((t) => t.on('linkDown', (p) => downs.push(`${t.id}-${p}`)));
    h.mesh(...ts);
    await h.linked(...ts);
    // Traffic during the duplicate-resolution window must not be lost.
    for (let round = 1; round <= 30; round++) {
      for (const t of ts) for (const o of ts) if (t !== o) t.send(heartbeat(t.id, o.id, round));
      await new Promise((r) => setTimeout(r, 100));
    }
    await waitFor('every heartbeat delivered', () => [...got.values()].every((ms) => ms.length === 4 * 30), 10_000);
    const inbound = (t: WsTransport) => (t as unknown as { server: { clients: Set<unknown> } }).server.clients.size;
    // two channels (bulk and control) per pair
    await waitFor('one socket per pair and channel', () => ts.reduce((n, t) => n + inbound(t), 0) === 20, 5000);
    expect(downs).to.deep.equal([]);
  });

  it('refuses a removed member with reason "removed" (not an auth failure), and that member hears it', async () => {
    const told: string[] = [];
    const a = await h.node('a', { raft: { reportUnreachable: () => undefined, isRemoved: (p) => p === 'z', reportRemoved: () => undefined } });
    const z = await h.node('z', { raft: { reportUnreachable: () => undefined, isRemoved: () => false, reportRemoved: (p) => told.push(p) } });
    z.setPeers(new Map([['a', `127.0.0.1:${a.port}`]]));
    await waitFor('z to hear it was removed', () => told.length > 0, 5000);
    expect(told[0]).to.equal('a');
    expect(a.isConnected('z')).to.equal(false);
    expect(a.authFailures).to.equal(0);
  });

  it('refuses and counts a peer with the wrong secret, and one of another cluster', async () => {
    const a = await h.node('a');
    const intruder = await h.node('x', { secret: 'not-the-secret' });
    const foreign = await h.node('y', { clusterId: 'other-cluster' });
    const delivered: Message[] = [];
    a.on('message', (m) => delivered.push(m));
    intruder.setPeers(new Map([['a', `127.0.0.1:${a.port}`]]));
    foreign.setPeers(new Map([['a', `127.0.0.1:${a.port}`]]));
    await waitFor('refusals counted on both sides', () => a.authFailures >= 2 && intruder.authFailures >= 1 && foreign.authFailures >= 1);
    intruder.send(heartbeat('x', 'a'));
    expect(a.isConnected('x')).to.equal(false);
    expect(a.isConnected('y')).to.equal(false);
    expect(intruder.linkStats().get('a')).to.include({ connected: false, droppedMsgs: 1 });
    expect(intruder.linkStats().get('a')!.authFailures).to.be.greaterThan(0);
    expect(delivered).to.have.length(0);
  });

  it('refuses a raw client with a forged MAC, and a replay of a genuine auth frame', async () => {
    const a = await h.node('a');
    const before = a.authFailures;

    // A client that knows the secret answers the challenge and is welcomed.
    const genuine = await rawHandshake(a.port, (challenge) => {
      const t = { cluster: 'stegocluster', client: 'b', server: 'a', serverNonce: challenge.nonce, clientNonce: 'c0ffee', incarnation: 'inc-1' };
      return { t: 'auth', cluster: t.cluster, from: 'b', to: 'a', nonce: t.clientNonce, incarnation: t.incarnation, mac: handshakeMac(Buffer.from('test-secret'), 'client', t) };
    });
    expect(genuine.reply.t).to.equal('welcome');
    genuine.ws.terminate();

    // The same auth frame replayed on a new connection meets a fresh server nonce: refused.
    const replay = await rawHandshake(a.port, () => genuine.sent);
    expect(replay.reply).to.include({ t: 'deny', code: 'bad_mac' });
    expect(await replay.closed).to.equal(4401);

    const forged = await rawHandshake(a.port, () => ({ ...genuine.sent, mac: 'ab'.repeat(32) }));
    expect(forged.reply).to.include({ t: 'deny', code: 'bad_mac' });
    expect(a.authFailures).to.equal(before + 2);
  });

  it('cuts off an unauthenticated client that sends a large frame before the handshake', async () => {
    const a = await h.node('a');
    const before = a.authFailures;
    const ws = new WebSocket(`ws://127.0.0.1:${a.port}/raft`);
    ws.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.on('open', () => ws.send(Buffer.alloc(1 << 20)));
    expect(await closed).to.be.oneOf([1006, 1009]);
    await waitFor('counted', () => a.authFailures === before + 1);
  });

  it('drops an undecodable frame from an authenticated peer without cutting the link', async () => {
    const a = await h.node('a');
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const downs: string[] = [];
    const got: Message[] = [];
    b.on('linkDown', (p) => downs.push(p));
    b.on('message', (m) => got.push(m));
    const internals = a as unknown as { peers: Map<string, { bulk: { link: unknown } }>; writeFrame(link: unknown, f: unknown): Promise<void> };
    await internals.writeFrame(internals.peers.get('b')!.bulk.link, { t: 'raft', msg: { type: 'gossip', from: 'a', to: 'b' } });
    a.send(heartbeat('a', 'b', 5));
    await waitFor('the next message', () => got.length === 1);
    expect(got[0]!.term).to.equal(5);
    expect(downs).to.deep.equal([]);
  });

  it('emits linkDown promptly when the peer dies and relinks when it comes back', async () => {
    const a = await h.node('a', { reconnectMaxMs: 200 });
    let b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const downs: number[] = [];
    const ups: number[] = [];
    a.on('linkDown', () => downs.push(Date.now()));
    a.on('linkUp', () => ups.push(Date.now()));
    const port = b.port;
    const killedAt = Date.now();
    await b.stop();
    await waitFor('linkDown at a', () => downs.length === 1, 2000);
    console.log(`      linkDown ${downs[0]! - killedAt} ms after the peer stopped`);
    expect(a.isConnected('b')).to.equal(false);
    a.send(heartbeat('a', 'b'));
    expect(a.linkStats().get('b')!.droppedMsgs).to.equal(1);

    b = await h.node('b', { listenPort: port, peers: new Map([['a', `127.0.0.1:${a.port}`]]) });
    await waitFor('linkUp again', () => ups.length === 1 && a.isConnected('b'));
    expect(a.linkStats().get('b')!.reconnects).to.equal(1);
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    a.send(heartbeat('a', 'b', 7));
    await waitFor('message on the new link', () => got.length === 1);
  });

  it('detects a silent peer with ping/pong and declares the link down', async () => {
    const a = await h.node('a', { pingIntervalMs: 50, deadAfterMs: 300 });
    const b = await h.node('b', { pingIntervalMs: 10_000, deadAfterMs: 60_000 });
    const proxy = await freezableProxy(b.port);
    try {
      a.setPeers(new Map([['b', `127.0.0.1:${proxy.port}`]]));
      await h.linked(a, b);
      const downs: string[] = [];
      a.on('linkDown', (p) => downs.push(p));
      const frozenAt = Date.now();
      proxy.freeze(); // the TCP connection stays open but nothing crosses it any more, like SIGSTOP
      await waitFor('linkDown for a silent peer', () => downs.length >= 1, 3000);
      console.log(`      silent peer declared down after ${Date.now() - frozenAt} ms (deadAfterMs 300)`);
      expect(downs[0]).to.equal('b');
    } finally {
      proxy.close();
    }
  });

  it('drops entry-carrying messages over the in-flight cap but still passes heartbeats', async () => {
    const a = await h.node('a', { maxInflightBytes: 1 << 20 });
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    const big = new Uint8Array(400 << 10);
    for (let i = 0; i < 10; i++) a.send(append('a', 'b', [big]));
    a.send(heartbeat('a', 'b', 99));
    const stats = a.linkStats().get('b')!;
    expect(stats.droppedMsgs).to.be.greaterThan(0);
    expect(stats.sentMsgs).to.equal(11 - stats.droppedMsgs);
    expect(stats.inflightBytes).to.be.at.most((1 << 20) + (1 << 20));
    await waitFor('heartbeat delivered', () => got.some((m) => m.type === 'heartbeat'));
    await waitFor('all admitted delivered', () => got.length === stats.sentMsgs);
  });

  it('lets a heartbeat overtake queued large appends, while the appends stay in order', async () => {
    const a = await h.node('a', { maxInflightBytes: 64 << 20 });
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    const big = new Uint8Array(4 << 20);
    for (let i = 1; i <= 8; i++) a.send({ ...append('a', 'b', [big]), index: i });
    a.send(append('a', 'b', [Uint8Array.of(1)]));
    a.send(heartbeat('a', 'b', 42));
    await waitFor('all delivered', () => got.length === 10, 20_000);
    const beat = got.findIndex((m) => m.type === 'heartbeat');
    console.log(`      heartbeat arrived as message ${beat + 1} of 10 (after ${beat} of 9 queued appends)`);
    expect(beat).to.be.below(3);
    const appends = got.filter((m) => m.type === 'app');
    expect(appends.map((m) => m.index)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 0]);
  });

  it('carries heartbeats, votes and small RPCs on the control channel while the bulk channel is stalled', async () => {
    const a = await h.node('a', { maxInflightBytes: 64 << 20 });
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    type Chan = { link?: { ws: WebSocket }; spares: Set<{ ws: WebSocket }> };
    const channels = (t: WsTransport, peer: string) => (t as unknown as { peers: Map<string, { bulk: Chan; control: Chan }> }).peers.get(peer)!;
    await waitFor('control links up', () => channels(a, 'b').control.link !== undefined && channels(b, 'a').control.link !== undefined);
    // b stops reading every bulk socket from a, as a receiver busy with a huge append would
    const bulkSockets = (): Socket[] => {
      const c = channels(b, 'a').bulk;
      return [c.link, ...c.spares].flatMap((l) => (l ? [(l.ws as unknown as { _socket: Socket })._socket] : []));
    };
    for (const s of bulkSockets()) s.pause();
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    b.handle('ping', async (_from, body) => body);
    a.send(append('a', 'b', [new Uint8Array(32 << 20)]));
    a.send(heartbeat('a', 'b', 7));
    a.send(makeMessage({ type: 'vote', from: 'a', to: 'b', term: 8 }));
    const answer = await a.request('b', 'ping', Uint8Array.of(1, 2, 3), 5000);
    expect([...answer]).to.deep.equal([1, 2, 3]);
    await waitFor('heartbeat and vote past the stalled append', () => got.length === 2);
    expect(got.map((m) => m.type)).to.deep.equal(['heartbeat', 'vote']);
    for (const s of bulkSockets()) s.resume();
    await waitFor('the append once the bulk channel reads again', () => got.length === 3, 20_000);
    expect(got[2]!.type).to.equal('app');
    expect(got[2]!.entries![0]!.data.byteLength).to.equal(32 << 20);
  });

  it('lets one message larger than the cap through an idle link', async () => {
    const a = await h.node('a', { maxInflightBytes: 64 << 10 });
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    const got: Message[] = [];
    b.on('message', (m) => got.push(m));
    a.send(append('a', 'b', [new Uint8Array(1 << 20)]));
    await waitFor('oversized append delivered', () => got.length === 1);
    expect(a.linkStats().get('b')!.droppedMsgs).to.equal(0);
  });

  it('drops (and counts) messages to a peer without a link', async () => {
    const a = await h.node('a');
    a.send(heartbeat('a', 'nobody'));
    expect(a.linkStats().get('nobody')).to.include({ connected: false, droppedMsgs: 1, sentMsgs: 0 });
  });
});

describe('WsTransport app RPC', function () {
  const h = new Harness();
  afterEach(() => h.cleanup());

  async function pair(): Promise<[WsTransport, WsTransport]> {
    const a = await h.node('a');
    const b = await h.node('b');
    h.mesh(a, b);
    await h.linked(a, b);
    return [a, b];
  }

  it('answers a request with the handler result', async () => {
    const [a, b] = await pair();
    b.handle('echo', async (from, body) => Buffer.concat([Buffer.from(`${from}:`), body]));
    const res = await a.request('b', 'echo', Buffer.from('hello'), 1000);
    expect(Buffer.from(res).toString()).to.equal('a:hello');
  });

  it('propagates a remote error code and message', async () => {
    const [a, b] = await pair();
    b.handle('fail', async () => {
      throw Object.assign(new Error('not the leader'), { code: 'not_leader' });
    });
    const err = await a.request('b', 'fail', new Uint8Array(0), 1000).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RemoteError);
    expect(err).to.include({ code: 'not_leader', message: 'not the leader', peer: 'b' });
    const missing = await a.request('b', 'nope', new Uint8Array(0), 1000).catch((e: unknown) => e);
    expect(missing).to.include({ code: 'no_handler' });
  });

  it('times out a request the handler never answers', async () => {
    const [a, b] = await pair();
    b.handle('hang', () => new Promise(() => undefined));
    const err = await a.request('b', 'hang', new Uint8Array(0), 100).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(TransportError);
    expect(err).to.include({ code: 'timeout' });
  });

  it('rejects pending requests promptly when the link is lost, and requests without a link at once', async () => {
    const [a, b] = await pair();
    b.handle('hang', () => new Promise(() => undefined));
    const pending = a.request('b', 'hang', new Uint8Array(0), 30_000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    a.dropLink('b');
    const err = await pending;
    expect(err).to.include({ code: 'link_lost' });
    expect(Date.now() - t0).to.be.below(5000);
    const none = await a.request('zz', 'x', new Uint8Array(0), 1000).catch((e: unknown) => e);
    expect(none).to.include({ code: 'link_down' });
  });
});

/** A TCP relay whose connections can be frozen: bytes stop flowing but no side sees a close. */
async function freezableProxy(targetPort: number): Promise<{ port: number; freeze(): void; close(): void }> {
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1');
    sockets.push(client, upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Speaks the client side of the handshake by hand: reads the challenge, sends `auth(challenge)`, returns the reply. */
async function rawHandshake(
  port: number,
  auth: (challenge: FrameOf<'challenge'>) => Frame,
): Promise<{ ws: WebSocket; sent: Frame; reply: Frame; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/raft`);
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  const frames: Frame[] = [];
  ws.on('message', (data: Buffer) => frames.push(decodeFrame(data)));
  await waitFor('challenge', () => frames.length === 1);
  const sent = auth(frames[0] as FrameOf<'challenge'>);
  ws.send(encodeFrame(sent));
  await waitFor('reply to auth', () => frames.length === 2);
  return { ws, sent, reply: frames[1]!, closed };
}
