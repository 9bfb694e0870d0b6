// Multi-process cluster harness: real `node dist/node/src/main.js` children on real loopback sockets.
// Everything that waits polls with a deadline; nothing sleeps blindly. Children are killed and data dirs
// removed on stop(), and again from a process 'exit' hook so a crashed test run leaves nothing behind.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { freePort } from '../ports.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** dist/node/test/cluster/harness.js → repository root. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
/** STEGO_NODE_MAIN lets a developer point the harness at another build without editing tests. */
export const NODE_MAIN = process.env.STEGO_NODE_MAIN ?? join(REPO_ROOT, 'dist/node/src/main.js');

export type Role = 'Leader' | 'Follower' | 'Candidate' | 'PreCandidate' | 'Learner' | 'Unknown';

export interface NodeStatus {
  id: string;
  role: Role;
  healthy: boolean;
  voter: boolean;
  match_index?: number;
  next_index?: number;
  last_contact_ms?: number;
  raft_address: string;
}

export interface ClusterStatus {
  node_id: string;
  term: number;
  leader_id: string | null;
  commit_index: number;
  applied_index: number;
  nodes: NodeStatus[];
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  /** Raw bytes, for image responses. */
  bytes?: Buffer;
}

export interface ObjectAck {
  id: string;
  sha256: string;
  size: number;
}

export type NodeState = 'running' | 'stopped' | 'paused';

/** Fixed-size ring of a child's output lines, dumped when a test fails. */
export class LineRing {
  private readonly lines: string[] = [];
  private partial = '';
  private dropped = 0;
  constructor(private readonly capacity: number) {}

  push(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.add(line);
  }

  add(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.capacity) {
      this.lines.shift();
      this.dropped++;
    }
  }

  snapshot(): string[] {
    return this.partial ? [...this.lines, this.partial] : [...this.lines];
  }

  toString(): string {
    const head = this.dropped ? [`... ${this.dropped} earlier lines dropped`] : [];
    return [...head, ...this.snapshot()].join('\n');
  }
}

export class NodeProcess {
  child: ChildProcess | null = null;
  state: NodeState = 'stopped';
  readonly output: LineRing;
  /** Lines matching a registered pattern are kept here in full, independent of the ring's size. */
  readonly matched: string[] = [];
  private exitPromise: Promise<void> = Promise.resolve();
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  starts = 0;

  constructor(
    readonly id: string,
    readonly httpPort: number,
    readonly raftPort: number,
    readonly dataDir: string,
    readonly env: Record<string, string>,
    ringLines: number,
    private readonly keepPatterns: RegExp[],
  ) {
    this.output = new LineRing(ringLines);
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get raftAddress(): string {
    return `127.0.0.1:${this.raftPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  spawn(): void {
    if (this.state !== 'stopped') throw new Error(`${this.id} is already ${this.state}`);
    mkdirSync(this.dataDir, { recursive: true });
    const child = spawn(process.execPath, [NODE_MAIN], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.state = 'running';
    this.starts++;
    this.output.add(`---- [harness] start #${this.starts} of ${this.id} pid ${child.pid} ----`);
    const onData = (stream: string) => (buf: Buffer) => {
      const text = buf.toString('utf8');
      this.output.push(stream === 'stderr' ? text.replace(/^(?=.)/gm, '[stderr] ') : text);
      if (this.keepPatterns.length) {
        for (const line of text.split('\n')) {
          if (this.keepPatterns.some((re) => re.test(line))) this.matched.push(line);
        }
      }
    };
    child.stdout!.on('data', onData('stdout'));
    child.stderr!.on('data', onData('stderr'));
    this.exitPromise = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.lastExit = { code, signal };
        this.output.add(`---- [harness] ${this.id} pid ${child.pid} exited code=${code} signal=${signal} ----`);
        if (this.child === child) {
          this.state = 'stopped';
          this.child = null;
        }
        resolveExit();
      });
    });
    child.once('error', (err) => this.output.add(`[harness] spawn error: ${err.message}`));
  }

  signal(sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT' | 'SIGTERM'): void {
    if (!this.child) throw new Error(`${this.id} has no running process`);
    this.child.kill(sig);
    if (sig === 'SIGSTOP') this.state = 'paused';
    if (sig === 'SIGCONT') this.state = 'running';
  }

  /** Resolves once the OS has reaped the process. */
  exited(): Promise<void> {
    return this.exitPromise;
  }

  killNow(): void {
    try {
      this.child?.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface ClusterOptions {
  size: number;
  /** Extra environment for every node (timing overrides, snapshot thresholds, limits). */
  env?: Record<string, string>;
  /** Lines of output kept per node for failure dumps. */
  ringLines?: number;
  /** Output lines matching any of these are kept in full (e.g. snapshot installation). */
  keepPatterns?: RegExp[];
  /** Deadline for the initial election. */
  startDeadlineMs?: number;
  logLevel?: string;
}

export interface LeaderView {
  leaderId: string;
  term: number;
  statuses: Map<string, ClusterStatus>;
}

const liveClusters = new Set<Cluster>();
let exitHookInstalled = false;

/** Last-resort cleanup: runs synchronously even when mocha exits on a failed hook. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveClusters) c.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const c of liveClusters) c.destroySync();
      process.exit(130);
    });
  }
}

export { freePort } from '../ports.js';

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns a non-undefined value or the deadline passes. The last error/value is put
 * in the timeout message so a failure says what was observed, not just "timed out".
 */
export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { deadlineMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.deadlineMs ?? 10_000);
  const interval = opts.intervalMs ?? 25;
  let last: unknown = 'nothing observed';
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
      last = 'probe returned undefined';
    } catch (err) {
      if (err instanceof FatalPollError) throw err;
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${opts.deadlineMs ?? 10_000} ms waiting for ${what}; last: ${String(last)}`);
    }
    await delay(interval);
  }
}

/** Thrown from a poll probe to stop polling at once (the awaited state can no longer arrive). */
export class FatalPollError extends Error {}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

export class Cluster {
  readonly nodes = new Map<string, NodeProcess>();
  readonly secret = randomBytes(24).toString('hex');
  readonly adminToken = randomBytes(24).toString('hex');
  /** API token (every scope, no quota or rate limit) that request() sends on /api/ paths. */
  readonly apiToken = randomBytes(24).toString('hex');
  private readonly rootDir: string;
  private nextOrdinal = 1;
  private destroyed = false;

  private constructor(private readonly opts: ClusterOptions) {
    this.rootDir = mkdtempSync(join(tmpdir(), 'stego-cluster-'));
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    installExitHook();
    if (!existsSync(NODE_MAIN)) throw new Error(`node entry point ${NODE_MAIN} does not exist (build first: npx tsc -p tsconfig.json)`);
    const cluster = new Cluster(opts);
    liveClusters.add(cluster);
    try {
      const ids: string[] = [];
      const ports = new Map<string, { http: number; raft: number }>();
      for (let i = 0; i < opts.size; i++) {
        const id = cluster.allocateId();
        ids.push(id);
        ports.set(id, { http: await freePort(), raft: await freePort() });
      }
      const peers = ids.map((id) => `${id}=127.0.0.1:${ports.get(id)!.raft}`).join(',');
      for (const id of ids) {
        const p = ports.get(id)!;
        cluster.createNode(id, p.http, p.raft, peers, false).spawn();
      }
      await cluster.waitForLeader({ deadlineMs: opts.startDeadlineMs ?? 20_000, failOnExit: true });
      return cluster;
    } catch (err) {
      // A cluster that never came up must still leave no processes or dirs behind; keep the logs in the error.
      const logs = cluster.dumpLogs();
      await cluster.stop();
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n${logs}`, { cause: err });
    }
  }

  private allocateId(): string {
    return `n${this.nextOrdinal++}`;
  }

  private createNode(id: string, httpPort: number, raftPort: number, peers: string, joining: boolean): NodeProcess {
    const dataDir = join(this.rootDir, id);
    const env: Record<string, string> = {
      NODE_ID: id,
      PEERS: peers,
      HTTP_PORT: String(httpPort),
      RAFT_PORT: String(raftPort),
      HTTP_HOST: '127.0.0.1',
      RAFT_HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      STEGO_CLUSTER_SECRET: this.secret,
      STEGO_ADMIN_TOKEN: this.adminToken,
      STEGO_API_TOKENS: `tester ${this.apiToken} read,write,delete rate=0 quota=0`,
      STEGO_LOG_LEVEL: this.opts.logLevel ?? 'info',
      ...(joining ? { STEGO_JOIN: '1' } : {}),
      ...(this.opts.env ?? {}),
    };
    const node = new NodeProcess(
      id,
      httpPort,
      raftPort,
      dataDir,
      env,
      this.opts.ringLines ?? 400,
      this.opts.keepPatterns ?? [],
    );
    this.nodes.set(id, node);
    return node;
  }

  node(id: string): NodeProcess {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`unknown node ${id}`);
    return n;
  }

  /** Nodes whose process runs and is not stopped by SIGSTOP. */
  liveIds(): string[] {
    return [...this.nodes.values()].filter((n) => n.state === 'running').map((n) => n.id);
  }

  allIds(): string[] {
    return [...this.nodes.keys()];
  }

  // ---------------------------------------------------------------- HTTP helpers

  async request<T = unknown>(
    id: string,
    path: string,
    init: RequestInit & { timeoutMs?: number } = {},
  ): Promise<HttpResult<T>> {
    const { timeoutMs = 10_000, ...rest } = init;
    // object routes need an API token: the test token unless the caller set Authorization itself
    const headers = new Headers(rest.headers);
    if (path.startsWith('/api/') && !headers.has('authorization')) headers.set('authorization', `Bearer ${this.apiToken}`);
    const res = await fetch(this.node(id).url + path, { ...rest, headers, signal: AbortSignal.timeout(timeoutMs) });
    const type = res.headers.get('content-type') ?? '';
    const bytes = Buffer.from(await res.arrayBuffer());
    let body: unknown = undefined;
    if (type.includes('json')) {
      try {
        body = JSON.parse(bytes.toString('utf8'));
      } catch {
        body = bytes.toString('utf8');
      }
    } else if (type.startsWith('text/')) {
      body = bytes.toString('utf8');
    }
    return { status: res.status, headers: res.headers, body: body as T, bytes };
  }

  async status(id: string, timeoutMs = 2_000): Promise<ClusterStatus> {
    const r = await this.request<ClusterStatus>(id, '/cluster/status', { timeoutMs });
    if (r.status !== 200) throw new Error(`${id} /cluster/status → ${r.status}`);
    return r.body;
  }

  adminHeaders(token: string | null = this.adminToken): Record<string, string> {
    return token === null ? {} : { authorization: `Bearer ${token}` };
  }

  async putObject(
    id: string,
    fields: { cover: Uint8Array; message?: string; payload?: { name: string; data: Uint8Array }; passphrase?: string },
    timeoutMs = 10_000,
  ): Promise<HttpResult<ObjectAck | { error: { code: string; message: string } }>> {
    const form = new FormData();
    form.append('file', new Blob([fields.cover], { type: 'image/png' }), 'cover.png');
    if (fields.message !== undefined) form.append('message', fields.message);
    if (fields.payload) form.append('payload', new Blob([fields.payload.data]), fields.payload.name);
    if (fields.passphrase !== undefined) form.append('passphrase', fields.passphrase);
    return this.request(id, '/api/objects', { method: 'POST', body: form, timeoutMs });
  }

  async getObject(id: string, objectId: string, opts: { stale?: boolean; timeoutMs?: number } = {}): Promise<HttpResult> {
    const q = opts.stale ? '?stale=true' : '';
    return this.request(id, `/api/objects/${encodeURIComponent(objectId)}${q}`, { timeoutMs: opts.timeoutMs ?? 10_000 });
  }

  // ---------------------------------------------------------------- cluster-level waits

  /**
   * Polls /cluster/status on every live node until they all name the same live leader in the same term,
   * and the leader itself says it is Leader. `among` restricts which nodes must agree.
   */
  async waitForLeader(
    opts: { deadlineMs?: number; among?: string[]; notId?: string; minTerm?: number; failOnExit?: boolean } = {},
  ): Promise<LeaderView> {
    return pollUntil(
      'all live nodes to agree on one leader',
      async () => {
        if (opts.failOnExit) this.assertNoneExited();
        const ids = opts.among ?? this.liveIds();
        const statuses = new Map<string, ClusterStatus>();
        await Promise.all(ids.map(async (id) => statuses.set(id, await this.status(id, 1_000))));
        const leaders = new Set([...statuses.values()].map((s) => s.leader_id));
        const terms = new Set([...statuses.values()].map((s) => s.term));
        if (leaders.size !== 1 || terms.size !== 1) {
          throw new Error(`disagreement: ${[...statuses].map(([id, s]) => `${id}→${s.leader_id}@${s.term}`).join(' ')}`);
        }
        const leaderId = [...leaders][0];
        const term = [...terms][0]!;
        if (!leaderId) throw new Error('no leader yet');
        if (!ids.includes(leaderId)) throw new Error(`leader ${leaderId} is not among ${ids.join(',')}`);
        if (opts.notId && leaderId === opts.notId) throw new Error(`leader is still ${leaderId}`);
        if (opts.minTerm !== undefined && term < opts.minTerm) throw new Error(`term ${term} < ${opts.minTerm}`);
        const self = statuses.get(leaderId)!.nodes.find((n) => n.id === leaderId);
        if (self?.role !== 'Leader') throw new Error(`${leaderId} reports its own role as ${self?.role}`);
        return { leaderId, term, statuses };
      },
      { deadlineMs: opts.deadlineMs ?? 10_000, intervalMs: 20 },
    );
  }

  /** A node that exited on its own (not through kill()) will not come back: fail now, not at the deadline. */
  assertNoneExited(): void {
    for (const n of this.nodes.values()) {
      if (n.state === 'stopped' && n.lastExit && n.lastExit.signal !== 'SIGKILL') {
        throw new FatalPollError(`${n.id} exited by itself: ${JSON.stringify(n.lastExit)}\n${n.output.toString().split('\n').slice(-30).join('\n')}`);
      }
    }
  }

  async waitReady(ids: string[] = this.liveIds(), deadlineMs = 10_000): Promise<void> {
    await pollUntil(
      `/readyz 200 on ${ids.join(',')}`,
      async () => {
        const codes = await Promise.all(ids.map(async (id) => [id, (await this.request(id, '/readyz', { timeoutMs: 1_000 })).status] as const));
        const bad = codes.filter(([, c]) => c !== 200);
        if (bad.length) throw new Error(bad.map(([id, c]) => `${id}:${c}`).join(' '));
        return true;
      },
      { deadlineMs },
    );
  }

  async waitHttpUp(id: string, deadlineMs = 10_000): Promise<void> {
    await pollUntil(`${id} /healthz`, async () => {
      const n = this.node(id);
      if (n.state === 'stopped') throw new FatalPollError(`${id} exited: ${JSON.stringify(n.lastExit)}`);
      const r = await this.request(id, '/healthz', { timeoutMs: 1_000 });
      return r.status === 200 ? true : undefined;
    }, { deadlineMs });
  }

  // ---------------------------------------------------------------- process control

  /** SIGKILL resolves once the process is reaped, so its ports are free for a restart. */
  async kill(id: string, sig: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const n = this.node(id);
    n.signal(sig);
    if (sig === 'SIGKILL') await n.exited();
  }

  /** Restarts a stopped node with its original data dir, ports and environment. */
  async restart(id: string, opts: { waitHttp?: boolean } = {}): Promise<void> {
    const n = this.node(id);
    if (n.state !== 'stopped') throw new Error(`${id} is ${n.state}; kill it first`);
    n.spawn();
    if (opts.waitHttp !== false) await this.waitHttpUp(id);
  }

  /** Starts a node with STEGO_JOIN=1 that waits to be added (nobody adds it yet); resolves once HTTP answers. */
  async startJoiner(): Promise<string> {
    const id = this.allocateId();
    const http = await freePort();
    const raft = await freePort();
    const members = [...this.nodes.values()].map((n) => `${n.id}=${n.raftAddress}`);
    this.createNode(id, http, raft, [...members, `${id}=127.0.0.1:${raft}`].join(','), true).spawn();
    await this.waitHttpUp(id);
    return id;
  }

  /**
   * Starts a new node with STEGO_JOIN=1 and asks the leader to add it; resolves once every live member's
   * status lists it as a voter. Retries on leader changes.
   */
  async addNode(opts: { deadlineMs?: number } = {}): Promise<string> {
    const id = await this.startJoiner();
    const node = this.node(id);
    const deadlineMs = opts.deadlineMs ?? 60_000;
    await pollUntil(`leader to accept member ${id}`, async () => {
      const { leaderId } = await this.waitForLeader({ among: this.liveIds().filter((x) => x !== id), deadlineMs: 5_000 });
      const r = await this.request<unknown>(leaderId, '/admin/members', {
        method: 'POST',
        headers: { ...this.adminHeaders(), 'content-type': 'application/json' },
        body: JSON.stringify({ id, raft_address: node.raftAddress }),
        // The leader may wait up to 30 s for the learner to catch up before answering 202.
        timeoutMs: 45_000,
      });
      if (r.status === 200 || r.status === 201 || r.status === 202) return r;
      throw new Error(`POST /admin/members on ${leaderId} → ${r.status} ${JSON.stringify(r.body)}`);
    }, { deadlineMs, intervalMs: 100 });
    await this.waitForMembership((voters) => voters.includes(id), `${id} to become a voter`, deadlineMs);
    return id;
  }

  /** Removes a member through the leader, waits until no live member lists it, then stops its process. */
  /**
   * Removes a member through the leader (the member itself may be the leader), waits until no other live
   * member lists it, then stops its process. Returns every answer the DELETE got, so a test can check that
   * a removal that happened was also reported as a success.
   */
  async removeNode(id: string, opts: { deadlineMs?: number; keepProcess?: boolean } = {}): Promise<HttpResult[]> {
    const deadlineMs = opts.deadlineMs ?? 30_000;
    const others = () => this.liveIds().filter((x) => x !== id);
    const answers: HttpResult[] = [];
    const goneFrom = async (observer: string) => !(await this.status(observer, 2_000)).nodes.some((n) => n.id === id);
    await pollUntil(`leader to remove member ${id}`, async () => {
      const { leaderId } = await this.waitForLeader({ deadlineMs: 5_000, among: answers.length ? others() : undefined });
      const r = await this.request<unknown>(leaderId, `/admin/members/${encodeURIComponent(id)}`, {
        method: 'DELETE',
        headers: this.adminHeaders(),
        timeoutMs: deadlineMs,
      });
      answers.push(r);
      if (r.status >= 200 && r.status < 300) return r;
      const observer = others()[0];
      if (observer && (await goneFrom(observer))) return r;
      throw new Error(`DELETE /admin/members/${id} on ${leaderId} → ${r.status} ${JSON.stringify(r.body)}`);
    }, { deadlineMs, intervalMs: 100 });
    await this.waitForMembership((_v, all) => !all.includes(id), `${id} to leave the configuration`, deadlineMs, others);
    if (!opts.keepProcess) await this.discard(id);
    return answers;
  }

  /** Kills a node's process (if any) and forgets it, removing its data dir: for members already removed. */
  async discard(id: string): Promise<void> {
    const n = this.node(id);
    if (n.state !== 'stopped') {
      n.signal('SIGKILL');
      await n.exited();
    }
    this.nodes.delete(id);
    rmSync(n.dataDir, { recursive: true, force: true });
  }

  async waitForMembership(
    pred: (voters: string[], all: string[]) => boolean,
    what: string,
    deadlineMs: number,
    ids: () => string[] = () => this.liveIds(),
  ): Promise<void> {
    await pollUntil(what, async () => {
      for (const id of ids()) {
        const s = await this.status(id, 1_000);
        const voters = s.nodes.filter((n) => n.voter).map((n) => n.id);
        const all = s.nodes.map((n) => n.id);
        if (!pred(voters, all)) throw new Error(`${id} sees voters [${voters}] members [${all}]`);
      }
      return true;
    }, { deadlineMs, intervalMs: 50 });
  }

  // ---------------------------------------------------------------- diagnostics & cleanup

  dumpLogs(): string {
    const parts: string[] = [];
    for (const n of this.nodes.values()) {
      parts.push(`======== ${n.id} (http ${n.httpPort}, raft ${n.raftPort}, ${n.state}) ========`);
      parts.push(n.output.toString());
    }
    return parts.join('\n');
  }

  /**
   * Stops every live node with SIGTERM and waits for it to exit, so each of its threads can write what it
   * writes at a graceful exit (a `--cpu-prof` profile); stop() would SIGKILL them.
   */
  async stopGracefully(): Promise<void> {
    const ids = this.liveIds();
    for (const id of ids) this.node(id).signal('SIGTERM');
    await Promise.all(ids.map((id) => this.node(id).exited()));
  }

  async stop(): Promise<void> {
    if (this.destroyed) return;
    const waits: Promise<void>[] = [];
    for (const n of this.nodes.values()) {
      if (n.child) {
        n.killNow();
        waits.push(n.exited());
      }
    }
    await Promise.race([Promise.all(waits), delay(5_000)]);
    this.destroySync();
  }

  /** Synchronous so it can run inside process.on('exit'). SIGKILL also ends SIGSTOPped children. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const n of this.nodes.values()) n.killNow();
    if (existsSync(this.rootDir)) rmSync(this.rootDir, { recursive: true, force: true });
    liveClusters.delete(this);
  }

  get dataRoot(): string {
    return this.rootDir;
  }
}

/** Mocha helper: print every node's recent output when the current test failed. */
export function dumpOnFailure(ctx: Mocha.Context, cluster: Cluster | undefined): void {
  if (cluster && ctx.currentTest?.state === 'failed') {
    console.error(`\n---- node output for failed test "${ctx.currentTest.fullTitle()}" ----\n${cluster.dumpLogs()}\n`);
  }
}
