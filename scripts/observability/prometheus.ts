// A real Prometheus and promtool for tests: the binaries scripts/build-prometheus.sh caches, a server on a
// free port with a temp TSDB, and the HTTP API calls the tests make.
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import { freePort, until } from '../../node/test/lb/local-cluster-harness.js';

export const PROMETHEUS_RELEASE = '3.16.0';

/** A binary of the build: in $PROMETHEUS_DIR, else the build script's cache; undefined when not built. */
export function prometheusBinary(name: 'prometheus' | 'promtool'): string | undefined {
  const dir = process.env.PROMETHEUS_DIR ?? join(process.env.STEGO_CACHE ?? join(homedir(), '.cache/stegocluster'), `prometheus-${PROMETHEUS_RELEASE}`);
  return existsSync(join(dir, name)) ? join(dir, name) : undefined;
}

export function notBuilt(name: 'prometheus' | 'promtool'): string {
  return `${name} ${PROMETHEUS_RELEASE} is not built: run scripts/build-prometheus.sh (see docs/observability.md)`;
}

export interface ToolResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function promtool(args: string[], input?: string): ToolResult {
  const bin = prometheusBinary('promtool');
  if (!bin) throw new Error(notBuilt('promtool'));
  const r = spawnSync(bin, args, { input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** SIGTERM, SIGKILL after 10 s; resolves when the process has exited. */
export async function stopChild(c: ChildProcess | null): Promise<void> {
  if (!c || c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

/**
 * Spawns a server process with its stdout and stderr kept in `output`, and waits until `ready` holds. A
 * process that exits first fails at once, and either failure carries the process's last lines, so a test
 * that could not start a server says why.
 */
export async function spawnServer(
  what: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv | undefined,
  output: string[],
  ready: () => Promise<boolean>,
  timeoutMs: number,
): Promise<ChildProcess> {
  const child = spawn(command, args, { ...(env ? { env } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
  for (const s of [child.stdout, child.stderr]) {
    s?.setEncoding('utf8');
    s?.on('data', (d: string) => output.push(...d.split('\n').filter(Boolean)));
  }
  const tail = (): string => (output.length ? `; its last lines:\n${output.slice(-20).join('\n')}` : '; it printed nothing');
  let onExit: (() => void) | undefined;
  const exited = new Promise<never>((_, reject) => {
    onExit = () => reject(new Error(`${what} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready${tail()}`));
    // 'close' comes after the output streams ended, so the message has the last lines
    child.once('close', onExit);
  });
  try {
    await Promise.race([until(what, ready, timeoutMs, 50), exited]);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) {
      await stopChild(child);
      throw new Error(`${err instanceof Error ? err.message : String(err)}${tail()}`, { cause: err });
    }
    throw err;
  } finally {
    if (onExit) child.off('close', onExit);
    exited.catch(() => undefined);
  }
  return child;
}

/** GET <base>/metrics: the exposition text (throws on a non-2xx answer). */
export async function scrapeMetrics(base: string): Promise<string> {
  const r = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error(`/metrics answered ${r.status}`);
  return r.text();
}

export interface ScrapeTarget {
  address: string;
  labels: Record<string, string>;
}

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

/** Range results of every panel query over a scenario, with its events; what the preview draws. */
export interface Recording {
  start: number;
  end: number;
  step: number;
  events: { t: number; label: string }[];
  panels: { dashboard: string; panel: string; refId: string; expr: string; legend: string; result: PromSample[] }[];
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
}

export class PrometheusServer {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'stego-prometheus-'));
  readonly output: string[] = [];
  port = 0;

  constructor(
    private readonly opts: {
      targets: ScrapeTarget[];
      /** Scrape configs used as they are instead of one static job over `targets`. */
      scrapeConfigs?: Record<string, unknown>[];
      /** A whole configuration used as it is (one the Prometheus Operator generated); targets, scrapeConfigs and intervals are then ignored. */
      config?: Record<string, unknown>;
      rules?: object;
      scrapeInterval?: string;
      evaluationInterval?: string;
    },
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const bin = prometheusBinary('prometheus');
    if (!bin) throw new Error(notBuilt('prometheus'));
    const config: Record<string, unknown> = this.opts.config ? { ...this.opts.config } : {
      global: { scrape_interval: this.opts.scrapeInterval ?? '1s', scrape_timeout: '900ms', evaluation_interval: this.opts.evaluationInterval ?? '1s' },
      scrape_configs: this.opts.scrapeConfigs ?? [{ job_name: 'stegocluster', static_configs: this.opts.targets.map((t) => ({ targets: [t.address], labels: t.labels })) }],
    };
    if (this.opts.rules) {
      writeFileSync(join(this.dir, 'rules.yaml'), dump(this.opts.rules, { lineWidth: -1 }));
      config.rule_files = [join(this.dir, 'rules.yaml')];
    }
    writeFileSync(join(this.dir, 'prometheus.yml'), dump(config));
    this.port = await freePort();
    this.child = await spawnServer(
      'prometheus',
      bin,
      [
        `--config.file=${join(this.dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(this.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        // rules see a killed target's series go stale on the next failed scrape, not 5 minutes later
        '--query.lookback-delta=30s',
        '--log.level=warn',
      ],
      undefined,
      this.output,
      async () => (await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok,
      30_000,
    );
  }

  private async api<T>(path: string, params: Record<string, string>): Promise<T> {
    const res = await fetch(`${this.url}/api/v1/${path}`, { method: 'POST', body: new URLSearchParams(params), signal: AbortSignal.timeout(10_000) });
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`${path} ${JSON.stringify(params)}: ${body.errorType}: ${body.error}`);
    return body.data;
  }

  async query(expr: string): Promise<PromSample[]> {
    return (await this.api<{ result: PromSample[] }>('query', { query: expr })).result;
  }

  async queryRange(expr: string, startS: number, endS: number, stepS: number): Promise<PromSample[]> {
    return (await this.api<{ result: PromSample[] }>('query_range', { query: expr, start: String(startS), end: String(endS), step: String(stepS) })).result;
  }

  async alerts(): Promise<PromAlert[]> {
    const res = await fetch(`${this.url}/api/v1/alerts`, { signal: AbortSignal.timeout(5000) });
    return ((await res.json()) as { data: { alerts: PromAlert[] } }).data.alerts;
  }

  /** Target health as Prometheus sees it, by address. */
  async targets(): Promise<Map<string, string>> {
    const res = await fetch(`${this.url}/api/v1/targets`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { data: { activeTargets: { scrapeUrl: string; health: string }[] } };
    return new Map(body.data.activeTargets.map((t) => [new URL(t.scrapeUrl).host, t.health]));
  }

  /** Every active target with its labels after relabeling, and the targets relabeling dropped. */
  async targetLabels(): Promise<{ active: { labels: Record<string, string>; health: string }[]; dropped: number }> {
    const res = await fetch(`${this.url}/api/v1/targets`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { data: { activeTargets: { labels: Record<string, string>; health: string }[]; droppedTargets: unknown[] } };
    return { active: body.data.activeTargets.map((t) => ({ labels: t.labels, health: t.health })), dropped: body.data.droppedTargets.length };
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One node, alone in its cluster (it elects itself), on free ports with a temp data dir. */
export class SingleNode {
  private child: ChildProcess | null = null;
  readonly dataDir = mkdtempSync(join(tmpdir(), 'stego-metrics-node-'));
  readonly output: string[] = [];
  httpPort = 0;
  /** The node's one API token (read, write, delete), generated per run. */
  readonly apiToken = randomBytes(24).toString('base64url');

  /** Authorization header carrying apiToken. */
  auth(): Record<string, string> {
    return { authorization: `Bearer ${this.apiToken}` };
  }

  get url(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  async start(mainJs: string): Promise<void> {
    this.httpPort = await freePort();
    const raftPort = await freePort();
    this.child = await spawnServer(
      'the single node',
      process.execPath,
      [mainJs],
      {
        ...process.env,
        NODE_ID: 'n1',
        PEERS: `n1=127.0.0.1:${raftPort}`,
        HTTP_PORT: String(this.httpPort),
        RAFT_PORT: String(raftPort),
        DATA_DIR: this.dataDir,
        STEGO_CLUSTER_SECRET: 'metrics-test-secret',
        STEGO_WORKERS: '1',
        STEGO_LOG_LEVEL: 'warn',
        STEGO_API_TOKENS: `metrics-test ${this.apiToken} read,write,delete`,
      },
      this.output,
      async () => {
        const r = await fetch(`${this.url}/cluster/status`, { signal: AbortSignal.timeout(1000) });
        return r.ok && ((await r.json()) as { leader_id: string | null }).leader_id === 'n1';
      },
      20_000,
    );
  }

  async scrape(): Promise<string> {
    return scrapeMetrics(this.url);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/**
 * The operator process (dist/operator/src/main.js) on a free probe port. With a kubeconfig it runs against
 * that API server (leader election off, one namespace watched). Without one it is a standby replica:
 * leader election on, its kubeconfig pointing at a loopback port nothing listens on, so it keeps retrying
 * for the Lease and never reconciles, while its /metrics serves every family the operator defines
 * (labelled ones without series until a reconcile creates them).
 */
export class OperatorProcess {
  private child: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'stego-metrics-operator-'));
  readonly output: string[] = [];
  port = 0;

  constructor(
    private readonly opts: {
      kubeconfig?: string;
      watchNamespace?: string;
      /** With a kubeconfig: compete for the Lease in the watched namespace (a replica of several). */
      leaderElection?: boolean;
      /** POD_NAME: the Lease holder's identity. */
      identity?: string;
    } = {},
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async standbyKubeconfig(): Promise<string> {
    const nowhere = await freePort();
    const kubeconfig = join(this.dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      dump({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'none', cluster: { server: `http://127.0.0.1:${nowhere}` } }],
        users: [{ name: 'none', user: {} }],
        contexts: [{ name: 'none', context: { cluster: 'none', user: 'none' } }],
        'current-context': 'none',
      }),
    );
    return kubeconfig;
  }

  async start(mainJs: string): Promise<void> {
    // a restart keeps its port, so Prometheus scrapes the same target
    if (!this.port) this.port = await freePort();
    const kubeconfig = this.opts.kubeconfig ?? (await this.standbyKubeconfig());
    const namespace = this.opts.watchNamespace ?? 'stego-system';
    this.child = await spawnServer(
      'the operator',
      process.execPath,
      [mainJs],
      {
        ...process.env,
        KUBECONFIG: kubeconfig,
        PROBE_PORT: String(this.port),
        LEADER_ELECTION: this.opts.kubeconfig && !this.opts.leaderElection ? 'false' : 'true',
        POD_NAMESPACE: namespace,
        WATCH_NAMESPACE: this.opts.watchNamespace ?? '',
        POD_NAME: this.opts.identity ?? 'metrics-test',
        LOG_LEVEL: 'warn',
      },
      this.output,
      async () => (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(1000) })).ok,
      20_000,
    );
  }

  async scrape(): Promise<string> {
    return scrapeMetrics(this.url);
  }

  /** SIGTERM (the replica releases its Lease on the way out) and wait for the exit; the process can be started again. */
  async terminate(): Promise<void> {
    await stopChild(this.child);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
