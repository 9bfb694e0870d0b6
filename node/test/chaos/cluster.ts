// Real node processes (`dist/node/src/main.js`, spawned with this Node binary) inside a NetLab's
// namespaces, one per slot. The node is a black box: it is configured through its environment and observed
// through HTTP (/cluster/status, /readyz, objects) and its data dir after the run.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterStatus as HarnessStatus } from '../cluster/harness.js';
import { NetLab, onExit } from './netlab.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const NODE_MAIN = process.env.STEGO_NODE_MAIN ?? join(REPO_ROOT, 'dist/node/src/main.js');
export const HTTP_PORT = 8080;
export const RAFT_PORT = 7080;

export type MemberState = 'running' | 'paused' | 'stopped';

export class Member {
  child: ChildProcess | null = null;
  state: MemberState = 'stopped';
  starts = 0;
  lastExit: { code: number | null; signal: string | null } | null = null;
  exitPromise: Promise<void> = Promise.resolve();
  readonly tail: string[] = [];

  constructor(
    readonly id: string,
    readonly slot: number,
    readonly ip: string,
    readonly dataDir: string,
    readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://${this.ip}:${HTTP_PORT}`;
  }

  get raftAddress(): string {
    return `${this.ip}:${RAFT_PORT}`;
  }

  exited(): Promise<void> {
    return this.exitPromise;
  }

  keep(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 300) this.tail.shift();
  }
}

export interface ChaosClusterOptions {
  nodes: number;
  /** Extra node environment (timings, snapshot thresholds). */
  env?: Record<string, string>;
  /**
   * The API token every node accepts (scopes read, write, delete; no rate limit, no quota) and every
   * client sends: generated per cluster unless given.
   */
  apiToken?: string;
  /** Data dir root (a small tmpfs for disk-full tests); a temp dir by default. */
  dataRoot?: string;
  /** Slots to create beyond the initial members (for membership changes). Default 0. */
  spareSlots?: number;
}

export class ChaosCluster {
  readonly members = new Map<string, Member>();
  /** Members removed from the configuration: their data dirs are still checked after the run. */
  readonly retired: Member[] = [];
  readonly secret = randomBytes(24).toString('hex');
  readonly adminToken = randomBytes(24).toString('hex');
  /** Bearer token of the object routes (see ChaosClusterOptions.apiToken). */
  readonly apiToken: string;
  /** The token file every node reads (STEGO_API_TOKENS_FILE): the secret stays out of the environment. */
  readonly tokensFile: string;
  readonly root: string;
  private readonly ownRoot: boolean;
  private generation = new Map<number, number>();
  private removeExitHook: () => void = () => {};

  private constructor(readonly lab: NetLab, readonly opts: ChaosClusterOptions) {
    this.ownRoot = opts.dataRoot === undefined;
    this.root = opts.dataRoot ?? mkdtempSync(join(tmpdir(), `stc-${lab.subnet}-`));
    this.apiToken = opts.apiToken ?? randomBytes(24).toString('hex');
    // beside the data dirs, not in one: a full data disk must not hide it, and it goes with the root
    this.tokensFile = join(this.root, 'api-tokens');
    writeFileSync(this.tokensFile, `# chaos clients: every object scope, no rate limit, no quota\nchaos ${this.apiToken} read,write,delete rate=0 quota=0\n`, { mode: 0o600 });
  }

  static async start(opts: ChaosClusterOptions): Promise<ChaosCluster> {
    if (!existsSync(NODE_MAIN)) throw new Error(`${NODE_MAIN} does not exist: npm run build first`);
    const lab = NetLab.create(opts.nodes + (opts.spareSlots ?? 0));
    const c = new ChaosCluster(lab, opts);
    c.removeExitHook = onExit(() => c.destroySync());
    try {
      const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
      const peers = ids.map((id, i) => `${id}=${lab.ip(i + 1)}:${RAFT_PORT}`).join(',');
      ids.forEach((id, i) => c.spawn(c.define(id, i + 1, peers, false)));
      await c.waitForFirstLeader(90_000);
      return c;
    } catch (err) {
      const logs = c.dumpLogs();
      c.destroySync();
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`, { cause: err });
    }
  }

  private define(id: string, slot: number, peers: string, joining: boolean): Member {
    const dataDir = join(this.root, id);
    const env: Record<string, string> = {
      NODE_ID: id,
      PEERS: peers,
      HTTP_HOST: this.lab.ip(slot),
      HTTP_PORT: String(HTTP_PORT),
      RAFT_HOST: this.lab.ip(slot),
      RAFT_PORT: String(RAFT_PORT),
      DATA_DIR: dataDir,
      STEGO_CLUSTER_SECRET: this.secret,
      STEGO_ADMIN_TOKEN: this.adminToken,
      STEGO_API_TOKENS_FILE: this.tokensFile,
      STEGO_LOG_LEVEL: 'warn',
      STEGO_WORKERS: '1',
      STEGO_REQUEST_TIMEOUT_MS: '3000',
      ...(joining ? { STEGO_JOIN: '1' } : {}),
      ...(this.opts.env ?? {}),
    };
    const m = new Member(id, slot, this.lab.ip(slot), dataDir, env);
    this.members.set(id, m);
    return m;
  }

  spawn(m: Member): void {
    if (m.state !== 'stopped') throw new Error(`${m.id} is ${m.state}`);
    mkdirSync(m.dataDir, { recursive: true });
    const { cmd, args } = this.lab.wrap(m.slot, [process.execPath, NODE_MAIN]);
    const child = spawn(cmd, args, { cwd: REPO_ROOT, env: { ...process.env, ...m.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    m.child = child;
    m.state = 'running';
    m.starts++;
    m.keep(`---- start #${m.starts} pid ${child.pid} ----`);
    const onData = (buf: Buffer) => {
      for (const line of buf.toString('utf8').split('\n')) if (line) m.keep(line);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    m.exitPromise = new Promise((res) => {
      child.once('exit', (code, signal) => {
        m.lastExit = { code, signal };
        m.keep(`---- exited code=${code} signal=${signal} ----`);
        if (m.child === child) {
          m.child = null;
          m.state = 'stopped';
        }
        res();
      });
    });
  }

  member(id: string): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`unknown member ${id}`);
    return m;
  }

  running(): Member[] {
    return [...this.members.values()].filter((m) => m.state === 'running');
  }

  async kill(id: string): Promise<void> {
    const m = this.member(id);
    if (!m.child) return;
    m.child.kill('SIGKILL');
    await m.exited();
  }

  pause(id: string): void {
    const m = this.member(id);
    if (m.child && m.state === 'running') {
      m.child.kill('SIGSTOP');
      m.state = 'paused';
    }
  }

  resume(id: string): void {
    const m = this.member(id);
    if (m.child && m.state === 'paused') {
      m.child.kill('SIGCONT');
      m.state = 'running';
    }
  }

  restart(id: string): void {
    const m = this.member(id);
    if (m.state === 'stopped') this.spawn(m);
  }

  // ------------------------------------------------------------------ HTTP

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.apiToken}`, ...extra };
  }

  async json<T>(m: Member, path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<{ status: number; body: T; headers: Headers }> {
    const { timeoutMs = 2_000, ...rest } = init;
    const res = await fetch(m.url + path, { ...rest, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, body: body as T, headers: res.headers };
  }

  async status(m: Member, timeoutMs = 3_000): Promise<ClusterStatus> {
    const r = await this.json<ClusterStatus>(m, '/cluster/status', { timeoutMs });
    if (r.status !== 200) throw new Error(`${m.id} /cluster/status → ${r.status}`);
    return r.body;
  }

  /** Polls until every running member names the same leader in the same term, which says it leads. */
  async waitForLeader(deadlineMs: number, among: Member[] = this.running()): Promise<{ leader: string; term: number }> {
    const deadline = Date.now() + deadlineMs;
    let last = '';
    for (;;) {
      try {
        const st = await Promise.all(among.map((m) => this.status(m)));
        const leaders = new Set(st.map((s) => s.leader_id));
        const terms = new Set(st.map((s) => s.term));
        const leader = st[0]?.leader_id;
        if (leaders.size === 1 && terms.size === 1 && leader) {
          const ls = st.find((s) => s.node_id === leader);
          // a leader outside `among` (e.g. the others are watched while one member is failing) cannot confirm
          if (!ls || ls.nodes.find((n) => n.id === leader)?.role === 'Leader') return { leader, term: st[0]!.term };
        }
        last = st.map((s) => `${s.node_id}→${s.leader_id}@${s.term}`).join(' ');
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`no agreed leader within ${deadlineMs} ms: ${last}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * The first election. A member that exits while starting (on a loaded machine its first fsync may pass
   * the deadline: storage_stalled, exit 1) is restarted, as its StatefulSet would restart it, at most
   * twice; the members asked are the running ones at each attempt, never a list taken before one exited.
   */
  private async waitForFirstLeader(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    for (;;) {
      for (const m of this.members.values()) {
        if (m.state === 'stopped' && m.starts < 3) {
          console.error(`chaos: ${m.id} exited while starting (${JSON.stringify(m.lastExit)}); restarting it`);
          this.spawn(m);
        }
      }
      try {
        await this.waitForLeader(Math.max(1_000, Math.min(5_000, deadline - Date.now())));
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
  }

  /** The leader as the running members see it right now, if they agree. */
  async currentLeader(): Promise<string | undefined> {
    try {
      return (await this.waitForLeader(1_500)).leader;
    } catch {
      return undefined;
    }
  }

  async removeMember(id: string, via: Member, timeoutMs = 15_000): Promise<{ status: number; body: unknown }> {
    return this.json(via, `/admin/members/${encodeURIComponent(id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${this.adminToken}` },
      timeoutMs,
    });
  }

  /** Starts a fresh member (new id, empty data dir, STEGO_JOIN=1) in `slot` and asks `via` to add it. */
  async addMember(slot: number, via: Member, timeoutMs = 40_000): Promise<{ member: Member; status: number; body: unknown }> {
    const gen = (this.generation.get(slot) ?? 1) + 1;
    this.generation.set(slot, gen);
    const id = `n${slot}g${gen}`;
    const peers = [...this.members.values()].filter((m) => m.slot !== slot).map((m) => `${m.id}=${m.raftAddress}`);
    const m = this.define(id, slot, [...peers, `${id}=${this.lab.ip(slot)}:${RAFT_PORT}`].join(','), true);
    rmSync(m.dataDir, { recursive: true, force: true });
    this.spawn(m);
    const r = await this.json(via, '/admin/members', {
      method: 'POST',
      headers: { authorization: `Bearer ${this.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id, raft_address: m.raftAddress }),
      timeoutMs,
    });
    return { member: m, status: r.status, body: r.body };
  }

  /** Forgets a member whose process is gone (removed from the configuration). Its data dir stays for the disk checks. */
  forget(id: string): void {
    this.members.delete(id);
  }

  dumpLogs(lines = 40): string {
    return [...this.members.values()].map((m) => `==== ${m.id} (slot ${m.slot}, ${m.state}) ====\n${m.tail.slice(-lines).join('\n')}`).join('\n');
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) {
      if (m.state === 'paused') m.child?.kill('SIGCONT');
      m.child?.kill('SIGKILL');
    }
    await Promise.race([Promise.all([...this.members.values()].map((m) => m.exited())), new Promise((r) => setTimeout(r, 5_000))]);
  }

  destroySync(keepData = false): void {
    for (const m of this.members.values()) {
      try {
        m.child?.kill('SIGKILL');
      } catch {
        // gone
      }
    }
    this.lab.destroy();
    if (this.ownRoot && !keepData && existsSync(this.root)) rmSync(this.root, { recursive: true, force: true });
    this.removeExitHook();
  }
}

/** /cluster/status, with the fields the chaos checks read beyond the harness's view. */
export interface ClusterStatus extends HarnessStatus {
  last_index?: number;
  snapshot_index?: number;
  storage_failed?: boolean;
  removed?: boolean;
}
