// Runs `npm start`'s supervisor (dist/scripts/local-cluster.js) as a real child process on free ports with a
// temp data dir, and gives tests what they need: the LB URL, node URLs and pids, restarting a node it was
// told not to restart (STEGO_RESTART=never), multipart bodies for the API, and a guaranteed cleanup.
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { freePort, freePortBlock } from '../ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IDENTITY_FILE, localNodeEnv, type ClusterIdentity } from '../../../scripts/local-cluster-env.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
export const SUPERVISOR_JS = join(root, 'dist/scripts/local-cluster.js');
const NODE_MAIN_JS = join(root, 'dist/node/src/main.js');

export interface SupervisorState {
  lbPort: number;
  nginxPid: number | null;
  nodes: { id: string; httpPort: number; raftPort: number; dataDir: string; pid: number | null }[];
}

/** A multipart body for the node API: strings as fields, buffers as PNG files named after their field. */
export function form(fields: Record<string, string | Buffer>): FormData {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string') f.append(k, v);
    else f.append(k, new Blob([v], { type: 'image/png' }), `${k}.png`);
  }
  return f;
}

export { freePort, freePortBlock } from '../ports.js';

export async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 15000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
}

export class LocalCluster {
  child: ChildProcess | null = null;
  /** Nodes started again by restartNode (the supervisor does not know them). */
  readonly restarted: ChildProcess[] = [];
  readonly output: string[] = [];
  lbPort = 0;
  httpBase = 0;
  raftBase = 0;

  constructor(
    readonly nodes = 3,
    readonly dataDir = mkdtempSync(join(tmpdir(), 'stego-local-')),
    readonly extraEnv: Record<string, string> = {},
  ) {}

  get lb(): string {
    return `http://127.0.0.1:${this.lbPort}`;
  }

  nodeUrl(id: string): string {
    const i = Number(id.slice(1)) - 1;
    return `http://127.0.0.1:${this.httpBase + i}`;
  }

  get ids(): string[] {
    return Array.from({ length: this.nodes }, (_, i) => `n${i + 1}`);
  }

  /** The API token `npm start` generated for this data directory (read, write, delete). */
  get apiToken(): string {
    return this.identity().apiToken!;
  }

  identity(): ClusterIdentity {
    return JSON.parse(readFileSync(join(this.dataDir, IDENTITY_FILE), 'utf8')) as ClusterIdentity;
  }

  /** Authorization header carrying apiToken. */
  auth(): Record<string, string> {
    return { authorization: `Bearer ${this.apiToken}` };
  }

  state(): SupervisorState {
    return JSON.parse(readFileSync(join(this.dataDir, 'supervisor.json'), 'utf8')) as SupervisorState;
  }

  pidOf(id: string): number {
    const pid = this.state().nodes.find((n) => n.id === id)?.pid;
    if (!pid) throw new Error(`no pid for ${id}`);
    return pid;
  }

  async start(): Promise<void> {
    if (!this.lbPort) {
      this.lbPort = await freePort();
      this.httpBase = await freePortBlock(this.nodes);
      this.raftBase = await freePortBlock(this.nodes);
    }
    const child = spawn(process.execPath, [SUPERVISOR_JS], {
      env: {
        ...process.env,
        STEGO_NODES: String(this.nodes),
        STEGO_LB_PORT: String(this.lbPort),
        STEGO_HTTP_BASE_PORT: String(this.httpBase),
        STEGO_RAFT_BASE_PORT: String(this.raftBase),
        STEGO_DATA_DIR: this.dataDir,
        ...this.extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (d: string) => {
        this.output.push(...d.split('\n').filter(Boolean));
        if (this.output.length > 2000) this.output.splice(0, this.output.length - 2000);
      });
    }
    await until('supervisor state file', async () => existsSync(join(this.dataDir, 'supervisor.json')));
    await until('a leader through the load balancer', async () => (await this.leaderViaLb())?.leader_id, 20000);
  }

  async leaderViaLb(): Promise<{ leader_id: string | null; term: number } | null> {
    const res = await fetch(`${this.lb}/cluster/status`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    return (await res.json()) as { leader_id: string | null; term: number };
  }

  /**
   * Starts a node that died again, with the environment the supervisor gives its nodes (secrets, API
   * tokens file, STEGO_* settings): for tests that run with STEGO_RESTART=never and choose when.
   */
  restartNode(id: string): ChildProcess {
    const s = this.state();
    const n = s.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    const env = localNodeEnv(n, s.nodes, this.identity(), this.dataDir, { ...process.env, ...this.extraEnv });
    const child = spawn(process.execPath, [NODE_MAIN_JS], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (d: string) => this.output.push(...d.split('\n').filter(Boolean).map((l) => `[restarted ${id}] ${l}`)));
    }
    this.restarted.push(child);
    return child;
  }

  /** SIGINT, like Ctrl-C; resolves when the supervisor has exited. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 15000);
    await exited;
    clearTimeout(t);
  }

  /**
   * Kills every node with SIGKILL at once (as a power loss would), then stops the supervisor and its nginx.
   * nginx itself is stopped gracefully: its workers outlive a SIGKILLed master and would keep the port.
   */
  async crashAll(): Promise<void> {
    const s = this.state();
    for (const n of s.nodes) if (n.pid) tryKill(n.pid, 'SIGKILL');
    await this.stop('SIGINT');
  }

  async destroy(): Promise<void> {
    try {
      for (const c of this.restarted) if (c.pid && c.exitCode === null && c.signalCode === null) tryKill(c.pid, 'SIGKILL');
      if (this.child && this.child.exitCode === null) {
        const s = existsSync(join(this.dataDir, 'supervisor.json')) ? this.state() : null;
        await this.stop('SIGINT');
        for (const n of s?.nodes ?? []) if (n.pid) tryKill(n.pid, 'SIGKILL');
      }
    } finally {
      rmSync(this.dataDir, { recursive: true, force: true });
    }
  }

  dump(): string {
    return this.output.slice(-200).join('\n');
  }
}

export function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
