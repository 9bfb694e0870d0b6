// `npm start`: a whole StegoCluster on this machine — N node processes plus a real nginx in front — in the
// foreground, with interleaved logs prefixed by node. Ctrl-C stops everything and leaves nothing behind.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LeaderWatch } from '../node/src/lb/leader-watch.js';
import { findNginx, NginxProcess } from '../node/src/lb/nginx-process.js';
import { API_TOKENS_FILE, IDENTITY_FILE, LOCAL_TOKEN_ID, localNodeEnv, type ClusterIdentity, type NodeSpec } from './local-cluster-env.js';

const HELP = `Usage: npm start [-- --fresh]

Runs a local StegoCluster: STEGO_NODES node processes (n1..nN) behind nginx.

Options:
  --fresh            delete the data directory first (start a brand-new cluster)
  --help             this text

Environment (defaults in brackets):
  STEGO_NODES            number of nodes [3]
  STEGO_LB_PORT          nginx listen port [8080]
  STEGO_HTTP_BASE_PORT   HTTP port of n1; n2 gets +1, ... [8081]
  STEGO_RAFT_BASE_PORT   Raft port of n1; n2 gets +1, ... [7001]
  STEGO_DATA_DIR         data directory, kept between runs [./.stego-data]
  STEGO_RESTART          'always' restarts a node that dies (like a StatefulSet), 'never' leaves it down [always]
  NGINX_BIN              nginx binary to use [found on PATH or /usr/sbin/nginx]
  STEGO_API_TOKENS_FILE  API tokens for the nodes [a generated token with read, write, delete,
                         kept in the data directory and printed once the cluster is up]
Any other STEGO_* variable (timings, limits) is passed through to the nodes; see node dist/node/src/main.js --help.`;

const root = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(root, 'dist/node/src/main.js');

function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

const COLORS = ['\x1b[36m', '\x1b[33m', '\x1b[35m', '\x1b[32m', '\x1b[34m', '\x1b[31m'];
const useColor = process.stdout.isTTY === true;
const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function prefixFor(name: string, i: number): string {
  const tag = `[${name}]`.padEnd(8);
  return useColor ? `${COLORS[i % COLORS.length]}${tag}\x1b[0m` : tag;
}

/** One readable line from a pino JSON line (or the raw line when it is not JSON). */
export function formatLogLine(line: string): string {
  if (!line.startsWith('{')) return line;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    const { level, time, msg, pid: _pid, hostname: _h, node: _n, ...rest } = o;
    const t = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
    const extra = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
    return `${t} ${LEVELS[level as number] ?? String(level)} ${String(msg ?? '')}${extra}`;
  } catch {
    return line;
  }
}

function pipeLines(child: ChildProcess, prefix: string): void {
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    stream.setEncoding('utf8');
    let buf = '';
    stream.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line) process.stdout.write(`${prefix} ${formatLogLine(line)}\n`);
      }
    });
  }
}

/**
 * The cluster's secrets, generated on first start and kept in the data directory (mode 0600): the raft
 * secret, the admin token and an API token with every scope. A data directory from before API tokens
 * gets one added. The tokens file is rewritten each start, so a hand-edited one must live elsewhere
 * (point STEGO_API_TOKENS_FILE at it).
 */
function loadIdentity(dataDir: string): ClusterIdentity {
  const file = join(dataDir, IDENTITY_FILE);
  const id: ClusterIdentity = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterIdentity)
    : { secret: randomBytes(32).toString('hex'), adminToken: randomBytes(24).toString('hex') };
  id.apiToken ??= randomBytes(24).toString('base64url');
  writeFileSync(file, JSON.stringify(id, null, 2), { mode: 0o600 });
  writeFileSync(join(dataDir, API_TOKENS_FILE), `${LOCAL_TOKEN_ID} ${id.apiToken} read,write,delete\n`, { mode: 0o600 });
  return id;
}

class Supervisor {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;
  private nginx: NginxProcess | null = null;
  private watch: LeaderWatch | null = null;
  private announced = false;

  constructor(
    private readonly nodes: NodeSpec[],
    private readonly identity: ClusterIdentity,
    private readonly lbPort: number,
    private readonly dataDir: string,
    private readonly restart: boolean,
  ) {}

  startNode(n: NodeSpec, i: number): void {
    mkdirSync(n.dataDir, { recursive: true });
    const child = spawn(process.execPath, [mainJs], { env: localNodeEnv(n, this.nodes, this.identity, this.dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.set(n.id, child);
    pipeLines(child, prefixFor(n.id, i));
    this.writeState();
    child.once('exit', (code, signal) => {
      if (this.stopping) return;
      console.log(`${prefixFor('super', 5)} ${n.id} exited (${signal ?? `code ${code}`})${this.restart ? '; restarting in 1 s' : ''}`);
      if (this.restart) setTimeout(() => !this.stopping && this.startNode(n, i), 1000);
    });
  }

  /** For scripts and tests: which process is which, without parsing logs. */
  private writeState(): void {
    const state = {
      lbPort: this.lbPort,
      nginxPid: this.nginx?.pid ?? null,
      nodes: this.nodes.map((n) => ({ ...n, pid: this.children.get(n.id)?.pid ?? null })),
    };
    writeFileSync(join(this.dataDir, 'supervisor.json'), JSON.stringify(state, null, 2));
  }

  async start(): Promise<void> {
    this.nodes.forEach((n, i) => this.startNode(n, i));
    const bin = findNginx();
    if (bin) {
      const prefix = join(this.dataDir, 'nginx');
      mkdirSync(prefix, { recursive: true });
      this.nginx = new NginxProcess(
        bin,
        {
          prefix,
          listen: `127.0.0.1:${this.lbPort}`,
          nodes: this.nodes.map((n) => ({ id: n.id, address: `127.0.0.1:${n.httpPort}` })),
          // the nodes' body limit, so nginx and the nodes refuse at the same size
          ...(process.env['STEGO_BODY_LIMIT_BYTES'] ? { maxBodyBytes: Number(process.env['STEGO_BODY_LIMIT_BYTES']) } : {}),
        },
        (l) => console.log(`${prefixFor('nginx', 4)} ${l}`),
      );
      await this.nginx.start(null);
      this.writeState();
    } else {
      console.log(
        `${prefixFor('super', 5)} nginx not found: running the nodes without a load balancer.\n` +
          '         Install it with `sudo apt-get install nginx` (Debian/Ubuntu) or set NGINX_BIN.',
      );
    }
    this.watch = new LeaderWatch({
      urls: () => this.nodes.map((n) => `http://127.0.0.1:${n.httpPort}`),
      onChange: async (leaderId, term) => {
        console.log(`${prefixFor('super', 5)} leader is ${leaderId} (term ${term})`);
        if (this.nginx && (await this.nginx.setLeader(leaderId))) {
          console.log(`${prefixFor('nginx', 4)} reloaded: writes go to ${leaderId} first`);
        }
        if (!this.announced) this.announce();
      },
    });
    this.watch.start();
  }

  private announce(): void {
    this.announced = true;
    const lb = this.nginx ? `  load balancer: http://127.0.0.1:${this.lbPort}   (nginx status: /nginx_status)\n` : '';
    const direct = this.nodes.map((n) => `  ${n.id}: http://127.0.0.1:${n.httpPort}`).join('\n');
    const base = `http://127.0.0.1:${this.nginx ? this.lbPort : this.nodes[0]!.httpPort}`;
    const token = process.env['STEGO_API_TOKENS_FILE'] ? `(from ${process.env['STEGO_API_TOKENS_FILE']})` : this.identity.apiToken;
    console.log(
      `\nStegoCluster is up.\n${lb}${direct}\n  API token:   ${token}   (read, write, delete; kept in ${join(this.dataDir, IDENTITY_FILE)} with the admin token)\n` +
        `  try: export STEGO_TOKEN=${this.identity.apiToken}\n` +
        `       curl -s ${base}/cluster/status\n` +
        `       curl -s -H "Authorization: Bearer $STEGO_TOKEN" -F message='meet at dawn' ${base}/api/objects\n`,
    );
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.watch?.stop();
    await this.nginx?.stop();
    const exits = [...this.children.values()]
      .filter((c) => c.exitCode === null && c.signalCode === null)
      .map(
        (c) =>
          new Promise<void>((res) => {
            const t = setTimeout(() => c.kill('SIGKILL'), 8000);
            c.once('exit', () => {
              clearTimeout(t);
              res();
            });
            c.kill('SIGTERM');
          }),
      );
    await Promise.all(exits);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { fresh: { type: 'boolean' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log(HELP);
    return;
  }
  if (!existsSync(mainJs)) throw new Error(`${mainJs} is missing: run \`npm run build\` first (npm start does it for you)`);
  const count = envInt('STEGO_NODES', 3);
  const lbPort = envInt('STEGO_LB_PORT', 8080);
  const httpBase = envInt('STEGO_HTTP_BASE_PORT', 8081);
  const raftBase = envInt('STEGO_RAFT_BASE_PORT', 7001);
  const dataDir = resolve(process.env['STEGO_DATA_DIR'] || join(process.cwd(), '.stego-data'));
  if (values.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const nodes: NodeSpec[] = Array.from({ length: count }, (_, i) => ({
    id: `n${i + 1}`,
    httpPort: httpBase + i,
    raftPort: raftBase + i,
    dataDir: join(dataDir, `n${i + 1}`),
  }));
  const sup = new Supervisor(nodes, loadIdentity(dataDir), lbPort, dataDir, process.env['STEGO_RESTART'] !== 'never');
  const shutdown = (sig: string): void => {
    console.log(`\n${prefixFor('super', 5)} ${sig}: stopping nginx and nodes`);
    void sup.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  await sup.start();
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
