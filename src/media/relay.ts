import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { networkInterfaces } from 'node:os'
import { AbortError, type Logger, type MetricCounter, type Metrics } from '../core/index.js'
import { MediaCallDeletedError, MediaError, MediaRelayStoppedError, NoPortsError } from './errors.js'
import { isIPv4, mediaEndpoints, nextVersion, parseSdp, rewriteSdp, type Direction, type MediaEndpoint, type SdpOrigin } from './sdp.js'

export interface MediaRelayInit {
  /** address the relay's UDP sockets bind to @default '0.0.0.0' */
  host: string
  /** IPv4 address written into rewritten SDP (c=); when empty: `host` if it is not 0.0.0.0, else the first non-internal IPv4 of the machine, else 127.0.0.1 */
  advertisedAddress: string
  /** even port range for RTP (RTCP = RTP + 1) @default 20000..30000 */
  portMin: number
  portMax: number
  /** seconds without any packet in either direction after media started (or after answer) before 'media:timeout'; 0 turns it off @default 60 */
  timeoutSeconds: number
  /**
   * the same, for calls on hold (a stream sendonly, recvonly or inactive, or c=0.0.0.0): phones often send
   * nothing then
   * @default 3600
   */
  holdTimeoutSeconds?: number
}

export interface MediaRelayComponents {
  /** egress policy: the relay never sends to an address this refuses */
  allows: (address: string) => boolean
  logger?: Logger
  metrics?: Metrics
}

/** a = caller side, b = callee side */
export type Side = 'a' | 'b'

export interface MediaStats {
  /** packets and bytes relayed: a2b = sent by side a, forwarded to side b */
  packets: { a2b: number, b2a: number }
  bytes: { a2b: number, b2a: number }
  /** ms since the epoch: first packet received for the call */
  startedAt?: number
  /** ms since the epoch: last packet received for the call */
  lastPacketAt?: number
}

export interface MediaRelayEvents {
  /** no packet for `timeoutSeconds` in either direction: the call's media is dead (send BYE, then delete) */
  'media:timeout': CustomEvent<{ callId: string }>
}

/**
 * A packet duplex that stands in for one side's UDP endpoint (e.g. a stream to another node's relay). `send` must
 * hand the packet on at once (no batching: RTP timing) and must not throw.
 */
export interface PacketLink {
  /** a packet for that side: `stream` is the m-line index, `rtcp` tells RTCP from RTP */
  send: (packet: Uint8Array, stream: number, rtcp: boolean) => void
}

/** What {@link MediaRelay.attach} returns: the way in for packets from the linked side, and the way to let go. */
export interface AttachedLink {
  /** a packet the linked side sent on m-line `stream` (RTCP when `rtcp`); dropped when that m-line is unknown */
  receive: (packet: Uint8Array, stream: number, rtcp: boolean) => void
  /** the side goes back to UDP (its SDP endpoint); idempotent */
  detach: () => void
}

/** Options of the verbs that may wait (port binding). */
export interface MediaOptions {
  signal?: AbortSignal
}

// Slots of the relay-wide counters (a Float64Array: updating it on the hot path allocates nothing).
const PKT_A2B = 0
const PKT_B2A = 1
const BYTES_A2B = 2
const BYTES_B2A = 3
const DROP_SOURCE = 4 // from an address other than the latched one
const DROP_NO_ENDPOINT = 5 // the other side's address is not known yet (or on hold)
const DROP_EGRESS = 6 // the egress policy refuses the other side's address
const DROP_DISABLED = 7 // stream rejected or removed (port 0)
const DROP_ERROR = 8 // send failed
const SLOTS = 9
const DROP_REASONS: ReadonlyArray<readonly [number, { reason: string }]> = [
  [DROP_SOURCE, { reason: 'source' }], [DROP_NO_ENDPOINT, { reason: 'no-endpoint' }], [DROP_EGRESS, { reason: 'egress' }],
  [DROP_DISABLED, { reason: 'disabled' }], [DROP_ERROR, { reason: 'error' }]
]
const A2B = { direction: 'a2b' }
const B2A = { direction: 'b2a' }

// Relay targets are always IP literals: resolve them synchronously, so a send costs no DNS round trip or tick.
function literalLookup (address: string, _options: unknown, callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  callback(null, address, 4)
}

/**
 * One side of one m-line: the relay socket pair that side sends to (P[side]) and that side's endpoint, as the
 * SDP announced it and as its packets show it (latching).
 */
class Half {
  /** where packets to this side go now: the latched source, else the SDP address */
  rtpAddr = ''
  rtpPort = 0
  rtpOk = false
  rtcpAddr = ''
  rtcpPort = 0
  rtcpOk = false
  /** '' until the first packet: then the only IP this side may send from (re-latching follows port changes) */
  rtpLatchIp = ''
  rtcpLatchIp = ''
  /** as announced in the side's last SDP */
  sdpRtpAddr = ''
  sdpRtpPort = 0
  sdpRtcpAddr = ''
  sdpRtcpPort = 0
  mux = false
  direction: Direction = 'sendrecv'
  hold = false
  /** set while this side is bound to a packet link instead of UDP */
  link: PacketLink | undefined = undefined
  /** packets and bytes relayed from this side to the other */
  packets = 0
  bytes = 0
  other!: Half

  constructor (
    readonly stream: Stream,
    readonly side: Side,
    /** PKT_A2B or PKT_B2A: the counter slot of packets from this side */
    readonly slot: number,
    readonly rtp: Socket,
    readonly rtcp: Socket,
    readonly port: number
  ) {}
}

/** One m-line of a call: two halves, each with its relay port pair. */
class Stream {
  a!: Half
  b!: Half
  enabled = true
  constructor (readonly call: Call, readonly index: number) {}
}

interface OriginState {
  origin: SdpOrigin
  /** the last SDP sent to this side */
  body?: string
}

class Call {
  readonly streams: Array<Stream | undefined> = []
  /** ms: first packet; 0 = none yet */
  startedAt = 0
  lastPacketAt = 0
  /** ms: when both sides' SDP were known last (answer); 0 = not yet */
  armedAt = 0
  sdpFrom = { a: false, b: false }
  origins: { a?: OriginState, b?: OriginState } = {}
  onHold = false
  timedOut = false
  /** ms: when 'media:timeout' was sent */
  timedOutAt = 0
  deleted = false
  /** packet links binding a side instead of UDP */
  links: { a?: PacketLink, b?: PacketLink } = {}
  queue: Promise<void> = Promise.resolve()
  constructor (readonly id: string) {}
}

interface BoundPair { rtp: Socket, rtcp: Socket, port: number }

/**
 * The RTP relay (Kamailio's rtpengine behind three verbs): `offer` / `answer` rewrite SDP so that each side sends
 * its media to a relay port pair, packets are forwarded to the other side, and `delete` frees the ports.
 *
 * For call X, each side s has per m-line i a socket pair P[s][i] (the address side s sends to, written into the
 * SDP side s receives). A packet arriving on P[a][i] is sent from P[b][i] to B's endpoint, and the reverse.
 * Endpoints come from SDP and are overridden by the source of the packets a side really sends (symmetric RTP,
 * so NATed phones work).
 */
export class MediaRelay extends EventTarget {
  private readonly components: MediaRelayComponents
  private readonly host: string
  private readonly advertised: string
  private readonly portMin: number
  private readonly portMax: number
  private readonly timeoutMs: number
  private readonly holdTimeoutMs: number
  private readonly table = new Map<string, Call>()
  private readonly used = new Set<number>()
  private readonly sockets = new Set<Socket>()
  private nextPort: number
  private running = false
  private sweepTimer: ReturnType<typeof setInterval> | undefined
  private readonly counts = new Float64Array(SLOTS)
  private readonly flushed = new Float64Array(SLOTS)
  private readonly warned = new Set<string>()
  private readonly packetsTotal?: MetricCounter
  private readonly bytesTotal?: MetricCounter
  private readonly droppedTotal?: MetricCounter

  constructor (components: MediaRelayComponents, init: MediaRelayInit) {
    super()
    this.components = components
    this.host = init.host !== '' && init.host != null ? init.host : '0.0.0.0'
    if (!isIPv4(this.host)) throw new MediaError(`media host ${this.host} is not an IPv4 address`)
    const portMin = init.portMin ?? 20000
    const portMax = init.portMax ?? 30000
    if (!Number.isInteger(portMin) || !Number.isInteger(portMax) || portMin < 1 || portMax > 65535) throw new MediaError(`bad port range ${portMin}..${portMax}`)
    this.portMin = portMin % 2 === 0 ? portMin : portMin + 1
    this.portMax = portMax
    if (this.portMin + 1 > this.portMax) throw new MediaError(`port range ${portMin}..${portMax} holds no RTP/RTCP pair`)
    this.nextPort = this.portMin
    this.timeoutMs = (init.timeoutSeconds ?? 60) * 1000
    this.holdTimeoutMs = (init.holdTimeoutSeconds ?? 3600) * 1000
    this.advertised = init.advertisedAddress != null && init.advertisedAddress !== '' ? init.advertisedAddress : defaultAdvertised(this.host)
    if (!isIPv4(this.advertised)) throw new MediaError(`advertised address ${this.advertised} is not an IPv4 address`)

    const metrics = components.metrics
    if (metrics != null) {
      metrics.gauge('m1node_media_calls', 'Calls holding relay ports', [], () => this.table.size)
      metrics.gauge('m1node_media_ports', 'UDP ports held by the media relay', [], () => this.used.size * 2)
      this.packetsTotal = metrics.counter('m1node_media_packets_total', 'RTP and RTCP packets relayed', ['direction'])
      this.bytesTotal = metrics.counter('m1node_media_bytes_total', 'RTP and RTCP bytes relayed', ['direction'])
      this.droppedTotal = metrics.counter('m1node_media_dropped_total', 'Packets the relay dropped', ['reason'])
    }
  }

  /** The IPv4 address written into rewritten SDP. */
  get address (): string { return this.advertised }

  /** Number of calls holding ports. */
  get calls (): number { return this.table.size }

  /** Number of UDP ports held (two per pair, two pairs per relayed m-line). */
  get ports (): number { return this.used.size * 2 }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.sweepTimer = setInterval(() => { this.sweep() }, 1000)
    this.sweepTimer.unref()
    this.components.logger?.info({ host: this.host, address: this.advertised, ports: `${this.portMin}-${this.portMax}` }, 'media relay started')
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    if (this.sweepTimer != null) clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    for (const id of [...this.table.keys()]) this.delete(id)
    // pairs still binding are closed by their offer when it sees the relay stopped
    for (const socket of [...this.sockets]) this.close(socket)
    this.flushMetrics()
  }

  /**
   * An SDP offer coming from `from` (e.g. the caller's INVITE): remembers `from`'s media endpoints, makes sure
   * the OTHER side has relay ports (one RTP/RTCP pair per m-line, reused on re-offers for the same m-line index),
   * and returns the SDP to send to the other side, with c=/m= (and a=rtcp) rewritten to the relay.
   * Throws {@link InvalidSdpError}, {@link NoPortsError}, {@link MediaRelayStoppedError}.
   */
  async offer (callId: string, from: Side, sdp: string, options?: MediaOptions): Promise<string> {
    return await this.update(callId, from, sdp, false, options)
  }

  /** The answer coming from `from` (e.g. the callee's 183/200): same rewrite in the other direction. */
  async answer (callId: string, from: Side, sdp: string, options?: MediaOptions): Promise<string> {
    return await this.update(callId, from, sdp, true, options)
  }

  /** Frees the call's ports; returns its final stats (undefined when unknown). Idempotent. */
  delete (callId: string): MediaStats | undefined {
    const call = this.table.get(callId)
    if (call == null) return undefined
    const stats = statsOf(call)
    this.table.delete(callId)
    call.deleted = true
    call.links = {}
    for (const stream of call.streams) {
      if (stream == null) continue
      this.free(stream.a)
      this.free(stream.b)
    }
    call.streams.length = 0
    this.components.logger?.debug({ callId, packets: stats.packets }, 'media deleted')
    return stats
  }

  stats (callId: string): MediaStats | undefined {
    const call = this.table.get(callId)
    return call == null ? undefined : statsOf(call)
  }

  /**
   * Binds side `side` of a call to a packet link instead of its UDP endpoint: packets for that side go to
   * `link.send`, and packets the returned `receive` gets are relayed as if that side had sent them to its relay
   * port (no latching: the link is already authenticated). Covers the call's m-lines now and later. Throws
   * MediaError when the call is unknown or the side is already linked.
   */
  attach (callId: string, side: Side, link: PacketLink): AttachedLink {
    if (side !== 'a' && side !== 'b') throw new MediaError(`bad side ${String(side)}`)
    const call = this.table.get(callId)
    if (call == null || call.deleted) throw new MediaError(`no media for call ${callId}`)
    if (call.links[side] != null) throw new MediaError(`side ${side} of call ${callId} is already linked`)
    call.links[side] = link
    for (const s of call.streams) if (s != null) s[side].link = link
    let attached = true
    return {
      receive: (packet, index, rtcp) => {
        if (!attached) return
        const stream = call.streams[index]
        if (stream == null) { this.counts[DROP_NO_ENDPOINT]!++; return }
        const h = stream[side]
        const buf = Buffer.isBuffer(packet) ? packet : Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength)
        if (rtcp) this.fromLink(h, buf, true)
        else this.fromLink(h, buf, false)
      },
      detach: () => {
        if (!attached) return
        attached = false
        if (call.links[side] !== link) return
        call.links[side] = undefined
        for (const s of call.streams) if (s != null) s[side].link = undefined
      }
    }
  }

  /** Counts a packet side h sent that went on to the other side. */
  private relayed (h: Half, bytes: number): void {
    h.packets++
    h.bytes += bytes
    this.counts[h.slot]!++
    this.counts[h.slot + 2]! += bytes
  }

  /** Marks the call alive (media timeout) and says whether side h's stream relays at all (a disabled m-line drops). */
  private heard (h: Half): boolean {
    const stream = h.stream
    const call = stream.call
    const now = Date.now()
    if (call.startedAt === 0) call.startedAt = now
    call.lastPacketAt = now
    if (stream.enabled) return true
    this.counts[DROP_DISABLED]!++
    return false
  }

  /** A packet side h sent over its link. */
  private fromLink (h: Half, msg: Buffer, rtcp: boolean): void {
    if (!this.heard(h)) return
    if (rtcp) this.sendRtcp(h, h.other, msg)
    else this.forwardRtp(h, h.other, msg)
  }

  private async update (callId: string, from: Side, body: string, isAnswer: boolean, options?: MediaOptions): Promise<string> {
    if (!this.running) throw new MediaRelayStoppedError()
    if (from !== 'a' && from !== 'b') throw new MediaError(`bad side ${String(from)}`)
    if (options?.signal?.aborted === true) throw new AbortError()
    // parse before anything is allocated: a bad body costs nothing
    const sdp = parseSdp(body)
    let call = this.table.get(callId)
    const created = call == null
    if (call == null) {
      call = new Call(callId)
      this.table.set(callId, call)
    }
    const c = call
    const run = c.queue.then(async () => await this.apply(c, from, sdp, isAnswer, options?.signal))
    c.queue = run.then(() => {}, () => {})
    try {
      return await run
    } catch (err) {
      // a call this verb created and could not set up holds nothing worth keeping
      if (created && !c.deleted && c.streams.every(s => s == null)) this.table.delete(callId)
      throw err
    }
  }

  private async apply (call: Call, from: Side, sdp: ReturnType<typeof parseSdp>, isAnswer: boolean, signal?: AbortSignal): Promise<string> {
    if (call.deleted) throw new MediaCallDeletedError(call.id)
    const to: Side = from === 'a' ? 'b' : 'a'
    const endpoints = mediaEndpoints(sdp)
    const ports: Array<{ rtp: number, rtcp: number } | undefined> = []
    for (const e of endpoints) {
      let stream = call.streams[e.index]
      if (!e.relayed) {
        // RFC 3264 §8.2: port 0 removes the stream; a stream we cannot relay is not ours any more either
        if (stream != null) stream.enabled = false
        if (e.reason === 'proto' || e.reason === 'ipv6') this.warnOnce(e.reason === 'proto' ? `proto:${e.proto}` : 'ipv6', call.id, e)
        continue
      }
      if (stream == null) {
        stream = await this.createStream(call, e.index, signal)
        call.streams[e.index] = stream
        stream.a.link = call.links.a
        stream.b.link = call.links.b
      }
      stream.enabled = true
      this.setEndpoint(stream[from], e)
      ports[e.index] = { rtp: stream[to].port, rtcp: stream[to].port + 1 }
    }
    call.sdpFrom[from] = true
    if (call.sdpFrom.a && call.sdpFrom.b && (isAnswer || call.armedAt === 0)) {
      call.armedAt = Date.now()
      call.timedOut = false
    }
    call.onHold = call.streams.some(s => s != null && s.enabled && (isHeld(s.a) || isHeld(s.b)))

    const out = this.rewrite(call, to, sdp, ports)
    this.components.logger?.debug({ callId: call.id, from, verb: isAnswer ? 'answer' : 'offer', streams: ports.filter(p => p != null).length }, 'media updated')
    return out
  }

  /** Rewrites for side `to`, keeping one o= origin per receiving side whose version grows when the SDP changes. */
  private rewrite (call: Call, to: Side, sdp: ReturnType<typeof parseSdp>, ports: Array<{ rtp: number, rtcp: number } | undefined>): string {
    if (sdp.origin == null) return rewriteSdp(sdp, { address: this.advertised, ports })
    let state = call.origins[to]
    if (state == null) {
      state = { origin: { ...sdp.origin } }
      call.origins[to] = state
    }
    let out = rewriteSdp(sdp, { address: this.advertised, ports, origin: state.origin })
    if (state.body != null && out !== state.body) {
      // RFC 3264 §8: a changed session description carries a higher version
      state.origin.version = nextVersion(state.origin.version)
      out = rewriteSdp(sdp, { address: this.advertised, ports, origin: state.origin })
    }
    state.body = out
    return out
  }

  private setEndpoint (h: Half, e: MediaEndpoint): void {
    const rtpAddr = e.address ?? ''
    const rtpPort = rtpAddr === '' ? 0 : e.port
    const rtcpAddr = e.rtcpAddress ?? ''
    const rtcpPort = rtcpAddr === '' ? 0 : e.rtcpPort
    // a new address in SDP (the phone moved, the call was transferred) unlocks latching
    if (rtpAddr !== h.sdpRtpAddr || rtpPort !== h.sdpRtpPort) {
      h.sdpRtpAddr = rtpAddr
      h.sdpRtpPort = rtpPort
      h.rtpLatchIp = ''
      h.rtpAddr = rtpAddr
      h.rtpPort = rtpPort
      h.rtpOk = rtpPort !== 0 && this.allows(rtpAddr)
    }
    if (rtcpAddr !== h.sdpRtcpAddr || rtcpPort !== h.sdpRtcpPort) {
      h.sdpRtcpAddr = rtcpAddr
      h.sdpRtcpPort = rtcpPort
      h.rtcpLatchIp = ''
      h.rtcpAddr = rtcpAddr
      h.rtcpPort = rtcpPort
      h.rtcpOk = rtcpPort !== 0 && this.allows(rtcpAddr)
    }
    h.mux = e.rtcpMux
    h.direction = e.direction
    h.hold = e.hold
  }

  private allows (address: string): boolean {
    try {
      return this.components.allows(address)
    } catch {
      return false
    }
  }

  private async createStream (call: Call, index: number, signal?: AbortSignal): Promise<Stream> {
    const first = await this.allocate(signal)
    let second: BoundPair
    try {
      second = await this.allocate(signal)
    } catch (err) {
      this.release(first)
      throw err
    }
    if (call.deleted || !this.running) {
      this.release(first)
      this.release(second)
      if (!this.running) throw new MediaRelayStoppedError()
      throw new MediaCallDeletedError(call.id)
    }
    const stream = new Stream(call, index)
    const a = new Half(stream, 'a', PKT_A2B, first.rtp, first.rtcp, first.port)
    const b = new Half(stream, 'b', PKT_B2A, second.rtp, second.rtcp, second.port)
    a.other = b
    b.other = a
    stream.a = a
    stream.b = b
    this.listen(a)
    this.listen(b)
    return stream
  }

  // One closure per socket, bound to its half: the handlers below allocate nothing per packet.
  private listen (h: Half): void {
    h.rtp.on('message', (msg: Buffer, rinfo: RemoteInfo) => { this.onRtp(h, msg, rinfo) })
    h.rtcp.on('message', (msg: Buffer, rinfo: RemoteInfo) => { this.onRtcp(h, msg, rinfo) })
  }

  /** A packet side h sent to its RTP port P[h]. */
  private onRtp (h: Half, msg: Buffer, rinfo: RemoteInfo): void {
    const counts = this.counts
    // a linked side sends over its link only: UDP to its port is somebody else's
    if (h.link != null) { counts[DROP_SOURCE]!++; return }
    if (rinfo.port !== h.rtpPort || rinfo.address !== h.rtpAddr) {
      // latching: the first source wins; later only the same IP may move to another port (NAT rebinding)
      if (h.rtpLatchIp === '') {
        h.rtpLatchIp = rinfo.address
        h.rtpOk = this.allows(rinfo.address)
      } else if (rinfo.address !== h.rtpLatchIp) {
        counts[DROP_SOURCE]!++
        return
      }
      h.rtpAddr = rinfo.address
      h.rtpPort = rinfo.port
    }
    if (!this.heard(h)) return
    const to = h.other
    // RFC 5761 §4: a multiplexing side sends RTCP (packet types 192..223) on the RTP port; one that does not
    // multiplex (or a link, which marks RTCP) gets it on its RTCP port
    if (h.mux && (!to.mux || to.link != null) && msg.length > 1) {
      const pt = msg[1] as number
      if (pt >= 192 && pt <= 223) {
        this.sendRtcp(h, to, msg)
        return
      }
    }
    this.forwardRtp(h, to, msg)
  }

  /** Sends an RTP packet side h sent on to side `to`: over its link, or by UDP to its endpoint. */
  private forwardRtp (h: Half, to: Half, msg: Buffer): void {
    const counts = this.counts
    if (to.link != null) {
      try {
        to.link.send(msg, to.stream.index, false)
      } catch {
        counts[DROP_ERROR]!++
        return
      }
    } else if (!to.rtpOk) {
      counts[to.rtpPort === 0 ? DROP_NO_ENDPOINT : DROP_EGRESS]!++
      return
    } else {
      try {
        to.rtp.send(msg, to.rtpPort, to.rtpAddr)
      } catch {
        counts[DROP_ERROR]!++
        return
      }
    }
    this.relayed(h, msg.length)
  }

  /** A packet side h sent to its RTCP port P[h] + 1. */
  private onRtcp (h: Half, msg: Buffer, rinfo: RemoteInfo): void {
    if (h.link != null) { this.counts[DROP_SOURCE]!++; return }
    if (rinfo.port !== h.rtcpPort || rinfo.address !== h.rtcpAddr) {
      if (h.rtcpLatchIp === '') {
        h.rtcpLatchIp = rinfo.address
        h.rtcpOk = this.allows(rinfo.address)
      } else if (rinfo.address !== h.rtcpLatchIp) {
        this.counts[DROP_SOURCE]!++
        return
      }
      h.rtcpAddr = rinfo.address
      h.rtcpPort = rinfo.port
    }
    if (!this.heard(h)) return
    this.sendRtcp(h, h.other, msg)
  }

  private sendRtcp (from: Half, to: Half, msg: Buffer): void {
    const counts = this.counts
    if (to.link != null) {
      try {
        to.link.send(msg, to.stream.index, true)
      } catch {
        counts[DROP_ERROR]!++
        return
      }
      this.relayed(from, msg.length)
      return
    }
    // RTCP to a multiplexing side goes to its RTP endpoint, from the RTP socket it knows
    const ok = to.mux ? to.rtpOk : to.rtcpOk
    if (!ok) {
      counts[(to.mux ? to.rtpPort : to.rtcpPort) === 0 ? DROP_NO_ENDPOINT : DROP_EGRESS]!++
      return
    }
    try {
      if (to.mux) to.rtp.send(msg, to.rtpPort, to.rtpAddr)
      else to.rtcp.send(msg, to.rtcpPort, to.rtcpAddr)
    } catch {
      counts[DROP_ERROR]!++
      return
    }
    this.relayed(from, msg.length)
  }

  /** Binds the next free even port and the odd one above it; skips ports in use by anyone. */
  private async allocate (signal?: AbortSignal): Promise<BoundPair> {
    const pairs = Math.floor((this.portMax - this.portMin + 1) / 2)
    for (let tried = 0; tried < pairs; tried++) {
      if (signal?.aborted === true) throw new AbortError()
      if (!this.running) throw new MediaRelayStoppedError()
      const port = this.nextPort
      // round robin: a port just freed is the last one reused, so late packets of an old call find nobody
      this.nextPort = port + 3 > this.portMax ? this.portMin : port + 2
      if (this.used.has(port)) continue
      this.used.add(port)
      let rtp: Socket | undefined
      try {
        rtp = await this.bind(port)
        const rtcp = await this.bind(port + 1)
        return { rtp, rtcp, port }
      } catch (err) {
        if (rtp != null) this.close(rtp)
        this.used.delete(port)
        const code = (err as NodeJS.ErrnoException).code
        // out of file descriptors is out of capacity, like out of ports: 503 with Retry-After, not a bug
        if (code === 'EMFILE' || code === 'ENFILE') {
          this.components.logger?.warn({ calls: this.table.size }, 'out of file descriptors for RTP sockets (raise the open files limit)')
          throw new NoPortsError(this.portMin, this.portMax, `out of file descriptors (${code}) with ${this.table.size} calls`)
        }
        if (code !== 'EADDRINUSE' && code !== 'EACCES') throw new MediaError(`cannot bind ${this.host}:${port}: ${(err as Error).message}`, { cause: err })
      }
    }
    this.components.logger?.warn({ ports: `${this.portMin}-${this.portMax}`, calls: this.table.size }, 'no free RTP port pair')
    throw new NoPortsError(this.portMin, this.portMax)
  }

  private async bind (port: number): Promise<Socket> {
    const socket = createSocket({ type: 'udp4', lookup: literalLookup })
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        try { socket.close() } catch {}
        reject(err)
      }
      socket.once('error', onError)
      socket.bind({ port, address: this.host, exclusive: true }, () => {
        socket.off('error', onError)
        resolve()
      })
    })
    // asynchronous send failures land here: count them, never throw out of a socket
    socket.on('error', () => { this.counts[DROP_ERROR]!++ })
    this.sockets.add(socket)
    return socket
  }

  private release (pair: BoundPair): void {
    this.close(pair.rtp)
    this.close(pair.rtcp)
    this.used.delete(pair.port)
  }

  private free (h: Half): void {
    this.close(h.rtp)
    this.close(h.rtcp)
    this.used.delete(h.port)
  }

  private close (socket: Socket): void {
    this.sockets.delete(socket)
    socket.removeAllListeners('message')
    try { socket.close() } catch {}
  }

  /** Once a second: dead calls get 'media:timeout'; counters go to the metrics. */
  private sweep (): void {
    const now = Date.now()
    for (const call of this.table.values()) {
      if (call.armedAt === 0) continue
      if (call.timedOut) {
        // packets again after a timeout: the call may time out again later
        if (call.lastPacketAt <= call.timedOutAt) continue
        call.timedOut = false
      }
      const last = Math.max(call.lastPacketAt, call.armedAt)
      const limit = call.onHold ? this.holdTimeoutMs : this.timeoutMs
      if (limit > 0 && now - last >= limit) {
        call.timedOut = true
        call.timedOutAt = now
        this.components.logger?.info({ callId: call.id, silentFor: now - last }, 'media timeout')
        this.dispatchEvent(new CustomEvent('media:timeout', { detail: { callId: call.id } }))
      }
    }
    this.flushMetrics()
  }

  private flushMetrics (): void {
    const c = this.counts
    const f = this.flushed
    const delta = (slot: number): number => {
      const d = (c[slot] as number) - (f[slot] as number)
      f[slot] = c[slot] as number
      return d
    }
    let d = delta(PKT_A2B)
    if (d > 0) this.packetsTotal?.inc(A2B, d)
    d = delta(PKT_B2A)
    if (d > 0) this.packetsTotal?.inc(B2A, d)
    d = delta(BYTES_A2B)
    if (d > 0) this.bytesTotal?.inc(A2B, d)
    d = delta(BYTES_B2A)
    if (d > 0) this.bytesTotal?.inc(B2A, d)
    for (const [slot, labels] of DROP_REASONS) {
      d = delta(slot)
      if (d > 0) this.droppedTotal?.inc(labels, d)
    }
  }

  private warnOnce (key: string, callId: string, e: MediaEndpoint): void {
    // the proto name comes from the network: remember a bounded number of them
    if (this.warned.has(key) || this.warned.size >= 64) return
    this.warned.add(key)
    this.components.logger?.warn({ callId, proto: e.proto, reason: e.reason },
      e.reason === 'ipv6' ? 'IPv6 media is not relayed: passed through unchanged' : 'media transport not relayed (DTLS/ICE or unknown): passed through unchanged')
  }

  /** Relay-wide counters since start, for tests and benchmarks. */
  totals (): { packets: { a2b: number, b2a: number }, bytes: { a2b: number, b2a: number }, dropped: Record<string, number> } {
    const c = this.counts
    const dropped: Record<string, number> = {}
    for (const [slot, labels] of DROP_REASONS) dropped[labels.reason] = c[slot] as number
    return {
      packets: { a2b: c[PKT_A2B] as number, b2a: c[PKT_B2A] as number },
      bytes: { a2b: c[BYTES_A2B] as number, b2a: c[BYTES_B2A] as number },
      dropped
    }
  }
}

function isHeld (h: Half): boolean {
  return h.hold || h.direction !== 'sendrecv'
}

function statsOf (call: Call): MediaStats {
  const stats: MediaStats = { packets: { a2b: 0, b2a: 0 }, bytes: { a2b: 0, b2a: 0 } }
  for (const s of call.streams) {
    if (s == null) continue
    stats.packets.a2b += s.a.packets
    stats.packets.b2a += s.b.packets
    stats.bytes.a2b += s.a.bytes
    stats.bytes.b2a += s.b.bytes
  }
  if (call.startedAt !== 0) stats.startedAt = call.startedAt
  if (call.lastPacketAt !== 0) stats.lastPacketAt = call.lastPacketAt
  return stats
}

/** `host` unless it is the wildcard, else the first non-internal IPv4 of the machine, else 127.0.0.1. */
function defaultAdvertised (host: string): string {
  if (host !== '0.0.0.0' && isIPv4(host)) return host
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? []) {
      if (i.family === 'IPv4' && !i.internal) return i.address
    }
  }
  return '127.0.0.1'
}
