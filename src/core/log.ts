import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino'

export type { Logger }

/** Fields that must never reach a log line: credentials and message bodies. */
export const REDACT_PATHS = [
  'authorization', '*.authorization', 'proxyAuthorization', '*.proxyAuthorization',
  'password', '*.password', 'ha1', '*.ha1', 'ha1Md5', '*.ha1Md5', 'ha1Sha256', '*.ha1Sha256',
  'token', '*.token', 'body', '*.body', 'headers.authorization', 'headers["proxy-authorization"]'
]

export interface LogInit {
  /** @default 'info' */
  level: LevelWithSilent
  /** Prefix added to every line as `node`, handy when several nodes share a process (tests). */
  name?: string
}

/** Creates the one pino root of a node; components get children through {@link forComponent}. */
export function createLogger (init: LogInit, destination?: DestinationStream): Logger {
  const options = {
    level: init.level,
    base: init.name != null ? { node: init.name } : {},
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
  return destination != null ? pino(options, destination) : pino(options)
}

/** A child logger for one component, e.g. `sip:transport:udp`. */
export function forComponent (root: Logger, component: string): Logger {
  return root.child({ c: component })
}
