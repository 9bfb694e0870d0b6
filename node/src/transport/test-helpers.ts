// Shared by the transport tests (not part of the public surface).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeId } from '../raft/types.js';
import { makeMessage, type Message } from '../raft/message.js';
import { WsTransport, type WsTransportOptions } from './ws-transport.js';

/** Polls `pred` until true; fails with `what` after the deadline. */
export async function waitFor(what: string, pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function heartbeat(from: NodeId, to: NodeId, term = 1): Message {
  return makeMessage({ type: 'heartbeat', from, to, term });
}

export function append(from: NodeId, to: NodeId, datas: Uint8Array[], term = 1): Message {
  return makeMessage({
    type: 'app', from, to, term, logTerm: term,
    entries: datas.map((data, i) => ({ term, index: i + 1, type: 'normal' as const, data })),
  });
}

/** Creates, starts and tracks WsTransports on free ports with private staging dirs. */
export class Harness {
  readonly transports: WsTransport[] = [];
  readonly stagingDirs = new Map<WsTransport, string>();
  private dirs: string[] = [];

  async node(id: NodeId, overrides: Partial<WsTransportOptions> = {}): Promise<WsTransport> {
    const dir = await mkdtemp(join(tmpdir(), `transport-${id}-`));
    this.dirs.push(dir);
    const t = new WsTransport({
      id,
      listenHost: '127.0.0.1',
      listenPort: 0,
      peers: new Map(),
      secret: 'test-secret',
      maxInflightBytes: 8 << 20,
      snapshotStagingDir: join(dir, 'staging'),
      pingIntervalMs: 100,
      deadAfterMs: 1000,
      ...overrides,
    });
    await t.start();
    this.transports.push(t);
    this.stagingDirs.set(t, overrides.snapshotStagingDir ?? join(dir, 'staging'));
    return t;
  }

  /** Tells every transport about every other one. */
  mesh(...ts: WsTransport[]): void {
    for (const t of ts) t.setPeers(new Map(ts.filter((o) => o !== t).map((o) => [o.id, `127.0.0.1:${o.port}`])));
  }

  async linked(...ts: WsTransport[]): Promise<void> {
    await waitFor('links up', () => ts.every((a) => ts.every((b) => a === b || a.isConnected(b.id))));
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.stop()));
    this.transports.length = 0;
    this.stagingDirs.clear();
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
    this.dirs = [];
  }
}
