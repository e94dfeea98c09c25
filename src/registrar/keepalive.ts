import type { Logger } from '../core/index.js'
import type { Binding, Location } from './location.js'

export interface KeepaliveComponents {
  location: Pick<Location, 'entries' | 'update'>
  /** sends OPTIONS to the binding over its flow; resolves true on any response, false on timeout or error */
  ping: (aor: string, binding: Binding) => Promise<boolean>
  logger?: Logger
}

export interface KeepaliveInit {
  /** seconds between pings; 0 disables @default 30 */
  intervalSeconds: number
  /** unanswered pings in a row before the binding is dropped; 0 never drops @default 3 */
  maxFailures: number
}

/**
 * Keeps NAT bindings of UDP devices open with OPTIONS pings (Kamailio nathelper), and drops a binding whose device
 * stopped answering. Only bindings that looked NATed at registration are pinged; TCP and WS flows are kept open by
 * the device's own CRLF / WebSocket keep-alives.
 */
export class Keepalive {
  private timer?: ReturnType<typeof setInterval>
  private readonly failures = new Map<string, number>()
  private running = false

  constructor (private readonly components: KeepaliveComponents, private readonly init: KeepaliveInit) {}

  start (): void {
    if (this.init.intervalSeconds <= 0) return
    this.timer = setInterval(() => { void this.round() }, this.init.intervalSeconds * 1000)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer != null) clearInterval(this.timer)
    this.timer = undefined
  }

  /** One round of pings; a round still running when the next is due makes that one skip. */
  async round (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      const targets: Array<[string, Binding]> = []
      for (const [aor, list] of this.components.location.entries()) {
        for (const b of list) if (b.nat && b.flow.transport === 'UDP') targets.push([aor, b])
      }
      const seen = new Set<string>()
      // bounded parallelism: a node with many NATed phones spreads its pings instead of bursting them
      for (let i = 0; i < targets.length; i += 100) {
        if (this.timer == null) return
        await Promise.all(targets.slice(i, i + 100).map(async ([aor, b]) => {
          const id = `${aor}!${b.key}`
          seen.add(id)
          const ok = await this.components.ping(aor, b).catch(() => false)
          if (ok) { this.failures.delete(id); return }
          const n = (this.failures.get(id) ?? 0) + 1
          this.failures.set(id, n)
          if (this.init.maxFailures > 0 && n >= this.init.maxFailures) {
            this.failures.delete(id)
            this.components.logger?.info({ aor, contact: b.contact }, 'device stopped answering keep-alives: binding dropped')
            await this.components.location.update(aor, cur => ({ bindings: cur.filter(x => x.key !== b.key || x.updatedAt !== b.updatedAt), result: undefined }), 'unreachable')
          }
        }))
      }
      for (const id of this.failures.keys()) if (!seen.has(id)) this.failures.delete(id)
    } finally {
      this.running = false
    }
  }
}
