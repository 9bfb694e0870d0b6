// The hardened-deployment rules (issue 13) applied to every workload the operator builds and the chart
// renders, as one policy: any pod that is added later meets the same checks without a new test.
//   pods: non-root, seccomp RuntimeDefault, no host namespaces or hostPath, no service-account token unless
//         the pod talks to the Kubernetes API (the operator);
//   containers (and init containers): no privilege escalation, read-only root filesystem, every capability
//         dropped and none added, not privileged;
//   secrets: a secret-looking variable comes from a Secret (secretKeyRef), and no secret value appears in
//         any other object;
//   NetworkPolicy: every port a member listens on is covered by a rule, and the Raft port only admits
//         members, in every front-door mode.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { V1PodSpec } from '@kubernetes/client-node';
import { podHardeningProblems } from '../../test/hardening-policy.js';
import { DEFAULT_CONTEXT } from './common.js';
import { testCluster } from './fixtures.js';
import { bootstrapConfigMap } from './bootstrap.js';
import { gatewayConfigMap, gatewayDeployment, renderGatewayConf } from './gateway.js';
import { networkPolicy } from './policy.js';
import { credentialsSecret } from './secret.js';
import { statefulSet } from './statefulset.js';
import { findHelms } from '../tools/helm.js';
import type { FrontDoorMode } from '../api/types.js';

const REPO = path.resolve(import.meta.dirname, '../../../..');
const CHART = path.join(REPO, 'charts/stego-operator');
function helmTemplate(helm: string, extra: string[] = []): Record<string, unknown>[] {
  const out = execFileSync(helm, ['template', 'stego', CHART, '--namespace', 'stego-system', '--kube-version', '1.37.2', ...extra], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJSON() as Record<string, unknown> | null).filter((d): d is Record<string, unknown> => d !== null);
}

const MODES: FrontDoorMode[] = ['gateway', 'httpRoute', 'ingress', 'none'];
const ctx = DEFAULT_CONTEXT;

describe('operator/resources: hardened deployment (every pod, every mode)', () => {
  it('the policy catches what it is meant to catch', () => {
    const bad: V1PodSpec = {
      hostNetwork: true,
      volumes: [{ name: 'h', hostPath: { path: '/' } }],
      containers: [{ name: 'c', image: 'x', env: [{ name: 'STEGO_ADMIN_TOKEN', value: 'plain' }], securityContext: { capabilities: { add: ['NET_ADMIN'] }, privileged: true } }],
    };
    const problems = podHardeningProblems(bad).join('\n');
    for (const p of ['host namespace', 'hostPath', 'service-account token', 'may run as root', 'seccomp', 'privilege escalation', 'writable root', 'privileged', 'does not drop', 'adds capabilities', 'STEGO_ADMIN_TOKEN inline']) {
      expect(problems).to.include(p);
    }
  });

  for (const mode of MODES) {
    it(`members and the gateway are hardened with front door ${mode} and every feature on`, () => {
      const cr = testCluster({ frontDoor: { mode }, apiTokens: { secretName: 'tokens', key: 'tokens' }, metrics: { serviceMonitor: { enabled: true } } });
      expect(podHardeningProblems(statefulSet(cr, 3).spec!.template.spec!)).to.deep.equal([]);
      const gw = gatewayDeployment(cr, renderGatewayConf(cr, 3, ctx));
      expect(podHardeningProblems(gw.spec!.template.spec!)).to.deep.equal([]);
    });

    it(`the NetworkPolicy covers every member port and admits only members to Raft (front door ${mode})`, () => {
      const cr = testCluster({ frontDoor: { mode } });
      const np = networkPolicy(cr, ctx)!;
      expect(np.spec.policyTypes).to.deep.equal(['Ingress']);
      const container = statefulSet(cr, 3).spec!.template.spec!.containers[0]!;
      const member = statefulSet(cr, 3).spec!.template.metadata!.labels!;
      for (const p of container.ports ?? []) {
        const rules = np.spec.ingress.filter((r) => r.ports.some((x) => x.port === p.containerPort));
        expect(rules, `port ${p.name}`).to.have.length(1);
        if (p.name === 'raft') {
          const from = rules[0]!.from!;
          expect(from).to.have.length(1);
          expect(from[0]!.namespaceSelector, 'raft peers are in the same namespace').to.equal(undefined);
          // the selector matches member pods only: every label it asks for is on the member template
          for (const [k, v] of Object.entries(from[0]!.podSelector!.matchLabels ?? {})) expect(member[k], k).to.equal(v);
          expect(from[0]!.podSelector!.matchLabels!['app.kubernetes.io/component']).to.equal('node');
        }
        if (p.name === 'http' && mode === 'gateway') expect(rules[0]!.from, 'HTTP is closed to pods other than the front door, members and the operator').to.not.equal(undefined);
      }
    });
  }

  it('secret values live only in the Secret: no other object carries them', () => {
    const cr = testCluster({ apiTokens: { secretName: 'tokens', key: 'tokens' } });
    const marker = 'f00dfeedf00dfeedf00dfeedf00dfeed';
    const secret = credentialsSecret(cr, () => marker);
    expect(JSON.stringify(secret)).to.include(marker);
    const others = [statefulSet(cr, 3), bootstrapConfigMap(cr, 3, ctx), gatewayConfigMap(cr, renderGatewayConf(cr, 3, ctx)), gatewayDeployment(cr, renderGatewayConf(cr, 3, ctx)), networkPolicy(cr, ctx)];
    for (const o of others) expect(JSON.stringify(o)).to.not.include(marker);
  });

  const helms = findHelms();
  if (helms.length === 0) {
    it('the chart\'s pods are hardened (skipped: no helm built; e2e/local/build.sh builds one)');
  } else {
    it('the chart\'s pods are hardened (the operator keeps its token: it is the API client), with every switch on', () => {
      const on = ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true', '--set', 'dashboards.enabled=true'];
      let pods = 0;
      for (const extra of [[], on]) {
        for (const doc of helmTemplate(helms[0]!, extra)) {
          const spec = (doc as { spec?: { template?: { spec?: V1PodSpec } } }).spec?.template?.spec;
          if (!spec) continue;
          pods++;
          const name = (doc as { metadata?: { name?: string } }).metadata?.name ?? '';
          expect(podHardeningProblems(spec, doc['kind'] === 'Deployment' && name.includes('operator')), `${String(doc['kind'])} ${name}`).to.deep.equal([]);
        }
      }
      expect(pods, 'the chart renders the operator Deployment').to.be.greaterThan(0);
    });
  }
});
