// The Prometheus Operator for tests: the binary and CRDs scripts/build-prometheus-operator.sh caches, and
// the operator process run against an API server (its kubeconfig), one namespace, its web server on a free
// loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { load } from 'js-yaml';
import type { KObject, KubeClient } from '../../operator/src/k8s/client.js';
import { resourcePath } from '../../operator/src/k8s/client.js';
import { freePort, until } from '../../node/test/lb/local-cluster-harness.js';
import { stopChild } from './prometheus.js';

export const PROMETHEUS_OPERATOR_VERSION = '0.85.0';

/** The build's directory (`operator`, `crds/`): $PROMETHEUS_OPERATOR_DIR or the cache; undefined when not built. */
export function prometheusOperatorDir(): string | undefined {
  const dir = process.env.PROMETHEUS_OPERATOR_DIR ?? join(process.env.STEGO_CACHE ?? join(homedir(), '.cache/stegocluster'), `prometheus-operator-${PROMETHEUS_OPERATOR_VERSION}`);
  return existsSync(join(dir, 'operator')) && existsSync(join(dir, 'crds')) ? dir : undefined;
}

export function prometheusOperatorNotBuilt(): string {
  return `the Prometheus Operator ${PROMETHEUS_OPERATOR_VERSION} is not built: run scripts/build-prometheus-operator.sh (see docs/observability.md)`;
}

/** The module's own CustomResourceDefinitions (monitoring.coreos.com), as the build copied them. */
export function prometheusOperatorCrds(dir: string): KObject[] {
  const crdDir = join(dir, 'crds');
  return readdirSync(crdDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => load(readFileSync(join(crdDir, f), 'utf8')) as KObject);
}

/** The configuration file the Prometheus Operator generated for a Prometheus resource: its Secret's gzipped file. */
export async function generatedConfigText(client: KubeClient, namespace: string, prometheus: string): Promise<string | null> {
  const secret = await client.find<KObject & { data?: Record<string, string> }>(resourcePath('v1', 'Secret', namespace, `prometheus-${prometheus}`));
  const gz = secret?.data?.['prometheus.yaml.gz'];
  return gz ? gunzipSync(Buffer.from(gz, 'base64')).toString('utf8') : null;
}

type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
type StatefulSetObj = KObject & { spec: { template: { spec: { containers: { name: string; env?: EnvVar[] }[] } } } };

/**
 * The environment of the config reloader in pod `ordinal` of the StatefulSet the Prometheus Operator made
 * for a Prometheus resource: literal values (SHARD) and the pod's name for a `metadata.name` field reference
 * (POD_NAME). The generated file refers to them as `$(SHARD)` and `$(POD_NAME)`.
 */
export async function reloaderEnv(client: KubeClient, namespace: string, prometheus: string, ordinal = 0): Promise<Record<string, string>> {
  const name = `prometheus-${prometheus}`;
  // the operator writes the configuration Secret before it creates the StatefulSet
  const sts = await until(`the Prometheus Operator's StatefulSet ${name}`, () => client.find<StatefulSetObj>(resourcePath('apps/v1', 'StatefulSet', namespace, name)), 60_000, 200);
  const reloader = sts.spec.template.spec.containers.find((c) => c.name === 'config-reloader');
  if (!reloader) throw new Error(`StatefulSet ${name} has no config-reloader container`);
  const env: Record<string, string> = {};
  for (const e of reloader.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = `${name}-${ordinal}`;
  }
  return env;
}

/**
 * What prometheus-config-reloader does to the file before Prometheus reads it (Thanos's reloader, which it
 * runs): every `$(NAME)` replaced by that environment variable's value; an unset one is an error.
 */
export function expandReloaderEnv(text: string, env: Record<string, string>): string {
  return text.replace(/\$\(([a-zA-Z_0-9]+)\)/g, (_, name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`the generated configuration refers to $(${name}), which the config reloader's environment does not set`);
    return v;
  });
}

export class PrometheusOperatorProcess {
  private child: ChildProcess | null = null;
  readonly output: string[] = [];
  port = 0;

  constructor(private readonly opts: { dir: string; kubeconfig: string; namespace: string }) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const child = spawn(
      join(this.opts.dir, 'operator'),
      [`--namespaces=${this.opts.namespace}`, `--web.listen-address=127.0.0.1:${this.port}`, '--log-level=info', '--log-format=logfmt'],
      { env: { ...process.env, KUBECONFIG: this.opts.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    for (const s of [child.stdout, child.stderr]) {
      s?.setEncoding('utf8');
      s?.on('data', (d: string) => this.output.push(...d.split('\n').filter(Boolean)));
    }
    child.once('exit', (code, signal) => this.output.push(`[exited code=${code} signal=${signal}]`));
    await until('the Prometheus Operator to serve /healthz', async () => {
      if (child.exitCode !== null) throw new Error(`the Prometheus Operator exited: ${this.output.slice(-10).join('\n')}`);
      return (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok;
    }, 60_000, 200);
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
  }
}
