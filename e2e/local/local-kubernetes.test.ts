// The local Kubernetes itself: stage 1 serves the API the operator's integration tests need, and teardown
// leaves the host as it found it. Skipped, with the reason, where the binaries are not built or not root.

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { availability, localKubernetesPaths, useLocalKubernetes, type Stage } from '../support/local-kubernetes.js';

const run = promisify(execFile);

describe('local Kubernetes stage 1 (etcd + kube-apiserver)', function () {
  const k8s = useLocalKubernetes(this, 'stage1');

  async function kubectl(...args: string[]): Promise<string> {
    const { k8sBin } = await localKubernetesPaths();
    const { stdout } = await run(join(k8sBin, 'kubectl'), ['--kubeconfig', k8s.kubeconfig, ...args]);
    return stdout;
  }

  it('serves the pinned version with RBAC and the built-in namespaces', async function () {
    const { version } = await localKubernetesPaths();
    const v = JSON.parse(await kubectl('version', '-o', 'json')) as { serverVersion: { gitVersion: string } };
    expect(v.serverVersion.gitVersion).to.equal(version);
    const namespaces = await kubectl('get', 'namespaces', '-o', 'name');
    expect(namespaces.split('\n')).to.include.members(['namespace/default', 'namespace/kube-system']);
    // RBAC: a user without bindings may not list pods (`auth can-i` answers "no" and exits 1).
    const denied = await kubectl('auth', 'can-i', 'list', 'pods', '--as', 'stego-nobody').catch((e: { stdout?: string }) => e.stdout ?? '');
    expect(denied.trim()).to.equal('no');
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
    const { k8sBin } = await localKubernetesPaths();
    const apply = (obj: unknown) =>
      new Promise<{ code: number; stderr: string }>((resolve) => {
        const child = execFile(join(k8sBin, 'kubectl'), ['--kubeconfig', k8s.kubeconfig, 'apply', '-f', '-'], (err, _out, stderr) =>
          resolve({ code: err ? 1 : 0, stderr: String(stderr) }),
        );
        child.stdin!.end(JSON.stringify(obj));
      });
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

for (const stage of ['stage1', 'stage2'] as Stage[]) {
  describe(`local Kubernetes ${stage} teardown`, function () {
    before(async function () {
      const a = await availability(stage);
      if (!a.available) {
        console.log(`      skipped: ${a.reason}`);
        this.skip();
      }
    });

    it('leaves no process, mount, interface, iptables rule, cgroup or changed sysctl behind', async function () {
      this.timeout(stage === 'stage1' ? 120_000 : 600_000);
      const { scriptsDir } = await localKubernetesPaths();
      const r = await run(join(scriptsDir, 'check-teardown.sh'), [stage], { maxBuffer: 16 * 1024 * 1024 }).catch(
        (err: { stdout?: string; stderr?: string; message: string }) => {
          throw new Error(`check-teardown.sh ${stage} failed:\n${err.stdout ?? ''}\n${err.stderr ?? err.message}`);
        },
      );
      expect(r.stdout).to.match(/^teardown clean/m);
    });
  });
}
