// HTTP calls from the operator to the member pods: /cluster/status and /readyz to observe, and the admin API
// (bearer token from the generated Secret) to change membership and leadership. Base URLs come from a
// resolver, so tests can point at node processes on loopback.
import type { StatusReport } from '../../../node/src/lb/leader-watch.js';

export interface NodeView {
  id: string;
  role: string;
  healthy: boolean;
  voter: boolean;
  match_index?: number;
  raft_address?: string | null;
}

export interface ClusterStatusReport extends StatusReport {
  node_id: string;
  term: number;
  leader_id: string | null;
  applied_index?: number;
  commit_index?: number;
  storage_failed?: boolean | string | null;
  removed?: boolean;
  nodes?: NodeView[];
}

export interface PodProbe {
  pod: string;
  status: ClusterStatusReport | null;
  ready: boolean;
}

export interface AdminResult {
  status: number;
  body: unknown;
}

export class NodeCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'NodeCallError';
  }
}

export class NodeClient {
  constructor(private readonly timeoutMs = 800) {}

  async probe(pod: string, baseUrl: string): Promise<PodProbe> {
    const [status, ready] = await Promise.all([this.getJson<ClusterStatusReport>(`${baseUrl}/cluster/status`), this.readyz(baseUrl)]);
    return { pod, status, ready };
  }

  private async getJson<T>(url: string): Promise<T | null> {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) return null;
      return (await res.json()) as T;
    } catch {
      return null;
    }
  }

  private async readyz(baseUrl: string): Promise<boolean> {
    try {
      const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(this.timeoutMs) });
      await res.body?.cancel();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** An admin call; 2xx answers resolve, anything else throws NodeCallError with the node's error code. */
  async admin(baseUrl: string, token: string, method: 'POST' | 'DELETE', path: string, body?: unknown, timeoutMs = 35_000): Promise<AdminResult> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // keep the text
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: parsed };
    const err = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
    throw new NodeCallError(res.status, err?.code ?? 'unknown', `${method} ${path}: ${res.status} ${err?.code ?? ''} ${err?.message ?? text.slice(0, 200)}`);
  }
}
