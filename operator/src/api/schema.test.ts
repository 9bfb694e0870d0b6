import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { CHART_CRD_FILE, CRD_FILE, chartCrdTemplate, crdYaml, unwrapChartCrd } from './crd-yaml.js';
import { REPO_ROOT } from './repo-root.js';
import { customResourceDefinition, specSchema, statusSchema, type JsonSchema } from './schema.js';
import { SPEC_DEFAULTS, withDefaults } from './defaults.js';
import type {
  ApiTokensSpec, Condition, FrontDoorSpec, GatewaySpec, HttpRouteSpec, IngressSpec, MemberStatus, MetricsSpec, NetworkPolicySpec,
  ParentReference, PodDisruptionBudgetSpec, RaftSpec, ResourceRequirements, SchedulingSpec, ServiceMonitorSpec, StegoClusterSpec,
  StegoClusterStatus, StorageSpec, Toleration, IngressTls,
} from './types.js';

// Each table must list exactly the keys of its type (the compiler refuses a missing or an extra key), and
// the test below compares it with the schema: so the types and the CRD cannot drift apart.
const spec: Record<keyof StegoClusterSpec, true> = {
  replicas: true, image: true, imagePullPolicy: true, resources: true, storage: true, raft: true, frontDoor: true, metrics: true,
  scheduling: true, podDisruptionBudget: true, networkPolicy: true, apiTokens: true, logLevel: true,
};
const storage: Record<keyof StorageSpec, true> = { size: true, storageClassName: true, onDelete: true, onScaleDown: true };
const raft: Record<keyof RaftSpec, true> = { tickMs: true, heartbeatMs: true, electionTimeoutMinMs: true, electionTimeoutMaxMs: true };
const frontDoor: Record<keyof FrontDoorSpec, true> = { mode: true, gateway: true, httpRoute: true, ingress: true };
const gateway: Record<keyof GatewaySpec, true> = { image: true, imagePullPolicy: true, replicas: true, serviceType: true, nodePort: true, resources: true };
const httpRoute: Record<keyof HttpRouteSpec, true> = { parentRefs: true, hostnames: true };
const parentRef: Record<keyof ParentReference, true> = { name: true, namespace: true, sectionName: true };
const ingress: Record<keyof IngressSpec, true> = { className: true, host: true, annotations: true, tls: true };
const ingressTls: Record<keyof IngressTls, true> = { secretName: true };
const metrics: Record<keyof MetricsSpec, true> = { serviceMonitor: true };
const serviceMonitor: Record<keyof ServiceMonitorSpec, true> = { enabled: true, interval: true };
const scheduling: Record<keyof SchedulingSpec, true> = { nodeSelector: true, tolerations: true, affinity: true, topologySpreadConstraints: true };
const toleration: Record<keyof Toleration, true> = { key: true, operator: true, value: true, effect: true, tolerationSeconds: true };
const pdb: Record<keyof PodDisruptionBudgetSpec, true> = { enabled: true, maxUnavailable: true };
const networkPolicy: Record<keyof NetworkPolicySpec, true> = { enabled: true };
const apiTokens: Record<keyof ApiTokensSpec, true> = { secretName: true, key: true };
const resources: Record<keyof ResourceRequirements, true> = { requests: true, limits: true };
const status: Record<keyof StegoClusterStatus, true> = {
  observedGeneration: true, phase: true, phaseReason: true, replicas: true, readyReplicas: true, leader: true, term: true, members: true,
  conditions: true, selector: true, bootstrapped: true, volumes: true,
};
const member: Record<keyof MemberStatus, true> = { id: true, pod: true, role: true, healthy: true, membership: true, appliedIndex: true };
const condition: Record<keyof Condition, true> = { type: true, status: true, reason: true, message: true, lastTransitionTime: true, observedGeneration: true };

function keysOf(s: JsonSchema | undefined, where: string): string[] {
  if (!s?.properties) throw new Error(`${where} has no properties in the schema`);
  return Object.keys(s.properties).sort();
}
const at = (s: JsonSchema, ...p: string[]): JsonSchema => p.reduce<JsonSchema>((acc, k) => (k === '[]' ? acc.items! : acc.properties![k]!), s);

describe('operator/api: CRD schema', () => {
  const cases: [string, JsonSchema, Record<string, true>][] = [
    ['spec', specSchema, spec],
    ['spec.storage', at(specSchema, 'storage'), storage],
    ['spec.raft', at(specSchema, 'raft'), raft],
    ['spec.frontDoor', at(specSchema, 'frontDoor'), frontDoor],
    ['spec.frontDoor.gateway', at(specSchema, 'frontDoor', 'gateway'), gateway],
    ['spec.frontDoor.gateway.resources', at(specSchema, 'frontDoor', 'gateway', 'resources'), resources],
    ['spec.frontDoor.httpRoute', at(specSchema, 'frontDoor', 'httpRoute'), httpRoute],
    ['spec.frontDoor.httpRoute.parentRefs[]', at(specSchema, 'frontDoor', 'httpRoute', 'parentRefs', '[]'), parentRef],
    ['spec.frontDoor.ingress', at(specSchema, 'frontDoor', 'ingress'), ingress],
    ['spec.frontDoor.ingress.tls', at(specSchema, 'frontDoor', 'ingress', 'tls'), ingressTls],
    ['spec.metrics', at(specSchema, 'metrics'), metrics],
    ['spec.metrics.serviceMonitor', at(specSchema, 'metrics', 'serviceMonitor'), serviceMonitor],
    ['spec.scheduling', at(specSchema, 'scheduling'), scheduling],
    ['spec.scheduling.tolerations[]', at(specSchema, 'scheduling', 'tolerations', '[]'), toleration],
    ['spec.podDisruptionBudget', at(specSchema, 'podDisruptionBudget'), pdb],
    ['spec.networkPolicy', at(specSchema, 'networkPolicy'), networkPolicy],
    ['spec.apiTokens', at(specSchema, 'apiTokens'), apiTokens],
    ['spec.resources', at(specSchema, 'resources'), resources],
    ['status', statusSchema, status],
    ['status.members[]', at(statusSchema, 'members', '[]'), member],
    ['status.conditions[]', at(statusSchema, 'conditions', '[]'), condition],
  ];
  for (const [where, schema, table] of cases) {
    it(`${where}: the schema names exactly the fields of the TypeScript type`, () => {
      expect(keysOf(schema, where)).to.deep.equal(Object.keys(table).sort());
    });
  }

  it('every default in SPEC_DEFAULTS is the schema default of that field', () => {
    const walk = (d: Record<string, unknown>, s: JsonSchema, where: string): void => {
      for (const [k, v] of Object.entries(d)) {
        const field = s.properties?.[k];
        expect(field, `${where}.${k}`).to.not.equal(undefined);
        if (typeof v === 'object' && v !== null) walk(v as Record<string, unknown>, field!, `${where}.${k}`);
        else expect(field!.default, `${where}.${k}`).to.equal(v);
      }
    };
    walk(SPEC_DEFAULTS, specSchema, 'spec');
  });

  it('has status and scale subresources, the printer columns and the short name', () => {
    const crd = customResourceDefinition() as any;
    const v = crd.spec.versions[0];
    expect(v.subresources.scale).to.deep.equal({ specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' });
    expect(v.subresources.status).to.deep.equal({});
    expect(v.additionalPrinterColumns.map((c: { name: string }) => c.name)).to.include.members(['Replicas', 'Ready', 'Leader', 'Term', 'Age']);
    expect(crd.spec.names.shortNames).to.deep.equal(['stego']);
    expect(at(specSchema, 'replicas')).to.include({ minimum: 1, maximum: 9 });
    const rules = at(specSchema, 'raft')['x-kubernetes-validations']!.map((r) => r.rule);
    expect(rules).to.include('self.electionTimeoutMinMs < self.electionTimeoutMaxMs');
    expect(rules).to.include('self.heartbeatMs < self.electionTimeoutMinMs');
  });

  it(`the committed ${CRD_FILE} is what \`npm run generate\` generates`, async () => {
    const committed = await readFile(path.join(REPO_ROOT, CRD_FILE), 'utf8');
    expect(committed, 'run `npm run generate` and commit the result').to.equal(crdYaml());
    expect(parse(committed)).to.deep.equal(customResourceDefinition());
  });

  it(`the chart's CRD template (${CHART_CRD_FILE}) is the same CRD`, async () => {
    const chart = await readFile(path.join(REPO_ROOT, CHART_CRD_FILE), 'utf8');
    expect(chart, 'run `npm run generate` and commit the result').to.equal(chartCrdTemplate());
    expect(unwrapChartCrd(chart)).to.equal(await readFile(path.join(REPO_ROOT, CRD_FILE), 'utf8'));
  });
});

describe('operator/api: defaults', () => {
  it('fills every default and keeps what the user set', () => {
    const s = withDefaults({ replicas: 5, raft: { heartbeatMs: 40 }, frontDoor: { mode: 'ingress', ingress: { className: 'nginx' } } });
    expect(s.replicas).to.equal(5);
    expect(s.raft).to.deep.equal({ tickMs: 5, heartbeatMs: 40, electionTimeoutMinMs: 150, electionTimeoutMaxMs: 300 });
    expect(s.frontDoor.mode).to.equal('ingress');
    expect(s.frontDoor.gateway.replicas).to.equal(2);
    expect(s.frontDoor.ingress).to.deep.equal({ className: 'nginx' });
    expect(s.storage).to.deep.equal({ size: '1Gi', onDelete: 'Retain', onScaleDown: 'Delete' });
  });

  it('images come from the installation unless the spec names them', () => {
    const images = { node: 'local/node:dev', nodePullPolicy: 'Never' as const, gateway: 'local/nginx:dev', gatewayPullPolicy: 'Never' as const };
    const s = withDefaults({}, images);
    expect([s.image, s.imagePullPolicy, s.frontDoor.gateway.image, s.frontDoor.gateway.imagePullPolicy]).to.deep.equal(['local/node:dev', 'Never', 'local/nginx:dev', 'Never']);
    const own = withDefaults({ image: 'mine:1', frontDoor: { gateway: { image: 'nginx:mine' } } }, images);
    expect([own.image, own.frontDoor.gateway.image]).to.deep.equal(['mine:1', 'nginx:mine']);
    expect(withDefaults({}).image).to.equal('ghcr.io/stegocluster/stego-node:0.1.0');
  });

  it('defaults the API tokens key and does not share state between calls', () => {
    const a = withDefaults({ apiTokens: { secretName: 't' } });
    expect(a.apiTokens).to.deep.equal({ secretName: 't', key: 'tokens' });
    a.raft.tickMs = 99;
    expect(withDefaults({}).raft.tickMs).to.equal(5);
  });
});
