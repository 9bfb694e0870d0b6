// Per-token request rate on this node: a token bucket refilled at ratePerSecond, holding at most
// 2 × ratePerSecond (a burst). Buckets live in memory per node, so behind a load balancer that spreads
// requests over N nodes a token's cluster-wide rate is at most N × its rate.
export interface RateDecision {
  allowed: boolean;
  /** Whole seconds until one request would be allowed (when refused). */
  retryAfterSeconds: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  take(key: string, ratePerSecond: number): RateDecision {
    if (ratePerSecond <= 0) return { allowed: true, retryAfterSeconds: 0 };
    const capacity = Math.max(1, 2 * ratePerSecond);
    const t = this.now();
    const b = this.buckets.get(key) ?? { tokens: capacity, at: t };
    b.tokens = Math.min(capacity, b.tokens + ((t - b.at) / 1000) * ratePerSecond);
    b.at = t;
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { allowed: true, retryAfterSeconds: 0 };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / ratePerSecond)) };
  }
}
