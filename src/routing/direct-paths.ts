import nodeDataChannel from 'node-datachannel'
import type { DataChannel, PeerConnection } from 'node-datachannel'
import type { Logger, MetricCounter, Metrics } from '../core/index.js'

/** ICE offer/answer between two nodes for a direct media path (docs/protocols.md). */
export const ICE_PROTOCOL = '/m1/ice/1.0.0'

/** Data channel frame kinds beyond the media ones of `/m1/rtp/1.0.0`: a probe, and its echo. */
export const KIND_PROBE = 0xfe
export const KIND_ECHO = 0xfd
const HEADER = 5
const MAX_SDP = 16 * 1024

export interface DirectPathsComponents {
  /** the libp2p node's request/response frames (src/p2p `P2p`) */
  p2p: {
    request: (peer: string, protocol: string, frame: Record<string, unknown>, options?: { signal?: AbortSignal }) => Promise<Record<string, unknown>>
    handle: (protocol: string, handler: (frame: Record<string, unknown>, ctx: { peer: string, signal: AbortSignal }) => Promise<Record<string, unknown>>, options?: { maxInboundStreams?: number, timeoutMs?: number }) => Promise<void>
    unhandle: (protocol: string) => Promise<void>
  }
  /** our own peer id: of two nodes, the one with the smaller id makes the offer */
  selfPeerId: () => string
  /** ICE servers now, e.g. `stun:<relay ip>:3478` for each relay the node holds */
  iceServers: () => string[]
  /** whether `peer` may open a path with us (it is the far end of a live call leg) */
  allowed: (peer: string) => boolean
  /** a media frame (the `/m1/rtp/1.0.0` layout) arrived on the data channel of `peer` */
  onFrame: (peer: string, frame: Buffer) => void
  /** the data channel of `peer` became the media carrier (true) or stopped being it (false) */
  onSwitch: (peer: string, active: boolean) => void
  logger?: Logger
  metrics?: Metrics
}

export interface DirectPathsInit {
  /** Local address ICE binds to and gathers host candidates on; empty: every interface. @default '' */
  bindAddress?: string
  /** Milliseconds between probes on an open data channel (both ends probe). @default 500 */
  probeIntervalMs?: number
  /** Milliseconds without any packet or probe on the data channel after which media goes back to the stream. @default 2500 */
  quietMs?: number
  /** Milliseconds for ICE to gather, signal and open the data channel before the attempt is given up. @default 10000 */
  timeoutMs?: number
  /** Milliseconds to wait for candidate gathering (STUN) before the description is sent as it is. @default 3000 */
  gatherTimeoutMs?: number
  /** Milliseconds a failed attempt waits before the next call with that peer may try again. @default 5000 */
  retryAfterMs?: number
  /**
   * Milliseconds the path stays up after the last call with the peer ended, so that the far node's end of the call
   * (its BYE may still be on the way) does not see the path close first, and a next call finds it open. @default 3000
   */
  lingerMs?: number
}

/** One PeerConnection and its data channel with one peer. */
interface Path {
  peer: string
  pc: PeerConnection
  dc?: DataChannel
  offerer: boolean
  state: 'connecting' | 'open' | 'closed'
  /** media is sent on the data channel */
  active: boolean
  lastHeard: number
  openedAt: number
  closedAt: number
  timer?: ReturnType<typeof setInterval>
  deadline?: ReturnType<typeof setTimeout>
  linger?: ReturnType<typeof setTimeout>
}

/**
 * The direct rung of the media path ladder: one ICE PeerConnection per pair of nodes with an unordered data channel
 * that never retransmits (RTP semantics). The node with the smaller peer id offers over `/m1/ice/1.0.0` (one
 * request: offer with all gathered candidates, answer likewise). Once the channel is open both ends probe every
 * `probeIntervalMs`; the first echo makes it the carrier, `quietMs` of silence or a close makes the stream the
 * carrier again. A path that failed stays failed until the last call with that peer ends (or `retryAfterMs`).
 */
export class DirectPaths {
  private readonly paths = new Map<string, Path>()
  private running = false
  private readonly switches?: MetricCounter
  private readonly attempts?: MetricCounter

  constructor (private readonly components: DirectPathsComponents, private readonly init: DirectPathsInit = {}) {
    const m = components.metrics
    m?.gauge('m1node_media_direct_paths', 'Direct node-to-node media paths (ICE data channels) carrying media now', [], () => [...this.paths.values()].filter(p => p.active).length)
    this.attempts = m?.counter('m1node_media_direct_attempts_total', 'ICE attempts toward other nodes, by outcome', ['outcome'])
    this.switches = m?.counter('m1node_media_direct_switches_total', 'Media carrier switches between a node pair, by the carrier switched to', ['to'])
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await this.components.p2p.handle(ICE_PROTOCOL, async (frame, ctx) => await this.answer(frame, ctx.peer), { maxInboundStreams: 16, timeoutMs: (this.init.gatherTimeoutMs ?? 3000) + 2000 })
    } catch (err) {
      this.running = false
      throw err
    }
  }

  async stop (): Promise<void> {
    this.running = false
    await this.components.p2p.unhandle(ICE_PROTOCOL).catch(() => {})
    for (const peer of [...this.paths.keys()]) this.release(peer)
  }

  /** Open PeerConnections (for tests and the status page). */
  get size (): number { return this.paths.size }

  /** Whether media for `peer` goes over its data channel now. */
  isActive (peer: string): boolean { return this.paths.get(peer)?.active === true }

  /** Whether the data channel with `peer` is open (carrier or not). */
  isOpen (peer: string): boolean { return this.paths.get(peer)?.state === 'open' }

  /** A call with `peer` has media: make sure a path is tried (the smaller peer id offers; the other waits). */
  want (peer: string): void {
    if (!this.running) return
    const existing = this.paths.get(peer)
    if (existing?.linger != null) { clearTimeout(existing.linger); existing.linger = undefined }
    if (existing != null && (existing.state !== 'closed' || Date.now() - existing.closedAt < (this.init.retryAfterMs ?? 5000))) return
    if (existing != null) this.paths.delete(peer)
    if (this.components.selfPeerId() >= peer) return
    void this.offer(peer)
  }

  /** The last call with `peer` ended: its PeerConnection closes after `lingerMs` (at once when stopping). */
  release (peer: string): void {
    const path = this.paths.get(peer)
    if (path == null) return
    const ms = this.init.lingerMs ?? 3000
    if (this.running && ms > 0 && path.state !== 'closed') {
      if (path.linger == null) {
        path.linger = setTimeout(() => {
          path.linger = undefined
          if (this.paths.get(peer) === path) this.paths.delete(peer)
          this.close(path, 'released')
        }, ms)
      }
      return
    }
    this.paths.delete(peer)
    this.close(path, 'released')
  }

  /** Closes the data channel with `peer` (media falls back to the stream); for tests and operators. */
  drop (peer: string): void {
    const path = this.paths.get(peer)
    if (path != null) this.close(path, 'dropped')
  }

  /** Sends one frame on the data channel; false when there is no carrier (the caller uses the stream). */
  send (peer: string, frame: Buffer): boolean {
    const path = this.paths.get(peer)
    if (path?.active !== true || path.dc == null) return false
    try {
      return path.dc.sendMessageBinary(frame)
    } catch (err) {
      this.close(path, 'send failed', err)
      return false
    }
  }

  private newPath (peer: string, offerer: boolean): Path {
    const servers = this.components.iceServers()
    const bind = this.init.bindAddress
    const pc = new nodeDataChannel.PeerConnection(`m1-${peer.slice(-8)}`, {
      iceServers: servers,
      ...(bind != null && bind !== '' ? { bindAddress: bind } : {}),
      enableIceTcp: false
    })
    const path: Path = { peer, pc, offerer, state: 'connecting', active: false, lastHeard: 0, openedAt: 0, closedAt: 0 }
    pc.onStateChange((state) => {
      // 'disconnected' may pass; the probes decide the carrier meanwhile
      if (state === 'failed' || state === 'closed') this.close(path, `ice ${state}`)
    })
    path.deadline = setTimeout(() => { if (path.state === 'connecting') this.close(path, 'timeout') }, this.init.timeoutMs ?? 10_000)
    const old = this.paths.get(peer)
    if (old != null) this.close(old, 'replaced')
    this.paths.set(peer, path)
    return path
  }

  private async offer (peer: string): Promise<void> {
    let path: Path | undefined
    try {
      path = this.newPath(peer, true)
      this.wire(path, path.pc.createDataChannel('m1-rtp', { unordered: true, maxRetransmits: 0 }))
      const sdp = await this.gathered(path.pc)
      if (isClosed(path)) return
      const answer = await this.components.p2p.request(peer, ICE_PROTOCOL, { type: 'offer', sdp }, { signal: AbortSignal.timeout(this.init.timeoutMs ?? 10_000) })
      if (isClosed(path)) return
      if (answer.type !== 'answer' || typeof answer.sdp !== 'string' || answer.sdp.length > MAX_SDP) throw new Error('bad ICE answer')
      await this.applyRemote(path, answer.sdp, 'answer')
    } catch (err) {
      if (path != null) this.close(path, 'offer failed', err)
    }
  }

  /** `/m1/ice/1.0.0` offer from `peer`: a fresh PeerConnection answers it (an older one with that peer closes). */
  private async answer (frame: Record<string, unknown>, peer: string): Promise<Record<string, unknown>> {
    if (!this.running) return { type: 'error', code: 'unavailable', message: 'not running' }
    if (frame.type !== 'offer' || typeof frame.sdp !== 'string' || frame.sdp.length > MAX_SDP) return { type: 'error', code: 'bad-request', message: 'offer needs sdp' }
    if (!this.components.allowed(peer)) return { type: 'error', code: 'no-call', message: 'no call with this node' }
    const old = this.paths.get(peer)
    if (old != null) { this.paths.delete(peer); this.close(old, 'replaced') }
    const path = this.newPath(peer, false)
    try {
      path.pc.onDataChannel((dc) => { this.wire(path, dc) })
      await this.applyRemote(path, frame.sdp, 'offer')
      const sdp = await this.gathered(path.pc)
      return { type: 'answer', sdp }
    } catch (err) {
      this.close(path, 'answer failed', err)
      return { type: 'error', code: 'ice', message: 'cannot answer' }
    }
  }

  /**
   * Sets the remote description without its candidates, then adds them one by one: libdatachannel sometimes
   * refuses candidates given with the description before its ICE transport exists ("remote candidate without ICE
   * transport"), so a refused one is tried again a little later.
   */
  private async applyRemote (path: Path, sdp: string, type: 'offer' | 'answer'): Promise<void> {
    const lines = sdp.split(/\r?\n/)
    const candidates = lines.filter(l => l.startsWith('a=candidate:')).map(l => l.slice(2))
    const mid = /^a=mid:(\S+)/m.exec(sdp)?.[1] ?? '0'
    path.pc.setRemoteDescription(lines.filter(l => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates').join('\r\n'), type as never)
    for (const c of candidates.slice(0, 32)) {
      for (let attempt = 0; ; attempt++) {
        if (path.state === 'closed') return
        try {
          path.pc.addRemoteCandidate(c, mid)
          break
        } catch (err) {
          if (attempt >= 10) { this.components.logger?.debug({ err, candidate: c }, 'remote candidate refused'); break }
          await new Promise(resolve => setTimeout(resolve, 20))
        }
      }
    }
  }

  /** The local description once candidates are gathered (or the gather timeout passed: what is there). */
  private async gathered (pc: PeerConnection): Promise<string> {
    await new Promise<void>((resolve) => {
      if (pc.gatheringState() === 'complete') { resolve(); return }
      const t = setTimeout(resolve, this.init.gatherTimeoutMs ?? 3000)
      pc.onGatheringStateChange((s) => { if (s === 'complete') { clearTimeout(t); resolve() } })
    })
    const desc = pc.localDescription()
    if (desc == null) throw new Error('no local description')
    return desc.sdp
  }

  private wire (path: Path, dc: DataChannel): void {
    if (path.state === 'closed') { try { dc.close() } catch {} return }
    path.dc = dc
    dc.onOpen(() => {
      if (path.state !== 'connecting') return
      path.state = 'open'
      path.openedAt = path.lastHeard = Date.now()
      if (path.deadline != null) clearTimeout(path.deadline)
      this.attempts?.inc({ outcome: 'open' })
      this.components.logger?.info({ peer: path.peer, pair: this.pairOf(path) }, 'direct media path open')
      const every = this.init.probeIntervalMs ?? 500
      path.timer = setInterval(() => { this.tick(path) }, every)
      this.probe(path)
    })
    dc.onClosed(() => { this.close(path, 'data channel closed') })
    dc.onError((e) => { this.close(path, 'data channel error', e) })
    dc.onMessage((msg) => {
      // socket callbacks never throw: a bad datagram is dropped
      try {
        if (typeof msg === 'string' || path.state !== 'open') return
        const buf = Buffer.isBuffer(msg) ? msg : Buffer.from(msg)
        if (buf.length < HEADER || buf.readUInt16BE(0) !== buf.length - HEADER) return
        path.lastHeard = Date.now()
        const kind = buf[2]!
        if (kind === KIND_PROBE) {
          buf[2] = KIND_ECHO
          path.dc?.sendMessageBinary(buf)
        } else if (kind === KIND_ECHO) {
          this.setActive(path, true)
        } else {
          this.components.onFrame(path.peer, buf)
        }
      } catch (err) {
        this.components.logger?.debug({ err, peer: path.peer }, 'bad data channel message')
      }
    })
  }

  private probe (path: Path): void {
    const f = Buffer.alloc(HEADER + 8)
    f.writeUInt16BE(8, 0)
    f[2] = KIND_PROBE
    f.writeDoubleBE(Date.now(), HEADER)
    try { path.dc?.sendMessageBinary(f) } catch (err) { this.close(path, 'probe failed', err) }
  }

  private tick (path: Path): void {
    if (path.state !== 'open') return
    if (path.active && Date.now() - path.lastHeard > (this.init.quietMs ?? 2500)) {
      this.components.logger?.info({ peer: path.peer }, 'direct media path quiet: back to the stream')
      this.setActive(path, false)
    }
    this.probe(path)
  }

  private setActive (path: Path, active: boolean): void {
    if (path.active === active) return
    path.active = active
    this.switches?.inc({ to: active ? 'datachannel' : 'stream' })
    try { this.components.onSwitch(path.peer, active) } catch (err) { this.components.logger?.error({ err }, 'media path switch handler failed') }
  }

  private close (path: Path, why: string, err?: unknown): void {
    if (path.state === 'closed') return
    const wasConnecting = path.state === 'connecting'
    path.state = 'closed'
    path.closedAt = Date.now()
    if (path.timer != null) clearInterval(path.timer)
    if (path.deadline != null) clearTimeout(path.deadline)
    if (path.linger != null) {
      // released already: nothing will ask for it again
      clearTimeout(path.linger)
      if (this.paths.get(path.peer) === path) this.paths.delete(path.peer)
    }
    if (wasConnecting && why !== 'released' && why !== 'replaced') {
      this.attempts?.inc({ outcome: 'failed' })
      // an attempt that failed while calls go on is made again (ICE checks can time out on a busy host)
      if (path.offerer && this.running) {
        const retry = setTimeout(() => { if (this.paths.get(path.peer) === path && this.components.allowed(path.peer)) this.want(path.peer) }, (this.init.retryAfterMs ?? 5000) + 10)
        retry.unref()
      }
    }
    this.components.logger?.[wasConnecting && why !== 'released' ? 'info' : 'debug']({ err, peer: path.peer, why }, 'direct media path closed')
    this.setActive(path, false)
    // the native objects are closed outside their own callbacks
    setImmediate(() => {
      try { path.dc?.close() } catch {}
      try { path.pc.close() } catch {}
    })
  }

  private pairOf (path: Path): string | undefined {
    try {
      const p = path.pc.getSelectedCandidatePair()
      return p != null ? `${p.local.type} ${p.local.address}:${p.local.port} -> ${p.remote.type} ${p.remote.address}:${p.remote.port}` : undefined
    } catch {
      return undefined
    }
  }
}

/** Read through a function: the state changes in callbacks while an offer awaits. */
function isClosed (path: Path): boolean { return path.state === 'closed' }
