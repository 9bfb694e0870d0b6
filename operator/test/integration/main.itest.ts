// The operator process itself against a real kube-apiserver: takes the Lease, serves /healthz /readyz
// /metrics, logs JSON, and on SIGTERM gives the Lease up and exits 0.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort, pollUntil } from '../../../node/test/cluster/harness.js';
import { REPO_ROOT } from '../../src/api/repo-root.js';
import { customResourceDefinition } from '../../src/api/schema.js';
import { resourcePath, type KObject } from '../../src/k8s/client.js';
import type { Lease } from '../../src/k8s/lease.js';
import { useApiServer } from './env.js';

describe('operator integration: the operator process', function () {
  this.timeout(60_000);
  const api = useApiServer('stego-op-main');
  // as the chart does: the CRD is there before the operator starts (without it, the operator waits for its
  // StegoCluster cache, then exits so that its restart finds it)
  before(async () => {
    await api.client?.apply(customResourceDefinition() as KObject);
  });

  it('leads through the Lease, answers its probes and metrics, and releases the Lease on SIGTERM', async () => {
    const { client, source, namespace } = api;
    const port = await freePort();
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/operator/src/main.js')], {
      env: { ...process.env, KUBECONFIG: source, POD_NAME: 'op-it-0', POD_NAMESPACE: namespace, WATCH_NAMESPACE: namespace, PROBE_PORT: String(port), LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    child.stdout.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
    child.stderr.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter(Boolean)));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const base = `http://127.0.0.1:${port}`;
      await pollUntil('readyz', async () => ((await fetch(`${base}/readyz`).catch(() => null))?.status === 200 ? true : undefined), { deadlineMs: 20_000 });
      const lease = await pollUntil('the Lease held', async () => {
        const l = await client.find<Lease>(resourcePath('coordination.k8s.io/v1', 'Lease', namespace, 'stego-operator'));
        return l?.spec?.holderIdentity === 'op-it-0' ? l : undefined;
      });
      expect(lease.spec!.leaseDurationSeconds).to.equal(15);
      await pollUntil('caches synced', async () => (lines.some((l) => l.includes('caches synced')) ? true : undefined));
      expect((await fetch(`${base}/healthz`)).status).to.equal(200);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      for (const m of ['stego_operator_reconciles_total', 'stego_operator_reconcile_duration_seconds', 'stego_operator_workqueue_depth', 'stego_operator_is_leader 1', 'stego_operator_watch_restarts_total']) {
        expect(metrics).to.include(m);
      }
      for (const l of lines) expect(() => JSON.parse(l), `a JSON log line: ${l}`).to.not.throw();
      child.kill('SIGTERM');
      expect(await exited).to.equal(0);
      const released = await client.get<Lease>(resourcePath('coordination.k8s.io/v1', 'Lease', namespace, 'stego-operator'));
      expect(released.spec!.holderIdentity ?? null).to.equal(null);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
