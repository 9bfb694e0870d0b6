// The Raft port under hostile input, against a real 3-node cluster (real processes, loopback sockets):
// garbage, oversized and unauthenticated frames, a replayed handshake, another cluster's secret, and
// stale or malformed frames on an authenticated link. After each attack the cluster must keep its leader
// and term (no election was caused) and still commit writes.

import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import WebSocket from 'ws';
import { handshakeMac, newNonce } from '../../src/transport/auth.js';
import { decodeFrame, encodeFrame, type Frame } from '../../src/transport/codec.js';
import { Cluster, dumpOnFailure, freePort, NodeProcess, pollUntil } from '../cluster/harness.js';
import { makeCover } from '../cluster/fixtures.js';

const CLUSTER_ID = 'stegocluster';

interface Conn {
  ws: WebSocket;
  frames: Frame[];
  closed: Promise<{ code: number; reason: string }>;
  next(t: Frame['t'], timeoutMs?: number): Promise<Frame>;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/raft`, { perMessageDeflate: false, maxPayload: 1 << 20 });
    const frames: Frame[] = [];
    const waiters: (() => void)[] = [];
    ws.on('message', (data) => {
      try {
        frames.push(decodeFrame(data as Buffer));
      } catch {
        // the node never sends undecodable frames; ignore
      }
      for (const w of waiters.splice(0)) w();
    });
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    const next = (t: Frame['t'], timeoutMs = 5_000) =>
      new Promise<Frame>((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no ${t} frame within ${timeoutMs} ms (got ${frames.map((f) => f.t)})`)), timeoutMs);
        const check = () => {
          const f = frames.find((x) => x.t === t);
          if (f) {
            clearTimeout(timer);
            res(f);
          } else waiters.push(check);
        };
        check();
      });
    ws.once('open', () => resolve({ ws, frames, closed, next }));
    ws.once('unexpected-response', () => reject(new Error('unexpected HTTP response')));
    ws.once('error', reject);
  });
}

function authFrame(secret: string, from: string, to: string, serverNonce: string, cluster = CLUSTER_ID): Frame {
  const nonce = newNonce();
  const incarnation = `fuzz-${randomBytes(4).toString('hex')}`;
  const mac = handshakeMac(Buffer.from(secret), 'client', { cluster, client: from, server: to, serverNonce, clientNonce: nonce, incarnation });
  return { t: 'auth', cluster, from, to, nonce, incarnation, mac };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, rej) => setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms))]);
}

describe('fuzz: the Raft port refuses what it must without disturbing the cluster', function () {
  this.timeout(180_000);
  let cluster: Cluster;
  let leader: string;
  let term: number;
  const cover = makeCover(16, 16, 3);

  before(async () => {
    cluster = await Cluster.start({ size: 3, startDeadlineMs: 90_000, logLevel: 'warn' });
    ({ leaderId: leader, term } = await cluster.waitForLeader());
  });
  after(async () => {
    await cluster?.stop();
  });
  afterEach(function () {
    dumpOnFailure(this, cluster);
  });

  /** No election happened (same leader, same term on every node) and a write still commits. */
  async function assertUndisturbed(): Promise<void> {
    const view = await cluster.waitForLeader({ deadlineMs: 5_000 });
    expect(view.leaderId, 'leader').to.equal(leader);
    expect(view.term, 'term').to.equal(term);
    const r = await cluster.putObject(leader, { cover, message: 'still writable' });
    expect(r.status).to.equal(201);
  }

  const raftPort = (id: string) => cluster.node(id).raftPort;
  const follower = () => cluster.allIds().find((id) => id !== leader)!;

  it('closes unauthenticated connections that send garbage, raft frames or text (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ minLength: 0, maxLength: 2048 }),
          fc.constant(encodeFrame({ t: 'raft', msg: { type: 'vote', from: 'n9', to: leader, term: term + 5, logTerm: 99, index: 1e6, commit: 0, reject: false, rejectHint: 0 } })),
          fc.constant(encodeFrame({ t: 'req', id: 1, kind: 'propose', body: new Uint8Array(8) })),
          fc.string({ maxLength: 200 }),
        ),
        async (payload) => {
          const c = await connect(raftPort(leader));
          await c.next('challenge');
          c.ws.send(payload);
          const { code } = await withTimeout(c.closed, 10_000, 'close after a bad first frame');
          // 4401 after a deny, 1002/1007 for protocol errors from ws itself
          expect(code).to.be.oneOf([4401, 1002, 1006, 1007, 1009]);
        },
      ),
      { numRuns: 40, seed: 42 },
    );
    await assertUndisturbed();
  });

  it('refuses a frame larger than the handshake limit before authentication', async () => {
    const c = await connect(raftPort(follower()));
    await c.next('challenge');
    c.ws.send(Buffer.alloc(64 * 1024, 7));
    const { code } = await withTimeout(c.closed, 10_000, 'close after an oversized frame');
    expect(code).to.be.oneOf([1009, 1006, 4401]);
    await assertUndisturbed();
  });

  it('refuses another cluster\'s secret, another cluster id and the wrong target id', async () => {
    for (const make of [
      (n: string) => authFrame('not-the-secret', 'n9', leader, n),
      (n: string) => authFrame(cluster.secret, 'n9', leader, n, 'other-cluster'),
      (n: string) => authFrame(cluster.secret, 'n9', follower(), n),
    ]) {
      const c = await connect(raftPort(leader));
      const ch = (await c.next('challenge')) as Extract<Frame, { t: 'challenge' }>;
      c.ws.send(encodeFrame(make(ch.nonce)));
      const deny = (await c.next('deny')) as Extract<Frame, { t: 'deny' }>;
      expect(deny.code).to.be.oneOf(['bad_mac', 'wrong_cluster', 'wrong_peer']);
      expect((await withTimeout(c.closed, 5_000, 'close after deny')).code).to.equal(4401);
    }
    await assertUndisturbed();
  });

  it('refuses a replayed handshake (the same auth frame on a new connection)', async () => {
    const first = await connect(raftPort(follower()));
    const ch = (await first.next('challenge')) as Extract<Frame, { t: 'challenge' }>;
    const auth = encodeFrame(authFrame(cluster.secret, 'fuzz1', ch.id, ch.nonce));
    first.ws.send(auth);
    await first.next('welcome'); // genuine: accepted once
    first.ws.close();
    const replay = await connect(raftPort(follower()));
    await replay.next('challenge');
    replay.ws.send(auth);
    const deny = (await replay.next('deny')) as Extract<Frame, { t: 'deny' }>;
    expect(deny.code).to.equal('bad_mac');
    await assertUndisturbed();
  });

  it('ignores stale, reordered and malformed frames on an authenticated link', async () => {
    const target = follower();
    const c = await connect(raftPort(target));
    const ch = (await c.next('challenge')) as Extract<Frame, { t: 'challenge' }>;
    c.ws.send(encodeFrame(authFrame(cluster.secret, 'fuzz2', target, ch.nonce)));
    await c.next('welcome');
    const stale = (type: 'app' | 'heartbeat' | 'vote' | 'appResp', t: number, index: number) =>
      encodeFrame({ t: 'raft', msg: { type, from: 'fuzz2', to: target, term: t, logTerm: Math.max(0, t - 1), index, commit: index, reject: false, rejectHint: 0, entries: type === 'app' ? [{ term: t, index: index + 1, type: 'normal', data: new Uint8Array(4) }] : undefined } });
    // messages of old terms, in reverse order, as a delayed and reordered replay of an old leader would be
    for (let t = Math.max(0, term - 1); t >= 0; t--) for (const type of ['app', 'heartbeat', 'appResp', 'vote'] as const) c.ws.send(stale(type, t, 10 - t));
    // a raft message claiming another sender, and one for another node: dropped
    c.ws.send(encodeFrame({ t: 'raft', msg: { type: 'heartbeat', from: leader, to: target, term, logTerm: 0, index: 0, commit: 1e9, reject: false, rejectHint: 0 } }));
    c.ws.send(encodeFrame({ t: 'raft', msg: { type: 'app', from: 'fuzz2', to: 'n77', term: term + 9, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0 } }));
    // malformed frames after authentication (dropped, the link stays)
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), async (junk) => {
      c.ws.send(Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 2]), Buffer.from(junk)]));
    }), { numRuns: 100, seed: 7 });
    await new Promise((r) => setTimeout(r, 500));
    c.ws.close();
    await assertUndisturbed();
  });

  it('a node holding another cluster\'s secret cannot join, vote or disturb the cluster', async () => {
    const http = await freePort();
    const raft = await freePort();
    const members = cluster.allIds().map((id) => `${id}=127.0.0.1:${cluster.node(id).raftPort}`);
    const outsider = new NodeProcess('n9', http, raft, join(cluster.dataRoot, 'outsider'), {
      NODE_ID: 'n9',
      // it believes it is a member of this cluster and campaigns among these voters
      PEERS: [...members, `n9=127.0.0.1:${raft}`].join(','),
      HTTP_PORT: String(http),
      RAFT_PORT: String(raft),
      HTTP_HOST: '127.0.0.1',
      RAFT_HOST: '127.0.0.1',
      DATA_DIR: join(cluster.dataRoot, 'outsider'),
      STEGO_CLUSTER_SECRET: randomBytes(24).toString('hex'),
      STEGO_LOG_LEVEL: 'warn',
    }, 100, []);
    outsider.spawn();
    try {
      await pollUntil('outsider HTTP up', async () => ((await fetch(`${outsider.url}/healthz`)).status === 200 ? true : undefined), { deadlineMs: 15_000 });
      // several election timeouts of campaigning
      await new Promise((r) => setTimeout(r, 3_000));
      const st = (await (await fetch(`${outsider.url}/cluster/status`)).json()) as { leader_id: string | null; term: number };
      expect(st.leader_id, 'the outsider found no leader and won no election').to.equal(null);
      await assertUndisturbed();
      for (const id of cluster.allIds()) {
        const s = await cluster.status(id);
        expect(s.nodes.map((n) => n.id)).to.not.include('n9');
      }
    } finally {
      outsider.killNow();
      await outsider.exited();
    }
  });
});
