/** Token buckets per sender: `burst` messages at once, then `perSecond`. Bounded in memory (oldest buckets go). */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private static readonly MAX_BUCKETS = 100_000

  constructor (private readonly init: { burst: number, perSecond: number, now: () => number }) {}

  /** Takes one token: 0 when allowed, else milliseconds until one is available. */
  take (key: string): number {
    const { burst, perSecond, now } = this.init
    if (perSecond <= 0) return 0
    const t = now()
    let b = this.buckets.get(key)
    if (b == null) {
      if (this.buckets.size >= RateLimiter.MAX_BUCKETS) this.buckets.delete(this.buckets.keys().next().value!)
      b = { tokens: burst, at: t }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(burst, b.tokens + (t - b.at) * perSecond / 1000)
    b.at = t
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.ceil((1 - b.tokens) * 1000 / perSecond)
  }
}
