// The local Kubernetes itself: stage 1 serves the API the operator's integration tests need, and teardown
// leaves the host as it found it. Skipped, with the reason, where the binaries are not built or not root.

import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pollUntil } from '../../node/test/cluster/harness.js';
import { runCommand, type RunOptions, type RunResult } from '../support/kube.js';
import { availability, localKubernetesPaths, useLocalKubernetes, type Stage } from '../support/local-kubernetes.js';

/** kubectl of the local Kubernetes' version against a kubeconfig; the result is returned, failures included. */
async function kubectlOn(kubeconfig: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { k8sBin } = await localKubernetesPaths();
  return runCommand(join(k8sBin, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], opts);
}

describe('local Kubernetes stage 1 (etcd + kube-apiserver)', function () {
  const k8s = useLocalKubernetes(this, 'stage1');

  const kubectl = async (...args: string[]): Promise<string> => (await kubectlOn(k8s.kubeconfig, args)).stdout;

  it('serves the pinned version with RBAC and the built-in namespaces', async function () {
    const { version } = await localKubernetesPaths();
    const v = JSON.parse(await kubectl('version', '-o', 'json')) as { serverVersion: { gitVersion: string } };
    expect(v.serverVersion.gitVersion).to.equal(version);
    const namespaces = await kubectl('get', 'namespaces', '-o', 'name');
    expect(namespaces.split('\n')).to.include.members(['namespace/default', 'namespace/kube-system']);
    // RBAC: a user without bindings may not list pods (`auth can-i` answers "no" and exits 1).
    const denied = await kubectlOn(k8s.kubeconfig, ['auth', 'can-i', 'list', 'pods', '--as', 'stego-nobody'], { allowFailure: true });
    expect(denied.stdout.trim()).to.equal('no');
  });

  it('advertises the kubernetes Service on the address of the interface it created, not loopback', async function () {
    const slices = JSON.parse(await kubectl('-n', 'default', 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=kubernetes', '-o', 'json')) as {
      items: { endpoints: { addresses: string[] }[] }[];
    };
    const addresses = slices.items.flatMap((s) => s.endpoints.flatMap((e) => e.addresses));
    expect(addresses).to.have.length(1);
    expect(addresses[0]).to.match(/^198\.1[89]\./);
  });

  it('serves custom resources and service-account tokens (what an operator needs)', async function () {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'probes.local.stego.io' },
      spec: {
        group: 'local.stego.io',
        scope: 'Namespaced',
        names: { plural: 'probes', singular: 'probe', kind: 'Probe' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', properties: { n: { type: 'integer', minimum: 1 } } } } } },
          },
        ],
      },
    };
    const apply = (obj: unknown) => kubectlOn(k8s.kubeconfig, ['apply', '-f', '-'], { input: JSON.stringify(obj), allowFailure: true });
    expect((await apply(crd)).code).to.equal(0);
    await kubectl('wait', '--for=condition=Established', 'crd/probes.local.stego.io', '--timeout=30s');
    const probe = (n: number) => ({ apiVersion: 'local.stego.io/v1', kind: 'Probe', metadata: { name: `p${n}`, namespace: 'default' }, spec: { n } });
    expect((await apply(probe(3))).code).to.equal(0);
    const refused = await apply(probe(0));
    expect(refused.code).to.equal(1);
    expect(refused.stderr).to.match(/spec\.n/);
    await kubectl('-n', 'default', 'create', 'serviceaccount', 'probe');
    const token = (await kubectl('-n', 'default', 'create', 'token', 'probe')).trim();
    expect(token.split('.')).to.have.length(3);
  });
});

describe('local Kubernetes stage 2 (a full single node)', function () {
  const k8s = useLocalKubernetes(this, 'stage2');
  const ns = `local-smoke-${process.pid}`;

  const kubectl = async (args: string[], input?: string): Promise<string> =>
    (await kubectlOn(k8s.kubeconfig, args, input === undefined ? {} : { input })).stdout;

  it('has one Ready node at the address of the interface it created', async function () {
    const node = JSON.parse(await kubectl(['get', 'nodes', '-o', 'json'])) as {
      items: { status: { addresses: { type: string; address: string }[]; conditions: { type: string; status: string }[] } }[];
    };
    expect(node.items).to.have.length(1);
    expect(node.items[0]!.status.conditions.find((c) => c.type === 'Ready')?.status).to.equal('True');
    expect(node.items[0]!.status.addresses.find((a) => a.type === 'InternalIP')?.address).to.match(/^198\.18\./);
  });

  it('resolves cluster names through CoreDNS and refuses every other name (nothing leaves the machine)', async function () {
    this.timeout(120_000);
    await kubectl(['create', 'namespace', ns]);
    await kubectl(['-n', ns, 'run', 'dns-probe', '--image=stegocluster.local/busybox:local', '--image-pull-policy=Never', '--restart=Never', '--command', '--', 'sleep', '600']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'pod/dns-probe', '--timeout=90s']);
    const inside = await kubectl(['-n', ns, 'exec', 'dns-probe', '--', 'nslookup', 'kubernetes.default.svc.cluster.local']);
    expect(inside).to.match(/Address: 198\.18\.16\.1\b/);
    const outside = await kubectlOn(k8s.kubeconfig, ['-n', ns, 'exec', 'dns-probe', '--', 'nslookup', 'example.com'], { allowFailure: true });
    expect(outside.code).to.not.equal(0);
    expect(outside.stdout).to.match(/REFUSED/);
  });

  it('never pulls an image: a pod asking for one from a registry fails without leaving the machine', async function () {
    this.timeout(120_000);
    await kubectl(['-n', ns, 'run', 'pull-probe', '--image=docker.io/library/alpine:3.20', '--image-pull-policy=Always', '--restart=Never']);
    // The kubelet's pull attempt fails at containerd's closed proxy port, and the pod stays waiting on it.
    const deadline = Date.now() + 90_000;
    let events = '';
    let waiting = '';
    while (Date.now() < deadline) {
      events = await kubectl(['-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=pull-probe', '-o', 'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}']);
      waiting = await kubectl(['-n', ns, 'get', 'pod', 'pull-probe', '-o', 'jsonpath={.status.containerStatuses[0].state.waiting.reason}']);
      if (/Failed: /.test(events) && /ErrImagePull|ImagePullBackOff/.test(waiting)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(events).to.match(/Failed: .*127\.0\.0\.1:9/);
    expect(waiting).to.match(/ErrImagePull|ImagePullBackOff/);
  });

  it('runs the real StegoCluster node image as a 3-member StatefulSet with volumes, reachable on a NodePort', async function () {
    this.timeout(300_000);
    const { scriptsDir } = await localKubernetesPaths();
    const image = 'stegocluster.local/stegocluster-node:local';
    const { stdout: archive } = await runCommand(join(scriptsDir, 'images.sh'), ['node', image, '--', 'node', 'dist/node/src/main.js'], { timeoutMs: 240_000 });
    await runCommand(join(scriptsDir, 'images.sh'), ['import', archive.trim().split('\n').pop()!]);
    const manifest = readFileSync(join(scriptsDir, 'manifests', 'stego-statefulset.yaml'), 'utf8').replaceAll('@NODE_IMAGE@', image);
    await kubectl(['-n', ns, 'apply', '-f', '-'], manifest);
    await kubectl(['-n', ns, 'rollout', 'status', 'statefulset/stego-smoke', '--timeout=180s']);
    const nodePort = (await kubectl(['-n', ns, 'get', 'service', 'stego-smoke', '-o', 'jsonpath={.spec.ports[0].nodePort}'])).trim();
    const nodeIp = (await kubectl(['get', 'nodes', '-o', 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}'])).trim();
    const base = `http://${nodeIp}:${nodePort}`;
    const form = new FormData();
    form.set('message', 'through a NodePort of the local Kubernetes');
    // kube-proxy programs a new NodePort a moment after the pods are ready: a refused connection is retried
    // until a deadline, any HTTP answer ends the wait.
    const embedded = await pollUntil(
      `an embed through NodePort ${nodePort}`,
      () => fetch(`${base}/api/embed`, { method: 'POST', body: form }).catch(() => undefined),
      { deadlineMs: 60_000, intervalMs: 250 },
    );
    expect(embedded.status).to.equal(200);
    const back = new FormData();
    back.set('file', new Blob([await embedded.arrayBuffer()], { type: 'image/png' }), 'stego.png');
    const extracted = await fetch(`${base}/api/extract`, { method: 'POST', body: back });
    expect(await extracted.json()).to.deep.equal({ message: 'through a NodePort of the local Kubernetes' });
    const status = (await (await fetch(`${base}/cluster/status`)).json()) as { nodes: unknown[]; leader_id: string | null };
    expect(status.nodes).to.have.length(3);
    expect(status.leader_id).to.match(/^stego-smoke-[0-2]$/);
    // The API server reaches pods (proxy) and the kubelet (logs) at the node's address.
    const metrics = await kubectl(['get', '--raw', `/api/v1/namespaces/${ns}/pods/stego-smoke-0:8080/proxy/metrics`]);
    expect(metrics).to.match(/^# TYPE /m);
    expect(await kubectl(['-n', ns, 'logs', 'stego-smoke-0', '--tail=5'])).to.not.equal('');
  });
});

for (const stage of ['stage1', 'stage2'] as Stage[]) {
  describe(`local Kubernetes ${stage} teardown`, function () {
    before(async function () {
      const a = await availability(stage);
      if (!a.available) {
        console.log(`      skipped: ${a.reason}`);
        this.skip();
      }
      if (existsSync((await localKubernetesPaths()).kubeconfig)) {
        console.log('      skipped: the local Kubernetes is already up (used by someone else); the check needs it down');
        this.skip();
      }
    });

    it('leaves no process, mount, interface, iptables rule, nftables table, NFQUEUE binding, cgroup or changed sysctl behind', async function () {
      this.timeout(stage === 'stage1' ? 120_000 : 600_000);
      const { scriptsDir } = await localKubernetesPaths();
      const r = await runCommand(join(scriptsDir, 'check-teardown.sh'), [stage], { timeoutMs: 540_000, allowFailure: true });
      expect(r.code, `check-teardown.sh ${stage}:\n${r.stdout}\n${r.stderr}`).to.equal(0);
      expect(r.stdout).to.match(/^teardown clean/m);
    });
  });
}
