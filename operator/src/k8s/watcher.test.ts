// The watcher against a scripted HTTP server speaking the list/watch protocol: it must re-list after
// 410 Gone (and report objects deleted meanwhile), and restart a watch that went silent.
import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, type KObject } from './client.js';
import { Watcher, type RestartReason, type WatchEventType } from './watcher.js';

interface FakeState {
  items: Map<string, KObject>;
  rv: number;
  lists: number;
  watches: number;
  /** What the next watch request gets. */
  onWatch: (res: http.ServerResponse) => void;
}

function obj(name: string, rv: number): KObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'ns', resourceVersion: String(rv) } };
}

async function fakeServer(state: FakeState): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      state.watches++;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      state.onWatch(res);
      return;
    }
    state.lists++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ metadata: { resourceVersion: String(state.rv) }, items: [...state.items.values()] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(url: string, silenceMs: number, events: [WatchEventType, string][], restarts: RestartReason[]): Watcher<KObject> {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: 'c', server: url, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  return new Watcher(new KubeClient(kc), kc, { path: '/api/v1/configmaps', resource: 'ConfigMap', silenceMs, resyncMs: 60_000 }, {
    onEvent: (t, o) => events.push([t, o.metadata!.name!]),
    onRestart: (r) => restarts.push(r),
  });
}

describe('operator/k8s: watcher', () => {
  it('re-lists after 410 Gone and reports what changed while it was not watching', async () => {
    const state: FakeState = { items: new Map([['a', obj('a', 1)], ['b', obj('b', 2)]]), rv: 2, lists: 0, watches: 0, onWatch: () => {} };
    state.onWatch = (res) => {
      if (state.watches === 1) {
        res.write(JSON.stringify({ type: 'ADDED', object: obj('c', 3) }) + '\n');
        // the stream expires: objects change behind our back, then the server says 410
        state.items.delete('b');
        state.items.set('c', obj('c', 3));
        state.items.set('d', obj('d', 5));
        state.rv = 5;
        res.end(JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } }) + '\n');
      }
    };
    const srv = await fakeServer(state);
    const events: [WatchEventType, string][] = [];
    const restarts: RestartReason[] = [];
    const w = setup(srv.url, 60_000, events, restarts);
    try {
      w.start();
      await until(() => state.lists === 2 && w.cache.has('ns/d'));
      expect(restarts[0]).to.equal('gone');
      expect(events).to.deep.include.members([['added', 'a'], ['added', 'b'], ['added', 'c'], ['deleted', 'b'], ['added', 'd']]);
      expect([...w.cache.keys()].sort()).to.deep.equal(['ns/a', 'ns/c', 'ns/d']);
    } finally {
      w.stop();
      await srv.close();
    }
  });

  /** The first watch stays open and silent (after its headers, or before them); the next one delivers. */
  async function silentFirstWatch(headers: boolean): Promise<void> {
    const state: FakeState = { items: new Map([['a', obj('a', 1)]]), rv: 1, lists: 0, watches: 0, onWatch: () => {} };
    state.onWatch = (res) => {
      if (state.watches >= 2) res.write(JSON.stringify({ type: 'MODIFIED', object: obj('a', 7) }) + '\n');
      else if (headers) res.flushHeaders();
    };
    const srv = await fakeServer(state);
    const events: [WatchEventType, string][] = [];
    const restarts: RestartReason[] = [];
    const w = setup(srv.url, 300, events, restarts);
    try {
      w.start();
      await until(() => events.some(([t, n]) => t === 'modified' && n === 'a'));
      expect(restarts).to.include('watchdog');
      expect(state.lists).to.be.at.least(2);
      expect(w.cache.get('ns/a')!.metadata!.resourceVersion).to.equal('7');
    } finally {
      w.stop();
      await srv.close();
    }
  }

  it('restarts a watch that went silent (the stream stays open, nothing arrives)', () => silentFirstWatch(true));
  it('restarts a watch whose request never got its headers', () => silentFirstWatch(false));

  it('reports an API the server does not serve and keeps retrying instead of failing', async () => {
    const server = http.createServer((_req, res) => res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource' })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
    let unavailable = 0;
    const w = new Watcher(new KubeClient(kc), kc, { path: '/apis/gateway.networking.k8s.io/v1/httproutes', resource: 'HTTPRoute' }, { onEvent: () => {}, onUnavailable: () => unavailable++ });
    try {
      w.start();
      await until(() => unavailable >= 2);
      expect(w.available).to.equal(false);
      expect(w.synced).to.equal(false);
    } finally {
      w.stop();
      server.closeAllConnections();
      server.close();
    }
  });
});
