import { expect } from 'chai';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../raft/message.js';
import { RemoteError } from './errors.js';
import { InMemoryNetwork, type InMemoryTransport } from './in-memory.js';
import { append, heartbeat, waitFor } from './test-helpers.js';

describe('InMemoryTransport', function () {
  let dir: string;
  let net: InMemoryNetwork;
  let nodes: Record<string, InMemoryTransport>;
  const inbox: Record<string, Message[]> = {};
  const events: string[] = [];

  beforeEach(async () => {
    dir = await fsp.mkdtemp(join(tmpdir(), 'inmem-transport-'));
    net = new InMemoryNetwork();
    nodes = {};
    events.length = 0;
    for (const id of ['a', 'b', 'c']) {
      const t = net.create(id, { snapshotStagingDir: join(dir, id) });
      inbox[id] = [];
      t.on('message', (m) => inbox[id]!.push(m));
      t.on('linkUp', (p) => events.push(`${id}+${p}`));
      t.on('linkDown', (p) => events.push(`${id}-${p}`));
      nodes[id] = t;
    }
    await Promise.all(Object.values(nodes).map((t) => t.start()));
    await waitFor('all links up', () => events.length === 6);
  });
  afterEach(async () => {
    await Promise.all(Object.values(nodes).map((t) => t.stop()));
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('delivers copies asynchronously, never the sender\'s objects', async () => {
    const data = Uint8Array.of(1, 2, 3);
    const m = append('a', 'b', [data]);
    nodes['a']!.send(m);
    expect(inbox['b']).to.have.length(0);
    await waitFor('delivery', () => inbox['b']!.length === 1);
    const got = inbox['b']![0]!;
    expect(got).to.not.equal(m);
    expect([...got.entries![0]!.data]).to.deep.equal([1, 2, 3]);
    data[0] = 99;
    expect(got.entries![0]!.data[0]).to.equal(1);
    expect(nodes['a']!.linkStats().get('b')).to.include({ connected: true, sentMsgs: 1, droppedMsgs: 0 });
  });

  it('partitions and heals with linkDown/linkUp, dropping (and counting) traffic across the cut', async () => {
    events.length = 0;
    net.partition(['a'], ['b', 'c']);
    await waitFor('link downs', () => events.length === 4);
    expect(events.sort()).to.deep.equal(['a-b', 'a-c', 'b-a', 'c-a']);
    nodes['a']!.send(heartbeat('a', 'b'));
    nodes['b']!.send(heartbeat('b', 'c'));
    await waitFor('b→c delivered', () => inbox['c']!.length === 1);
    expect(inbox['b']).to.have.length(0);
    expect(nodes['a']!.linkStats().get('b')).to.include({ connected: false, droppedMsgs: 1 });
    events.length = 0;
    net.heal();
    await waitFor('link ups', () => events.length === 4);
    expect(nodes['a']!.linkStats().get('b')!.reconnects).to.equal(1);
  });

  it('applies drop filters and delays', async () => {
    net.setDropFilter((_from, to, m) => to === 'c' && m?.type === 'heartbeat');
    net.setDelay((_f, _t, m) => (m?.type === 'app' ? 30 : 0));
    const t0 = Date.now();
    nodes['a']!.send(heartbeat('a', 'c'));
    nodes['a']!.send(append('a', 'c', [Uint8Array.of(1)]));
    await waitFor('delayed append', () => inbox['c']!.length === 1);
    expect(Date.now() - t0).to.be.at.least(25);
    expect(inbox['c']![0]!.type).to.equal('app');
    expect(nodes['a']!.linkStats().get('c')!.droppedMsgs).to.equal(1);
  });

  it('serves requests, propagates remote errors and rejects pending requests when the link goes', async () => {
    nodes['b']!.handle('echo', async (from, body) => Buffer.concat([Buffer.from(from), body]));
    nodes['b']!.handle('fail', async () => {
      throw Object.assign(new Error('nope'), { code: 'not_leader' });
    });
    nodes['b']!.handle('hang', () => new Promise(() => undefined));
    expect(Buffer.from(await nodes['a']!.request('b', 'echo', Buffer.from('!'), 500)).toString()).to.equal('a!');
    const err = await nodes['a']!.request('b', 'fail', new Uint8Array(0), 500).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(RemoteError);
    expect(err).to.include({ code: 'not_leader', message: 'nope' });
    const pending = nodes['a']!.request('b', 'hang', new Uint8Array(0), 10_000).catch((e: unknown) => e);
    net.setReachable('a', 'b', false);
    expect(await pending).to.include({ code: 'link_lost' });
    expect(await nodes['a']!.request('b', 'echo', new Uint8Array(0), 500).catch((e: unknown) => e)).to.include({ code: 'link_down' });
    const missing = await nodes['a']!.request('c', 'hang', new Uint8Array(0), 500).catch((e: unknown) => e);
    expect(missing).to.include({ code: 'no_handler' });
  });

  it('writes a received snapshot into the staging dir and emits it', async () => {
    const got: string[] = [];
    nodes['b']!.handleSnapshots(async (from, meta, path) => void got.push(`${from}:${meta.index}:${path}`));
    const content = Buffer.from('x'.repeat(100_000));
    const meta = { index: 10, term: 2, conf: { voters: ['a', 'b', 'c'], learners: [] } };
    const res = await nodes['a']!.sendSnapshot('b', meta, {
      size: content.length,
      async *read() {
        yield content;
      },
    });
    expect(res).to.deep.equal({ resumedFrom: 0, bytesSent: content.length });
    await waitFor('snapshot event', () => got.length === 1);
    const path = got[0]!.split(':').slice(2).join(':');
    expect((await fsp.readFile(path)).equals(content)).to.equal(true);
  });

  it('stop takes the node off the network and start brings it back', async () => {
    events.length = 0;
    await nodes['c']!.stop();
    await waitFor('peers see c go', () => events.includes('a-c') && events.includes('b-c'));
    nodes['a']!.send(heartbeat('a', 'c'));
    expect(nodes['a']!.linkStats().get('c')!.droppedMsgs).to.equal(1);
    await nodes['c']!.start();
    await waitFor('c back', () => nodes['a']!.isConnected('c') && events.includes('c+a'));
  });
});
