import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../api/repo-root.js';
import { OWNED } from '../controllers/manager.js';
import { CLUSTER_RULES, NAMESPACE_RULES, hasWildcard, type PolicyRule } from '../rbac.js';
import { CHART_RBAC_FILE, chartRbacTemplate } from './chart-rbac.js';
import { findHelms } from './helm.js';

const CHART = path.join(REPO_ROOT, 'charts/stego-operator');

function allows(rules: PolicyRule[], group: string, resource: string, verbs: string[]): boolean {
  return verbs.every((v) => rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(v)));
}

describe('chart: stego-operator', () => {
  it('RBAC has no wildcards, in the rule table and anywhere in the chart\'s templates', () => {
    expect(hasWildcard(CLUSTER_RULES)).to.equal(false);
    expect(hasWildcard(NAMESPACE_RULES)).to.equal(false);
    expect(hasWildcard([{ apiGroups: ['*'], resources: ['pods'], verbs: ['get'], why: 'the check itself must catch one' }])).to.equal(true);
    for (const f of readdirSync(path.join(CHART, 'templates'))) {
      if (!f.endsWith('.yaml')) continue;
      const lines = readFileSync(path.join(CHART, 'templates', f), 'utf8').split('\n');
      const bad = lines.filter((l) => /^\s*-?\s*(apiGroups|resources|verbs|resourceNames|nonResourceURLs)\s*:.*\*/.test(l));
      expect(bad, `${f} grants a wildcard`).to.deep.equal([]);
    }
  });

  it(`the committed ${CHART_RBAC_FILE} is what \`npm run generate\` renders`, () => {
    expect(readFileSync(path.join(REPO_ROOT, CHART_RBAC_FILE), 'utf8'), 'run `npm run generate` and commit').to.equal(chartRbacTemplate());
  });

  it('RBAC covers every kind the operator watches and applies, and no more than it needs on Secrets', () => {
    for (const [, apiVersion, plural] of OWNED) {
      const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
      expect(allows(CLUSTER_RULES, group, plural, ['get', 'list', 'watch']), plural).to.equal(true);
    }
    for (const plural of ['statefulsets', 'deployments', 'services', 'configmaps', 'poddisruptionbudgets', 'networkpolicies', 'ingresses', 'httproutes', 'servicemonitors']) {
      const group = CLUSTER_RULES.find((r) => r.resources.includes(plural))!.apiGroups[0]!;
      expect(allows(CLUSTER_RULES, group, plural, ['create', 'patch', 'delete']), plural).to.equal(true);
    }
    const secrets = CLUSTER_RULES.filter((r) => r.resources.includes('secrets')).flatMap((r) => r.verbs);
    expect(secrets.sort()).to.deep.equal(['create', 'get']);
    expect(allows(NAMESPACE_RULES, 'coordination.k8s.io', 'leases', ['get', 'create', 'update'])).to.equal(true);
  });

  it('values.yaml uses only keys values.schema.json declares', () => {
    const values = parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8')) as Record<string, unknown>;
    const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8')) as SchemaNode;
    expect(undeclared(values, schema, 'values')).to.deep.equal([]);
  });

  it('ships a valid Grafana dashboard for the dashboards switch', () => {
    const d = JSON.parse(readFileSync(path.join(CHART, 'dashboards/stego-operator.json'), 'utf8')) as { uid: string; panels: { targets: { expr: string }[] }[] };
    expect(d.uid).to.equal('stego-operator');
    expect(d.panels.flatMap((p) => p.targets.map((t) => t.expr)).join(' ')).to.include('stego_operator_reconciles_total');
  });

  for (const helm of findHelms()) {
    const version = execFileSync(helm, ['version', '--short'], { encoding: 'utf8' }).trim();
    it(`helm lint and helm template pass with helm ${version}, with every switch on and off`, () => {
      execFileSync(helm, ['lint', CHART, '--strict'], { stdio: 'pipe' });
      const on = ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.prometheusRule.enabled=true', '--set', 'dashboards.enabled=true'];
      for (const extra of [[], on]) {
        // Helm 3 assumes Kubernetes 1.20 for `template` unless told; the chart requires >= 1.30
        const out = execFileSync(helm, ['template', 'stego', CHART, '--namespace', 'stego-system', '--kube-version', '1.37.2', ...extra], { encoding: 'utf8' });
        const docs = parseAllDocuments(out).map((d) => d.toJSON() as { kind: string; rules?: PolicyRule[]; spec?: unknown } | null).filter((d) => d !== null);
        const kinds = docs.map((d) => d!.kind);
        expect(kinds).to.include.members(['CustomResourceDefinition', 'Deployment', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'Service']);
        if (extra.length > 0) {
          expect(kinds).to.include.members(['ServiceMonitor', 'PrometheusRule', 'ConfigMap']);
          // the PrometheusRule is the plain rules file the promtool tests check, alert for alert
          const rule = docs.find((d) => d!.kind === 'PrometheusRule')!;
          expect(rule.spec).to.deep.equal(parse(readFileSync(path.join(CHART, 'rules/stegocluster.rules.yaml'), 'utf8')));
        }
        for (const d of docs.filter((x) => x!.rules)) expect(hasWildcard(d!.rules!)).to.equal(false);
      }
    });
  }
  if (findHelms().length === 0) {
    it('helm lint and helm template (skipped: no helm built; e2e/local/build.sh and scripts/build-helm3.sh build them)');
  }
});

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
}

function undeclared(value: unknown, schema: SchemaNode, where: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !schema.properties) return [];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => {
    const sub = schema.properties![k];
    if (!sub) return schema.additionalProperties === false ? [`${where}.${k}`] : [];
    return undeclared(v, sub, `${where}.${k}`);
  });
}
