import type { ComponentLogger, Logger as Libp2pLogger } from '@libp2p/interface'
import type { Logger } from '../core/index.js'

/**
 * libp2p's ComponentLogger on top of pino: every libp2p component logs through the node's pino root with
 * `c: 'p2p:<component>'`. libp2p is chatty, so its plain lines are pino `trace` and its errors `debug` (dial
 * failures and refused records are routine in a DHT); m1node's own p2p code logs what an operator needs.
 */
export function libp2pLogger (root: Logger): ComponentLogger {
  return {
    forComponent: (name: string) => make(root.child({ c: `p2p:${name.replace(/^libp2p:/, '')}` }))
  }
}

function make (log: Logger): Libp2pLogger {
  const enabled = log.isLevelEnabled('trace')
  const debugEnabled = log.isLevelEnabled('debug')
  const fn = ((formatter: unknown, ...args: unknown[]) => {
    if (enabled) log.trace(format(formatter, args))
  }) as Libp2pLogger
  fn.error = (formatter: unknown, ...args: unknown[]) => { if (debugEnabled) log.debug(format(formatter, args)) }
  fn.trace = (formatter: unknown, ...args: unknown[]) => { if (enabled) log.trace(format(formatter, args)) }
  fn.enabled = enabled
  fn.newScope = (name: string) => make(log.child({ scope: name }))
  return fn
}

/** debug-style format strings (%s %d %p %b %a %c %t %e %o %j) into one line. */
function format (formatter: unknown, args: unknown[]): string {
  if (typeof formatter !== 'string') return [formatter, ...args].map(text).join(' ')
  let i = 0
  const line = formatter.replace(/%([a-zA-Z%])/g, (m, c: string) => {
    if (c === '%') return '%'
    if (i >= args.length) return m
    const a = args[i++]
    if (c === 'b' && a instanceof Uint8Array) return Buffer.from(a).toString('base64')
    return text(a)
  })
  return i < args.length ? `${line} ${args.slice(i).map(text).join(' ')}` : line
}

function text (a: unknown): string {
  if (a instanceof Error) return a.message
  if (typeof a === 'string') return a
  if (a == null) return String(a)
  if (typeof (a as { toString?: unknown }).toString === 'function' && (a as object).toString !== Object.prototype.toString) return String(a)
  try { return JSON.stringify(a) } catch { return String(a) }
}
