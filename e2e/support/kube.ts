// kubectl and helm as the e2e suite uses them: real CLIs against the current kubeconfig context (KUBECONFIG),
// so the suite exercises exactly what a user types. Failures carry the command and its stderr.

import { execFile } from 'node:child_process';

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
  /** Resolve with the result instead of throwing when the command fails. */
  allowFailure?: boolean;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const KUBECTL = process.env.STEGO_E2E_KUBECTL ?? 'kubectl';
const HELM = process.env.STEGO_E2E_HELM ?? 'helm';

export function runCommand(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: process.env },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        const result = { code, stdout: String(stdout), stderr: String(stderr) };
        if (err && !opts.allowFailure) {
          reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${result.code}):\n${result.stderr || result.stdout}`));
          return;
        }
        resolve(result);
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

export async function kubectl(args: string[], opts: RunOptions = {}): Promise<string> {
  return (await runCommand(KUBECTL, args, opts)).stdout;
}

export function kubectlResult(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runCommand(KUBECTL, args, { ...opts, allowFailure: true });
}

export async function kubectlJson<T = KubeObject>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T;
}

export async function helm(args: string[], opts: RunOptions = {}): Promise<string> {
  return (await runCommand(HELM, args, { timeoutMs: 600_000, ...opts })).stdout;
}

/** Applies a manifest given as an object (kubectl apply -f -). */
export async function apply(obj: unknown, namespace?: string): Promise<string> {
  const ns = namespace ? ['-n', namespace] : [];
  return kubectl(['apply', ...ns, '-f', '-'], { input: JSON.stringify(obj) });
}

/** Applies a manifest and returns kubectl's result without throwing (for objects the API server must refuse). */
export function tryApply(obj: unknown, namespace?: string): Promise<RunResult> {
  const ns = namespace ? ['-n', namespace] : [];
  return kubectlResult(['apply', ...ns, '-f', '-'], { input: JSON.stringify(obj) });
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
    deletionTimestamp?: string;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown> & { conditions?: Condition[] };
}

export interface KubeList<T = KubeObject> {
  items: T[];
}

export function condition(obj: KubeObject, type: string): Condition | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

/**
 * Rows of kubectl's table output keyed by header. Cells are cut at the header's column offsets (kubectl
 * left-aligns every column under its header), so an empty cell stays empty instead of shifting the row.
 */
export function parseTable(text: string): Record<string, string>[] {
  const [header, ...lines] = text.replace(/\s+$/, '').split('\n');
  if (!header) return [];
  const starts = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
  return lines
    .filter((l) => l.trim().length > 0)
    .map((line) => Object.fromEntries(starts.map((c, i) => [c.name, line.slice(c.at, starts[i + 1]?.at ?? line.length).trim()])));
}
