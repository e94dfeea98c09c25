// core: the interface package (lifecycle, errors, logging, metrics). Imports nothing of m1node.
// Public API: Startable, startAll, stopAll, named errors, createLogger/forComponent, Metrics/PromMetrics, the name rule.
export * from './errors.js'
export * from './lifecycle.js'
export * from './log.js'
export * from './metrics.js'
export * from './names.js'
