// Follows the cluster's leader from the outside, the way a load balancer sees it: by asking every node's
// /cluster/status. Only a node that reports *itself* as leader is believed, and the highest term wins, so a
// deposed leader that has not yet heard the news cannot pull writes back to itself.

export interface StatusReport {
  node_id?: string;
  term?: number;
  leader_id?: string | null;
}

/** The leader that the freshest self-declared leader claims to be, or null. Pure, for tests. */
export function pickLeader(reports: StatusReport[]): { leaderId: string | null; term: number } {
  let best: { leaderId: string | null; term: number } = { leaderId: null, term: -1 };
  for (const r of reports) {
    if (typeof r.term !== 'number' || !r.node_id || r.leader_id !== r.node_id) continue;
    if (r.term > best.term) best = { leaderId: r.node_id, term: r.term };
  }
  return best.term < 0 ? { leaderId: null, term: 0 } : best;
}

export interface LeaderWatchOptions {
  /** Base URLs of the nodes' HTTP listeners, e.g. http://127.0.0.1:8081. */
  urls: () => string[];
  intervalMs?: number;
  timeoutMs?: number;
  onChange: (leaderId: string | null, term: number) => void | Promise<void>;
}

export async function fetchStatus(url: string, timeoutMs: number): Promise<StatusReport | null> {
  try {
    const res = await fetch(`${url}/cluster/status`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return null;
    return (await res.json()) as StatusReport;
  } catch {
    return null;
  }
}

export class LeaderWatch {
  private timer: NodeJS.Timeout | null = null;
  private current: string | null | undefined = undefined;
  private running = false;

  constructor(private readonly opts: LeaderWatchOptions) {}

  start(): void {
    this.running = true;
    void this.poll();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async poll(): Promise<void> {
    if (!this.running) return;
    const timeout = this.opts.timeoutMs ?? 300;
    const reports = await Promise.all(this.opts.urls().map((u) => fetchStatus(u, timeout)));
    const { leaderId, term } = pickLeader(reports.filter((r): r is StatusReport => r !== null));
    // A transient "no leader" (mid-election) keeps the old primary: the backups cover it anyway,
    // and flapping the config on every election would only add reloads.
    if (leaderId !== null && leaderId !== this.current) {
      this.current = leaderId;
      try {
        await this.opts.onChange(leaderId, term);
      } catch {
        this.current = undefined; // retry on the next poll
      }
    }
    if (this.running) this.timer = setTimeout(() => void this.poll(), this.opts.intervalMs ?? 100);
  }
}
