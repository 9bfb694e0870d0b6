// The PodDisruptionBudget (voluntary evictions never take quorum) and the NetworkPolicy (the Raft port
// between members only; HTTP from the front door and the operator).
import type { V1LabelSelector, V1ObjectMeta, V1PodDisruptionBudget } from '@kubernetes/client-node';

// Wire-format types: client-node's V1NetworkPolicy renames `from` to `_from`, and these objects are sent as
// JSON as they are.
export interface NetworkPolicyPeer {
  podSelector?: V1LabelSelector;
  namespaceSelector?: V1LabelSelector;
}
export interface NetworkPolicy {
  apiVersion: 'networking.k8s.io/v1';
  kind: 'NetworkPolicy';
  metadata: V1ObjectMeta;
  spec: {
    podSelector: V1LabelSelector;
    policyTypes: string[];
    ingress: { from?: NetworkPolicyPeer[]; ports: { protocol: string; port: number }[] }[];
  };
}
import { HTTP_PORT, RAFT_PORT, names, selectorLabels } from '../api/names.js';
import type { StegoCluster } from '../api/types.js';
import { ownedMeta, ref, type BuildContext } from './common.js';

/** null when no budget should exist: disabled, or fewer than 3 members (any eviction would lose quorum). */
export function podDisruptionBudget(cr: StegoCluster): V1PodDisruptionBudget | null {
  const p = cr.spec.podDisruptionBudget;
  if (!p.enabled || cr.spec.replicas < 3) return null;
  // never allow an eviction that leaves fewer than a quorum of the desired members
  const quorum = Math.floor(cr.spec.replicas / 2) + 1;
  const maxUnavailable = Math.min(p.maxUnavailable, cr.spec.replicas - quorum);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMeta(cr, names.pdb(ref(cr)), 'node'),
    spec: { maxUnavailable, selector: { matchLabels: selectorLabels(ref(cr)) } },
  };
}

/** Who may call a member's HTTP port; in modes whose front door runs outside our control, any pod. */
function httpPeers(cr: StegoCluster, ctx: BuildContext): NetworkPolicyPeer[] | undefined {
  if (cr.spec.frontDoor.mode !== 'gateway') return undefined;
  const peers: NetworkPolicyPeer[] = [
    { podSelector: { matchLabels: selectorLabels(ref(cr), 'gateway') } },
    { podSelector: { matchLabels: selectorLabels(ref(cr)) } },
    {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ctx.operatorNamespace } },
      podSelector: { matchLabels: ctx.operatorPodLabels },
    },
  ];
  if (cr.spec.metrics.serviceMonitor.enabled) {
    peers.push({ namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } });
  }
  return peers;
}

export function networkPolicy(cr: StegoCluster, ctx: BuildContext): NetworkPolicy | null {
  if (!cr.spec.networkPolicy.enabled) return null;
  const members = { matchLabels: selectorLabels(ref(cr)) };
  const from = httpPeers(cr, ctx);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: ownedMeta(cr, names.networkPolicy(ref(cr)), 'node'),
    spec: {
      podSelector: members,
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: members }], ports: [{ protocol: 'TCP', port: RAFT_PORT }] },
        { ...(from ? { from } : {}), ports: [{ protocol: 'TCP', port: HTTP_PORT }] },
      ],
    },
  };
}
