// The local Kubernetes of e2e/local/ seen from a mocha test: start stage 1 (etcd + kube-apiserver) or stage 2
// (a full single node) when its binaries are cached, or say why it cannot. Paths come from e2e/local/lib.sh,
// the scripts' single source of truth, so the tests and the scripts never disagree about where things live.
//
//   describe('operator against a real API server', function () {
//     const k8s = useLocalKubernetes(this, 'stage1');   // skips the suite with the reason when unavailable
//     it('...', () => { k8s.kubeconfig ... });
//   });
//
// STEGO_KUBECONFIG set, or the stage already running: use that cluster as is, start and stop nothing.
// The local Kubernetes is one per machine (fixed interface, addresses and ports): test processes that use it
// run one after another, not in parallel.

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type Stage = 'stage1' | 'stage2';

export interface LocalKubernetesPaths {
  repoRoot: string;
  scriptsDir: string;
  kubeconfig: string;
  k8sBin: string;
  toolsBin: string;
  version: string;
}

export type Availability = { available: true } | { available: false; reason: string };

/** The repository root: the nearest directory above this module holding e2e/local/lib.sh. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'e2e', 'local', 'lib.sh'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('e2e/local/lib.sh not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export async function localKubernetesPaths(): Promise<LocalKubernetesPaths> {
  const root = repoRoot();
  const scriptsDir = join(root, 'e2e', 'local');
  const { stdout } = await run('bash', [
    '-c',
    'source "$1/lib.sh" && printf "%s\\n" "$KUBECONFIG_PATH" "$K8S_BIN" "$TOOLS_BIN" "$K8S_VERSION"',
    'lib',
    scriptsDir,
  ]);
  const [kubeconfig, k8sBin, toolsBin, version] = stdout.trimEnd().split('\n');
  if (!kubeconfig || !k8sBin || !toolsBin || !version) throw new Error(`e2e/local/lib.sh printed ${JSON.stringify(stdout)}`);
  return { repoRoot: root, scriptsDir, kubeconfig, k8sBin, toolsBin, version };
}

const STAGE_BINARIES: Record<Stage, { k8s: string[]; tools: string[]; commands: string[] }> = {
  stage1: { k8s: ['kube-apiserver', 'kubectl'], tools: [], commands: ['etcd', 'openssl', 'ip'] },
  stage2: {
    k8s: ['kube-apiserver', 'kubectl', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy'],
    tools: ['coredns'],
    commands: ['etcd', 'openssl', 'ip', 'containerd', 'runc', 'ctr', 'iptables', 'nft'],
  },
};

/** Whether a stage can start here without building anything, and if not, what is missing. */
export async function availability(stage: Stage, paths?: LocalKubernetesPaths): Promise<Availability> {
  if (process.platform !== 'linux') return { available: false, reason: 'the local Kubernetes runs on Linux only' };
  if (process.getuid?.() !== 0) return { available: false, reason: 'the local Kubernetes needs root (network interfaces, mounts)' };
  const p = paths ?? (await localKubernetesPaths());
  const missing = [
    ...STAGE_BINARIES[stage].k8s.filter((b) => !existsSync(join(p.k8sBin, b))).map((b) => `${b} ${p.version}`),
    ...STAGE_BINARIES[stage].tools.filter((b) => !existsSync(join(p.toolsBin, b))),
  ];
  if (missing.length > 0) {
    const what = stage === 'stage1' ? 'stage1' : missing.map((m) => m.split(' ')[0]).join(' ');
    return { available: false, reason: `not built: ${missing.join(', ')} (run e2e/local/build.sh ${what})` };
  }
  const absent: string[] = [];
  for (const c of STAGE_BINARIES[stage].commands) {
    try {
      await run('bash', ['-c', 'command -v "$1"', 'probe', c]);
    } catch {
      absent.push(c);
    }
  }
  if (absent.length > 0) return { available: false, reason: `missing commands: ${absent.join(', ')} (see docs/e2e.md)` };
  return { available: true };
}

export interface RunningKubernetes {
  kubeconfig: string;
  /** Whether this process started it (and so stops it). */
  owned: boolean;
  stop(): Promise<void>;
}

/** Starts a stage with its up script (idempotent) and returns the admin kubeconfig. */
export async function startLocalKubernetes(stage: Stage): Promise<RunningKubernetes> {
  const external = process.env.STEGO_KUBECONFIG;
  if (external) return { kubeconfig: external, owned: false, stop: async () => {} };
  const paths = await localKubernetesPaths();
  if (await alreadyUp(stage, paths)) return { kubeconfig: paths.kubeconfig, owned: false, stop: async () => {} };
  const script = join(paths.scriptsDir, stage === 'stage1' ? 'stage1-up.sh' : 'stage2-up.sh');
  try {
    const { stdout } = await run(script, [], { maxBuffer: 16 * 1024 * 1024, timeout: stage === 'stage1' ? 60_000 : 300_000 });
    const kubeconfig = stdout.trimEnd().split('\n').pop() ?? paths.kubeconfig;
    return { kubeconfig, owned: true, stop: () => stopLocalKubernetes() };
  } catch (err) {
    await stopLocalKubernetes().catch(() => {});
    const e = err as { stderr?: string; message: string };
    throw new Error(`${stage} did not come up: ${e.message}\n${e.stderr ?? ''}`, { cause: err });
  }
}

/**
 * Whether the stage is already running (started by CI or a developer): then it is used and left running.
 * Stage 1 is up when the API server is ready; stage 2 when a node is also registered.
 */
async function alreadyUp(stage: Stage, paths: LocalKubernetesPaths): Promise<boolean> {
  if (!existsSync(paths.kubeconfig)) return false;
  const kubectl = join(paths.k8sBin, 'kubectl');
  try {
    await run(kubectl, ['--kubeconfig', paths.kubeconfig, '--request-timeout=3s', 'get', '--raw', '/readyz'], { timeout: 5_000 });
    if (stage === 'stage1') return true;
    const { stdout } = await run(kubectl, ['--kubeconfig', paths.kubeconfig, '--request-timeout=3s', 'get', 'nodes', '-o', 'name'], { timeout: 5_000 });
    return stdout.trim().length > 0;
  } catch {
    return false;
  }
}

/** Tears everything down (down.sh: processes, mounts, interfaces, iptables, cgroups, sysctls). */
export async function stopLocalKubernetes(): Promise<void> {
  const paths = await localKubernetesPaths();
  await run(join(paths.scriptsDir, 'down.sh'), [], { timeout: 120_000 });
}

/**
 * Mocha glue: in the suite's before hook, starts the stage (or skips the suite, printing the reason), and
 * tears it down in after. The returned object's kubeconfig is set once the before hook has run.
 */
export function useLocalKubernetes(suite: Mocha.Suite, stage: Stage): { kubeconfig: string } {
  const handle = { kubeconfig: '' };
  let running: RunningKubernetes | undefined;
  suite.beforeAll(async function () {
    this.timeout(stage === 'stage1' ? 90_000 : 360_000);
    if (!process.env.STEGO_KUBECONFIG) {
      const a = await availability(stage);
      if (!a.available) {
        console.log(`      skipped: local Kubernetes ${stage} unavailable: ${a.reason}`);
        this.skip();
      }
    }
    running = await startLocalKubernetes(stage);
    handle.kubeconfig = running.kubeconfig;
  });
  suite.afterAll(async function () {
    this.timeout(120_000);
    await running?.stop();
  });
  return handle;
}
