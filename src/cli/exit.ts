import { CommanderError } from 'commander'
import { ConfigError, InvalidInputError } from '../core/index.js'
import { StoreLockedError } from '../store/index.js'
import { UnknownUserError, UserExistsError, TrunkExistsError, UnknownTrunkError, DidExistsError, UnknownDidError } from '../users/index.js'

/** Exit codes: 0 done, 1 could not be done (runtime), 2 bad usage, config or input, 3 daemon not running (status). */
export const EXIT = { ok: 0, failure: 1, usage: 2, notRunning: 3 } as const

/** A failure the CLI reports as one line with its own exit code. */
export class CliError extends Error {
  constructor (message: string, readonly code: number = EXIT.failure) { super(message) }
}

/** The one place that turns errors into a line on stderr and an exit code. */
export function exitCodeFor (err: unknown): number {
  if (err instanceof CliError) return err.code
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT.usage
  if (err instanceof ConfigError || err instanceof InvalidInputError || err instanceof UserExistsError || err instanceof UnknownUserError ||
    err instanceof TrunkExistsError || err instanceof UnknownTrunkError || err instanceof DidExistsError || err instanceof UnknownDidError) return EXIT.usage
  return EXIT.failure
}

export function describe (err: unknown): string {
  if (err instanceof CommanderError) return err.message.replace(/^error: /, '')
  if (err instanceof StoreLockedError) return `${err.message} (is the daemon running with [web] disabled?)`
  if (err instanceof Error) {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return `address in use: ${(err as any).address ?? ''}:${(err as any).port ?? ''} (another SIP server or m1node is running; set sip.udp_port / sip.tcp_port / web.port)`
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return `permission denied: ${err.message} (ports below 1024 need privileges)`
    return err.message
  }
  return String(err)
}

/** Prints `m1node: <reason>` and exits with the code for the error. */
export function fail (err: unknown): never {
  const code = exitCodeFor(err)
  if (code !== 0) process.stderr.write(`m1node: ${describe(err).split('\n')[0]}\n`)
  process.exit(code)
}
