// What the e2e suite assumes about the operator, its chart and the StegoCluster API, in one place: the CRD
// (group stego.io, v1alpha1, kind StegoCluster, short name stego), the chart (charts/stego-operator), status
// conditions, the leader label and the operator-managed nginx gateway Service (the front door). Every name
// the suite uses comes from here, so a change of contract is a change of this file only.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeObject } from './kube.js';

export const GROUP = 'stego.io';
export const VERSION = 'v1alpha1';
export const KIND = 'StegoCluster';
export const PLURAL = 'stegoclusters';
export const SHORT_NAME = 'stego';
export const RESOURCE = `${PLURAL}.${GROUP}`;

export const CONDITIONS = ['Available', 'Progressing', 'Degraded', 'LeaderElected', 'QuorumLost'] as const;

/** Pod label the operator keeps on members: `leader` on exactly one pod, `follower` on the others. */
export const ROLE_LABEL = `${GROUP}/role`;
export const LEADER_ROLE = 'leader';

/** Columns `kubectl get stegoclusters` prints (additionalPrinterColumns). */
export const PRINTER_COLUMNS = ['NAME', 'REPLICAS', 'READY', 'LEADER', 'TERM', 'AGE'];

export const CHART_DIR = process.env.STEGO_E2E_CHART ?? 'charts/stego-operator';
export const RELEASE = process.env.STEGO_E2E_RELEASE ?? 'stego-operator';

/**
 * Extra `helm install` arguments, e.g. the locally built images and `imagePullPolicy: Never` on the local
 * Kubernetes, or kind-loaded images on kind. Whitespace separated (values with spaces are not needed).
 */
export function helmExtraArgs(): string[] {
  return (process.env.STEGO_E2E_HELM_ARGS ?? '').split(/\s+/).filter((a) => a.length > 0);
}

/** The example StegoCluster (a multi-document YAML file under examples/ holding `kind: StegoCluster`). */
export function examplePath(repoRoot: string): string {
  if (process.env.STEGO_E2E_EXAMPLE) return process.env.STEGO_E2E_EXAMPLE;
  const dir = join(repoRoot, 'examples');
  const candidates = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .filter((f) => /^kind:\s*StegoCluster\s*$/m.test(readFileSync(join(dir, f), 'utf8')));
  if (candidates.length === 0) throw new Error(`no StegoCluster manifest in ${dir}`);
  return join(dir, candidates[0]!);
}

/** Status as the suite reads it: leader pod, Raft term, replica counts. */
export interface ClusterView {
  leader: string | undefined;
  term: number | undefined;
  replicas: number | undefined;
  readyReplicas: number | undefined;
  members: number | undefined;
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

export function clusterView(obj: KubeObject): ClusterView {
  const s = obj.status ?? {};
  const leader = s.leader;
  const leaderName = typeof leader === 'string' ? leader : (leader as { pod?: string } | undefined)?.pod;
  const members = s.members;
  return {
    leader: leaderName && leaderName.length > 0 ? leaderName : undefined,
    term: num(s.term) ?? num((leader as { term?: unknown } | undefined)?.term),
    replicas: num(s.replicas),
    readyReplicas: num(s.readyReplicas),
    members: Array.isArray(members) ? members.length : num(members),
  };
}

/** Whether an object is owned (directly) by the StegoCluster with this uid. */
export function ownedBy(obj: KubeObject, uid: string): boolean {
  return (obj.metadata.ownerReferences ?? []).some((r) => r.uid === uid);
}

/** The gateway Service: owned by the StegoCluster, named `<cluster>-gateway` (or labelled as the gateway). */
export function isGatewayService(svc: KubeObject, clusterName: string): boolean {
  return (
    svc.metadata.name === `${clusterName}-gateway` ||
    svc.metadata.labels?.[`${GROUP}/component`] === 'gateway' ||
    svc.metadata.labels?.['app.kubernetes.io/component'] === 'gateway'
  );
}

/** The leader Service: selects the pod labelled `stego.io/role=leader`. */
export function isLeaderService(svc: KubeObject): boolean {
  const selector = (svc.spec as { selector?: Record<string, string> } | undefined)?.selector ?? {};
  return selector[ROLE_LABEL] === LEADER_ROLE;
}

/** Spec paths of the invalid StegoClusters the API server must refuse (CRD validation). */
export const INVALID_SPECS: { what: string; patch: (spec: Record<string, unknown>) => void; expect: RegExp }[] = [
  { what: 'negative replicas', patch: (s) => void (s.replicas = -1), expect: /replicas/i },
  {
    what: 'a heartbeat not shorter than the election timeout',
    patch: (s) => {
      s.raft = { ...((s.raft as Record<string, unknown> | undefined) ?? {}), heartbeatMs: 400, electionTimeoutMinMs: 300, electionTimeoutMaxMs: 350 };
    },
    expect: /heartbeat|election/i,
  },
];

/**
 * API tokens for the object routes: the node requires a bearer token on /api/objects, read from the Secret
 * named by `spec.apiTokens.secretName` (key `spec.apiTokens.key`, default `tokens`), mounted as
 * STEGO_API_TOKENS_FILE. The file holds one token per line: `<id> <secret> <scopes> [quota=…] [rate=…]`.
 */
export const API_TOKENS_KEY = 'tokens';

export function apiTokensSecretName(clusterName: string): string {
  return `${clusterName}-e2e-api-tokens`;
}

/** The tokens file for one read/write/delete token with a rate high enough for the suite's steady writer. */
export function apiTokensFile(token: string): string {
  return `e2e ${token} read,write,delete rate=1000\n`;
}

/** Sets `spec.apiTokens` on a StegoCluster manifest to the suite's own Secret. */
export function withApiTokens(obj: KubeObject, secretName: string): KubeObject {
  const spec = (obj.spec ?? {}) as Record<string, unknown>;
  return { ...obj, spec: { ...spec, apiTokens: { secretName, key: API_TOKENS_KEY } } } as KubeObject;
}
