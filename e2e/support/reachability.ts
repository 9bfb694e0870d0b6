// TCP reachability between pods, probed from inside real pods with `kubectl exec`, for the NetworkPolicy
// steps: a connection either opens, is refused (something answered: nothing listens there), or is blocked
// (no answer before the connect timeout: dropped on the way). Only "blocked" shows a policy at work; a
// probe that cannot run at all throws rather than counting as either.

import { kubectlResult } from './kube.js';

export type Reach = 'open' | 'refused' | 'blocked';

/** Short: a dropped SYN costs the whole timeout, and the suite polls these. */
export const CONNECT_TIMEOUT_S = 2;

/** The probe pod's image: kind pulls busybox; the local Kubernetes sets its own (never pulled). */
export function probeImage(): { image: string; pullPolicy: string } {
  return {
    image: process.env.STEGO_E2E_PROBE_IMAGE ?? 'busybox:1.36',
    pullPolicy: process.env.STEGO_E2E_PROBE_PULL_POLICY ?? 'IfNotPresent',
  };
}

/**
 * A pod that is not part of anything of ours: a label nothing selects, no service-account token, non-root,
 * no capabilities (connecting needs none). It only sleeps; probes run in it with `kubectl exec`.
 */
export function outsiderPod(name: string): Record<string, unknown> {
  const { image, pullPolicy } = probeImage();
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'stegocluster-e2e/probe': 'outsider' } },
    spec: {
      automountServiceAccountToken: false,
      terminationGracePeriodSeconds: 0,
      securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'probe',
          image,
          imagePullPolicy: pullPolicy,
          command: ['sleep', '3600'],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function fail(what: string, r: { code: number; stdout: string; stderr: string }): never {
  throw new Error(`${what}: the probe did not run (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
}

/**
 * From a busybox pod: `nc -w T HOST PORT -e true` connects and exits 0 at once. Debian's small nc and the
 * full one of the busybox image both take this form; both say "refused" or "timed out"/"timeout".
 */
export async function reachFromBusybox(ns: string, pod: string, host: string, port: number): Promise<Reach> {
  const r = await kubectlResult(['-n', ns, 'exec', pod, '--', 'nc', '-w', String(CONNECT_TIMEOUT_S), host, String(port), '-e', 'true'], {
    timeoutMs: 30_000,
  });
  if (r.code === 0) return 'open';
  if (/nc: .*refused/i.test(r.stderr)) return 'refused';
  if (/nc: .*(timed out|timeout)/i.test(r.stderr)) return 'blocked';
  return fail(`nc ${host} ${port} in ${pod}`, r);
}

const NODE_PROBE = [
  "const [host, port] = process.argv.slice(1);",
  `const s = require('net').connect({ host, port: Number(port), timeout: ${CONNECT_TIMEOUT_S * 1000} });`,
  "s.on('connect', () => { console.log('open'); s.destroy(); });",
  "s.on('timeout', () => { console.log('blocked'); s.destroy(); });",
  "s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : 'error ' + e.code); });",
].join(' ');

/** From a container with Node (a member, the operator): the same three outcomes with net.connect. */
export async function reachFromNode(ns: string, pod: string, container: string, host: string, port: number): Promise<Reach> {
  const r = await kubectlResult(['-n', ns, 'exec', pod, '-c', container, '--', 'node', '-e', NODE_PROBE, host, String(port)], {
    timeoutMs: 30_000,
  });
  const out = r.stdout.trim();
  if (r.code === 0 && (out === 'open' || out === 'refused' || out === 'blocked')) return out;
  return fail(`connect ${host}:${port} from ${pod}/${container}`, r);
}
