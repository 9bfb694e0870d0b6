// What the observability tests on a real kube-apiserver share: installing CustomResourceDefinitions and
// waiting until the API server serves them.
import type { Context } from 'mocha';
import { customResourceDefinition } from '../../operator/src/api/schema.js';
import type { KObject, KubeClient } from '../../operator/src/k8s/client.js';
import { findApiServer } from '../../operator/test/integration/env.js';
import { until } from '../../node/test/lb/local-cluster-harness.js';

type Crd = KObject & { status?: { conditions?: { type: string; status: string }[] } };

/** Server-side applies each CRD and waits for all of them to be Established. */
export async function installCrds(client: KubeClient, crds: KObject[]): Promise<void> {
  for (const crd of crds) await client.apply(crd);
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    await until(`the CRD ${name} to be established`, async () => {
      const got = await client.get<Crd>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    }, 30_000, 100);
  }
}

/**
 * For a suite's `before` hook: the API server (findApiServer) with the StegoCluster CRD installed, or the
 * suite skipped with the reason printed, when `missing` names an absent prerequisite or no API server answers.
 */
export async function apiServerOrSkip(ctx: Context, missing = ''): Promise<{ client: KubeClient; source: string }> {
  const found = missing ? { skip: missing } : await findApiServer();
  if ('skip' in found) {
    console.log(`      skipped: ${found.skip}`);
    ctx.skip();
  }
  const { client, source } = found as { client: KubeClient; source: string };
  await installStegoCrd(client);
  return { client, source };
}

/** The StegoCluster CRD, established. */
export async function installStegoCrd(client: KubeClient): Promise<void> {
  await installCrds(client, [customResourceDefinition() as KObject]);
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec?: { containers?: { name: string; image?: string }[] };
}

/**
 * What a workload controller and the kubelet would make of a pod template on stage 1 (neither runs there):
 * a pod with the template's labels (plus `extraLabels`, e.g. the StatefulSet's pod-name label) and its
 * containers' names and images, then a status saying it runs, ready, at `ip`.
 */
export async function runningPodFromTemplate(client: KubeClient, namespace: string, name: string, template: PodTemplate, ip: string, extraLabels: Record<string, string> = {}): Promise<void> {
  const containers = (template.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image ?? 'none' }));
  await client.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: { ...(template.metadata?.labels ?? {}), ...extraLabels } },
    spec: { automountServiceAccountToken: false, containers },
  } as KObject);
  await client.mergePatch(`/api/v1/namespaces/${namespace}/pods/${name}/status`, {
    status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: 'True' }] },
  });
}
