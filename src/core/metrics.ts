import { Registry, Counter, Gauge, collectDefaultMetrics } from 'prom-client'

/**
 * The metrics a component may record. Optional everywhere (`components.metrics?.`), as in js-libp2p.
 * Names follow `m1node_<module>_<what>_{total|seconds}`.
 */
export interface Metrics {
  counter(name: string, help: string, labelNames?: readonly string[]): MetricCounter
  gauge(name: string, help: string, labelNames?: readonly string[], collect?: () => number): MetricGauge
  /** Prometheus text exposition. */
  render(): Promise<string>
  readonly contentType: string
}

export interface MetricCounter { inc(labels?: Record<string, string>, value?: number): void }
export interface MetricGauge { set(value: number, labels?: Record<string, string>): void, inc(labels?: Record<string, string>): void, dec(labels?: Record<string, string>): void }

/** prom-client backed metrics with one registry per node (no global registry, so tests can run several nodes). */
export class PromMetrics implements Metrics {
  private readonly registry = new Registry()
  private readonly counters = new Map<string, Counter>()
  private readonly gauges = new Map<string, Gauge>()

  constructor (init: { defaultMetrics?: boolean } = {}) {
    if (init.defaultMetrics === true) collectDefaultMetrics({ register: this.registry, prefix: 'm1node_process_' })
  }

  get contentType (): string { return this.registry.contentType }

  counter (name: string, help: string, labelNames: readonly string[] = []): MetricCounter {
    let c = this.counters.get(name)
    if (c == null) {
      c = new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] })
      this.counters.set(name, c)
    }
    const counter = c
    return {
      inc: (labels, value = 1) => { labels != null ? counter.inc(labels, value) : counter.inc(value) }
    }
  }

  gauge (name: string, help: string, labelNames: readonly string[] = [], collect?: () => number): MetricGauge {
    let g = this.gauges.get(name)
    if (g == null) {
      g = new Gauge({
        name,
        help,
        labelNames: [...labelNames],
        registers: [this.registry],
        ...(collect != null ? { collect () { this.set(collect()) } } : {})
      })
      this.gauges.set(name, g)
    }
    const gauge = g
    return {
      set: (value, labels) => { labels != null ? gauge.set(labels, value) : gauge.set(value) },
      inc: (labels) => { labels != null ? gauge.inc(labels) : gauge.inc() },
      dec: (labels) => { labels != null ? gauge.dec(labels) : gauge.dec() }
    }
  }

  async render (): Promise<string> { return await this.registry.metrics() }
}
