// A 3-member etcd cluster (Debian's etcd-server 3.4) on loopback ports with temp data dirs: the baseline
// for bench:raft. Default fsync behaviour; children are killed and dirs removed on stop() and at exit.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { freePort, LineRing, pollUntil } from './harness.js';

interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  child: ChildProcess;
  output: LineRing;
}

export class EtcdCluster {
  private exitHook = () => this.destroySync();
  private constructor(
    readonly members: EtcdMember[],
    private readonly rootDir: string,
  ) {
    process.on('exit', this.exitHook);
  }

  static async start(size = 3, binary = process.env.ETCD_BIN ?? 'etcd'): Promise<EtcdCluster> {
    const rootDir = mkdtempSync(join(tmpdir(), 'stego-etcd-'));
    const specs: { name: string; client: number; peer: number }[] = [];
    for (let i = 1; i <= size; i++) specs.push({ name: `e${i}`, client: await freePort(), peer: await freePort() });
    const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',');
    const token = `bench-${randomBytes(6).toString('hex')}`;
    const members = specs.map((s) => {
      const output = new LineRing(200);
      const child = spawn(
        binary,
        [
          '--name', s.name,
          '--data-dir', join(rootDir, s.name),
          '--listen-client-urls', `http://127.0.0.1:${s.client}`,
          '--advertise-client-urls', `http://127.0.0.1:${s.client}`,
          '--listen-peer-urls', `http://127.0.0.1:${s.peer}`,
          '--initial-advertise-peer-urls', `http://127.0.0.1:${s.peer}`,
          '--initial-cluster', initialCluster,
          '--initial-cluster-token', token,
          '--initial-cluster-state', 'new',
          '--logger', 'zap',
          '--log-level', 'warn',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stdout!.on('data', (b: Buffer) => output.push(b.toString()));
      child.stderr!.on('data', (b: Buffer) => output.push(b.toString()));
      return { name: s.name, clientUrl: `http://127.0.0.1:${s.client}`, peerUrl: `http://127.0.0.1:${s.peer}`, child, output };
    });
    const cluster = new EtcdCluster(members, rootDir);
    try {
      await cluster.leaderUrl(20_000);
    } catch (err) {
      const logs = members.map((m) => `== ${m.name}\n${m.output}`).join('\n');
      await cluster.stop();
      throw new Error(`etcd did not come up: ${(err as Error).message}\n${logs}`, { cause: err });
    }
    return cluster;
  }

  /** The client URL of the member every member names as leader. */
  async leaderUrl(deadlineMs = 10_000): Promise<string> {
    return pollUntil('an etcd leader', async () => {
      const views = await Promise.all(
        this.members.map(async (m) => {
          const c = new Etcd3({ hosts: m.clientUrl, dialTimeout: 1_000 });
          try {
            const s = await c.maintenance.status();
            return { url: m.clientUrl, self: s.header.member_id, leader: s.leader };
          } finally {
            c.close();
          }
        }),
      );
      const leaders = new Set(views.map((v) => v.leader));
      if (leaders.size !== 1) throw new Error('members disagree on the leader');
      const leader = views.find((v) => v.self === v.leader);
      return leader?.url;
    }, { deadlineMs, intervalMs: 100 });
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.members.map(
        (m) =>
          new Promise<void>((r) => {
            if (m.child.exitCode !== null || m.child.signalCode !== null) return r();
            m.child.once('exit', () => r());
            m.child.kill('SIGKILL');
          }),
      ),
    );
    this.destroySync();
  }

  private destroySync(): void {
    for (const m of this.members) {
      try {
        m.child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(this.rootDir, { recursive: true, force: true });
    process.off('exit', this.exitHook);
  }
}
