// Kubernetes Events on a StegoCluster (elections, scaling, quorum loss, errors). Identical events within
// a few minutes are sent once, so a cluster stuck in one state does not flood the API server.
import type { KubeClient } from './client.js';
import { API_VERSION, KIND } from '../api/types.js';

export interface EventTarget {
  name: string;
  namespace: string;
  uid?: string;
}

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  readonly #recent = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly component: string,
    private readonly dedupeMs = 5 * 60_000,
  ) {}

  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const key = `${target.namespace}/${target.name}/${reason}/${message}`;
    const now = Date.now();
    if (now - (this.#recent.get(key) ?? 0) < this.dedupeMs) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 10_000) this.#recent.clear();
    const ts = new Date(now).toISOString();
    try {
      await this.client.create({
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${target.name}.`, namespace: target.namespace } as { name?: string; namespace: string },
        involvedObject: { apiVersion: API_VERSION, kind: KIND, name: target.name, namespace: target.namespace, uid: target.uid },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: this.component },
        firstTimestamp: ts,
        lastTimestamp: ts,
        count: 1,
        reportingComponent: this.component,
      } as never);
    } catch {
      // events are advisory: losing one must not fail a reconcile
    }
  }
}
