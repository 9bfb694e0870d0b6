// Finds a real kube-apiserver for the integration tests: STEGO_IT_KUBECONFIG or STEGO_KUBECONFIG (the e2e
// work's name for it), else the local stage-1 control plane's kubeconfig (e2e/local/stage1-up.sh) when it
// answers. Never the user's KUBECONFIG by
// default: these tests install a CRD and create namespaces.
import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { KubeClient, resourcePath } from '../../src/k8s/client.js';
import { NodeProcess } from '../../../node/test/cluster/harness.js';

export const STAGE1_KUBECONFIG = '/var/lib/stegocluster-k8s/admin.kubeconfig';

export async function findApiServer(): Promise<{ kc: KubeConfig; client: KubeClient; source: string } | { skip: string }> {
  const path = process.env['STEGO_IT_KUBECONFIG'] || process.env['STEGO_KUBECONFIG'] || (existsSync(STAGE1_KUBECONFIG) ? STAGE1_KUBECONFIG : '');
  if (!path) {
    return { skip: 'no API server: start one with `export STEGO_KUBECONFIG=$(e2e/local/stage1-up.sh)` (kube-apiserver + etcd), or point STEGO_KUBECONFIG at a test cluster' };
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const client = new KubeClient(kc);
  try {
    await client.request('GET', '/readyz', { timeoutMs: 3000 });
  } catch (err) {
    return { skip: `the API server of ${path} does not answer /readyz (${err instanceof Error ? err.message : String(err)})` };
  }
  return { kc, client, source: path };
}

export async function createNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e4)}`;
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } } as never);
  // the ServiceAccount admission plugin wants a default ServiceAccount before any pod; kube-controller-manager
  // (absent in stage 1) would create it
  await client.create({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } } as never);
  return name;
}

export async function deleteNamespace(client: KubeClient, name: string): Promise<void> {
  await client.delete(`/api/v1/namespaces/${name}`);
}

/** A real StegoCluster node process standing in for one pod (no kubelet in stage 1), on loopback. */
export function memberProcess(id: string, httpPort: number, raftPort: number, dataDir: string, env: Record<string, string>): NodeProcess {
  const base = { NODE_ID: id, HTTP_HOST: '127.0.0.1', HTTP_PORT: String(httpPort), RAFT_HOST: '127.0.0.1', RAFT_PORT: String(raftPort), DATA_DIR: dataDir, STEGO_LOG_LEVEL: 'warn' };
  return new NodeProcess(id, httpPort, raftPort, dataDir, { ...base, ...env }, 200, []);
}

export async function killMember(n: NodeProcess): Promise<void> {
  if (n.state === 'stopped') return;
  n.signal('SIGKILL');
  await n.exited();
}

/** Mocha hooks: find the API server (or skip the suite, saying why) and give the suite its own namespace. */
export function useApiServer(prefix: string): { client: KubeClient; kc: KubeConfig; source: string; namespace: string } {
  const ctx = { namespace: '' } as { client: KubeClient; kc: KubeConfig; source: string; namespace: string };
  before(async function () {
    const found = await findApiServer();
    if ('skip' in found) {
      console.log(`    skipped: ${found.skip}`);
      return this.skip();
    }
    Object.assign(ctx, found);
    ctx.namespace = await createNamespace(ctx.client, prefix);
  });
  after(async () => {
    if (ctx.namespace) await deleteNamespace(ctx.client, ctx.namespace);
  });
  return ctx;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** What the StatefulSet controller and the kubelet would do for a member pod: the object and its status. */
export async function createRunningPod(client: KubeClient, namespace: string, cluster: string, ordinal: number): Promise<void> {
  const name = `${cluster}-${ordinal}`;
  await client.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: {
        'app.kubernetes.io/name': 'stegocluster', 'app.kubernetes.io/instance': cluster, 'app.kubernetes.io/component': 'node',
        'app.kubernetes.io/managed-by': 'stego-operator', 'stego.io/cluster': cluster,
      },
    },
    spec: { automountServiceAccountToken: false, containers: [{ name: 'node', image: 'stegocluster.local/node:local' }] },
  } as never);
  await client.mergePatch(resourcePath('v1', 'Pod', namespace, name, 'status'), {
    status: { phase: 'Running', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }], conditions: [{ type: 'Ready', status: 'True' }] },
  });
}
