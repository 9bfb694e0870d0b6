// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: acquire when
// the lease is free or expired, renew before renewDeadline, and stop leading (the process then exits) the
// moment a renewal cannot be confirmed, so two operator replicas never reconcile at once.
import { ApiError, resourcePath, type KObject, type KubeClient } from './client.js';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KObject {
  spec?: LeaseSpec;
}

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  now?: () => Date;
}

/** MicroTime as the API wants it (RFC 3339 with microseconds). */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #lastRenew = 0;
  #observed: { holder: string; renewTime: number } | null = null;
  #inflight: Promise<void> | null = null;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectionOptions,
  ) {}

  get leading(): boolean {
    return this.#leading;
  }

  private get duration(): number {
    return this.opts.leaseDurationSeconds ?? 15;
  }

  private now(): Date {
    return this.opts.now?.() ?? new Date();
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#inflight = this.tick().finally(() => (this.#inflight = null));
    }, ms);
  }

  /** Gives the lease up (an expired renewTime lets the next replica take over at once). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    // a renewal in flight must land before the release, or it would take the lease back
    await this.#inflight;
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.client.get<Lease>(this.path());
      if (lease.spec?.holderIdentity !== this.opts.identity) return;
      await this.client.replace<Lease>({ ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1 } });
    } catch {
      // best effort: the lease expires on its own
    }
  }

  private path(name?: string): string {
    return resourcePath('coordination.k8s.io/v1', 'Lease', this.opts.namespace, name ?? this.opts.name);
  }

  private async tick(): Promise<void> {
    if (this.#stopped) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch {
      ok = false;
    }
    if (this.#stopped) return;
    if (ok) this.#lastRenew = Date.now();
    if (ok && !this.#leading) {
      this.#leading = true;
      this.opts.onStartedLeading();
    } else if (this.#leading && !ok && Date.now() - this.#lastRenew > (this.opts.renewDeadlineMs ?? 10_000)) {
      this.#leading = false;
      this.opts.onStoppedLeading();
    }
    if (!this.#stopped) this.schedule(this.opts.retryPeriodMs ?? 2000);
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    const lease = await this.client.find<Lease>(this.path());
    if (!lease) {
      await this.client.create<Lease>({
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: this.duration, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      });
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== this.opts.identity && holder !== '' && !this.expired(holder, spec, now)) return false;
    const takingOver = holder !== this.opts.identity;
    const next: Lease = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: this.duration,
        renewTime: microTime(now),
        ...(takingOver ? { acquireTime: microTime(now), leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      await this.client.replace<Lease>(next); // resourceVersion makes this a compare-and-swap
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.conflict) return false;
      throw err;
    }
  }

  /**
   * Judged by our own clock from when we first saw this renewTime (like client-go), so clock skew between
   * replicas cannot make a live holder look expired.
   */
  private expired(holder: string, spec: LeaseSpec, now: Date): boolean {
    const renew = spec.renewTime ?? '';
    const seen = this.#observed;
    if (!seen || seen.holder !== `${holder}@${renew}`) {
      this.#observed = { holder: `${holder}@${renew}`, renewTime: now.getTime() };
      return false;
    }
    return now.getTime() - seen.renewTime > (spec.leaseDurationSeconds ?? this.duration) * 1000;
  }
}
