// Real peers in child processes: what the driver sees when a peer is SIGKILLed or SIGSTOPped.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message } from '../raft/message.js';
import { Harness, heartbeat, waitFor } from './test-helpers.js';
import type { WsTransport } from './ws-transport.js';

const PEER_MAIN = fileURLToPath(new URL('./fixtures/peer-main.js', import.meta.url));
let stagingRoot = '';

async function spawnPeer(id: string, peers: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [PEER_MAIN], {
    env: { ...process.env, PEER_ID: id, PEER_SECRET: 'test-secret', PEER_PEERS: peers, PEER_PORT: String(port), PEER_STAGING: join(stagingRoot, id) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const bound = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`peer exited early with ${code}`)));
  });
  return { child, port: bound };
}

describe('WsTransport against a peer process', function () {
  this.timeout(30_000);
  const h = new Harness();
  const children: ChildProcess[] = [];
  before(async () => {
    stagingRoot = await mkdtemp(join(tmpdir(), 'transport-peers-'));
  });
  after(() => rm(stagingRoot, { recursive: true, force: true }));
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    children.length = 0;
    await h.cleanup();
  });

  async function linkedTo(a: WsTransport): Promise<{ child: ChildProcess; port: number }> {
    const peer = await spawnPeer('p', `a=127.0.0.1:${a.port}`);
    children.push(peer.child);
    a.setPeers(new Map([['p', `127.0.0.1:${peer.port}`]]));
    await waitFor('link to the peer process', () => a.isConnected('p'));
    return peer;
  }

  it('sees linkDown within milliseconds of a SIGKILL, and relinks when the peer restarts', async () => {
    const a = await h.node('a', { reconnectMaxMs: 200 });
    const { child, port } = await linkedTo(a);
    const got: Message[] = [];
    a.on('message', (m) => got.push(m));
    a.send(heartbeat('a', 'p', 3));
    await waitFor('echoed heartbeat', () => got.length === 1);
    expect(Buffer.from(await a.request('p', 'echo', Buffer.from('hi'), 2000)).toString()).to.equal('hi');

    const downs: number[] = [];
    a.on('linkDown', () => downs.push(performance.now()));
    const killedAt = performance.now();
    child.kill('SIGKILL');
    await waitFor('linkDown after SIGKILL', () => downs.length === 1, 5000);
    console.log(`      linkDown ${(downs[0]! - killedAt).toFixed(1)} ms after SIGKILL`);

    const restarted = await spawnPeer('p', `a=127.0.0.1:${a.port}`, port);
    children.push(restarted.child);
    const t0 = performance.now();
    await waitFor('relinked to the restarted peer', () => a.isConnected('p'), 5000);
    console.log(`      relinked ${(performance.now() - t0).toFixed(1)} ms after the restarted peer listened`);
    expect(a.linkStats().get('p')!.reconnects).to.equal(1);
  });

  it('declares a SIGSTOPped peer down after deadAfterMs and relinks after SIGCONT', async () => {
    const a = await h.node('a', { pingIntervalMs: 50, deadAfterMs: 300, reconnectMaxMs: 200 });
    const { child } = await linkedTo(a);
    const downs: number[] = [];
    a.on('linkDown', () => downs.push(performance.now()));
    const stoppedAt = performance.now();
    child.kill('SIGSTOP');
    try {
      await waitFor('linkDown for a frozen peer', () => downs.length === 1, 5000);
      console.log(`      linkDown ${(downs[0]! - stoppedAt).toFixed(0)} ms after SIGSTOP (deadAfterMs 300)`);
    } finally {
      child.kill('SIGCONT');
    }
    await waitFor('relinked after SIGCONT', () => a.isConnected('p'), 10_000);
  });
});

