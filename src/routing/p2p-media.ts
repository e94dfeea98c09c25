import { randomBytes } from 'node:crypto'
import type { Logger, MetricCounter, Metrics } from '../core/index.js'
import type { AttachedLink, PacketLink, Side } from '../media/index.js'
import { DirectPaths, type DirectPathsInit } from './direct-paths.js'

/** RTP and RTCP between two nodes' media relays over libp2p (docs/protocols.md). */
export const RTP_PROTOCOL = '/m1/rtp/1.0.0'

/** The session-level SDP attribute that moves a call leg's media onto an `/m1/rtp/1.0.0` stream. */
export const RTP_SDP_ATTRIBUTE = 'm1-rtp'

/** Largest packet carried, in bytes (an RTP packet in one Ethernet frame is about 1,500). */
export const MAX_RTP_PACKET_BYTES = 4096

/** Frame kind of the first frame on a stream: its payload is the token. */
const KIND_HELLO = 0xff
/** Kind bit: the packet is RTCP. The low 5 bits are the m-line index. */
const KIND_RTCP = 0x80
const KIND_INDEX = 0x1f
/** Kind bit, on the data channel only: the channel number is the one on the stream the sender opened. */
const KIND_OPENER = 0x40
const HEADER = 5
const MAX_CHANNELS = 65536
const TOKEN_RE = /^[A-Za-z0-9_-]{16,64}$/
const EMPTY = Buffer.alloc(0)

/**
 * The part of a libp2p stream the media links use: writes, and the events the muxer dispatches synchronously as
 * data arrives (`message`), so that a packet reaches the relay in the same callback.
 */
export interface PacketStream {
  send: (data: Uint8Array) => boolean
  onDrain: (options?: { signal?: AbortSignal }) => Promise<void>
  close: (options?: { signal?: AbortSignal }) => Promise<void>
  abort: (err: Error) => void
  addEventListener: (type: 'message' | 'close' | 'remoteCloseWrite', listener: (evt: any) => void) => void
  removeEventListener: (type: 'message' | 'close' | 'remoteCloseWrite', listener: (evt: any) => void) => void
}

/** What carried a call's media between the nodes (or, for `udp`, that no other node was involved). */
export type MediaPath = 'udp' | 'stream-direct' | 'stream-relayed' | 'datachannel'

/** The media path of a call leg: the carrier at its end and each change, with the time (epoch ms). */
export interface MediaPathReport {
  path: MediaPath
  switches: Array<{ at: number, path: MediaPath }>
}

export interface P2pMediaComponents {
  /** the libp2p node (src/p2p `P2p`), as the SIP transport uses it */
  p2p: {
    handleStreams: (protocol: string, handler: (stream: PacketStream, peer: string) => void, options?: { maxInboundStreams?: number, maxOutboundStreams?: number }) => Promise<void>
    dialStream: (peer: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<PacketStream>
    unhandle: (protocol: string) => Promise<void>
    /** request/response frames, for `/m1/ice/1.0.0` (absent: no direct path is tried) */
    request?: (peer: string, protocol: string, frame: Record<string, unknown>, options?: { signal?: AbortSignal }) => Promise<Record<string, unknown>>
    handle?: (protocol: string, handler: (frame: Record<string, unknown>, ctx: { peer: string, signal: AbortSignal }) => Promise<Record<string, unknown>>, options?: { maxInboundStreams?: number, timeoutMs?: number }) => Promise<void>
    /** whether the connection to a peer is direct or relayed (for the call record) */
    connectionTo?: (peer: string) => { direct: boolean }
  }
  /** our peer id (needed for direct paths) */
  selfPeerId?: () => string
  /** ICE servers for direct paths, e.g. `stun:<relay ip>:3478` per relay held */
  iceServers?: () => string[]
  /** the media relay (src/media `MediaRelay`) */
  relay: { attach: (callId: string, side: Side, link: PacketLink) => AttachedLink }
  logger?: Logger
  metrics?: Metrics
}

export interface P2pMediaInit {
  /** Largest RTP/RTCP packet carried; larger frames abort the stream, larger packets are not sent. @default 4096 */
  maxPacketBytes?: number
  /** Milliseconds to open a stream, and for a first valid hello to arrive on an inbound one. @default 5000 */
  timeoutMs?: number
  /** `/m1/rtp/1.0.0` streams open on one connection, each way. @default 64 */
  maxStreams?: number
  /** Try a direct path (ICE data channel, `/m1/ice/1.0.0`) beside the stream; needs p2p request/handle and selfPeerId. @default true */
  direct?: boolean
  /** Settings of the direct path. @default {} */
  directPath?: DirectPathsInit
  /**
   * Milliseconds a call leg whose stream went away (its connection died: a relay lost) has to get a channel on a new
   * stream; the side that opened the channel dials again meanwhile. After that the call is reported lost
   * (`media:lost`). @default 10000
   */
  recoverMs?: number
}

/** Events of {@link P2pMediaLinks}. */
export interface P2pMediaEvents {
  /** a call's media stream went away and no new one carried it within `recoverMs`: the call cannot go on */
  'media:lost': CustomEvent<{ callId: string, peer: string }>
}

/** A call leg whose media goes over a stream: the relay side it binds and the one peer allowed to carry it. */
interface Leg {
  token: string
  callId: string
  side: Side
  peer: string
  link?: Link
  channel?: number
  attached?: AttachedLink
  ended: boolean
  /**
   * `channel` was numbered on a stream we opened. With `channel` it names the leg on the data channel (the opener
   * bit), and stays while the leg waits for a new stream, so that the data channel keeps carrying it meanwhile.
   */
  ours?: boolean
  /** carrier now, and its changes (for the call record) */
  path?: MediaPath
  switches: Array<{ at: number, path: MediaPath }>
  /** we opened its channel ({@link P2pMediaLinks.connect}): we dial again when the stream goes */
  opener?: boolean
  /** a packet came on its channel (stream or data channel): the far end took it (a refused channel is not dialled again) */
  heard?: boolean
  /** running while the leg waits for a new stream after losing one */
  lost?: ReturnType<typeof setTimeout>
}

/** The legs with one peer that hold a channel, by channel: on streams we opened, and on streams it opened. */
interface PeerLegs {
  ours: Map<number, Leg>
  theirs: Map<number, Leg>
}

/** One `/m1/rtp/1.0.0` stream with a peer: the call legs it carries, by channel, and its write queue. */
interface Link {
  peer: string
  stream: PacketStream
  /** we opened it (we send hellos on it) */
  outbound: boolean
  channels: Map<number, Leg>
  nextChannel: number
  pending: Buffer[]
  scheduled: boolean
  congested: boolean
  closed: boolean
}

/**
 * Carries the media of cross-node call legs on `/m1/rtp/1.0.0`: one stream per pair of nodes (per opening side),
 * each call leg a channel on it. The node that sent the first SDP of a leg calls {@link expect} (the token goes in
 * its SDP as `a=m1-rtp:<token>`); the node that received it calls {@link connect}, which names the token in a hello
 * on its stream to that peer. Only the peer of the call's SIP leg may claim a token. Packets are written as the
 * relay hands them over: the frames produced while handling one batch of socket events leave in one write at the
 * end of that batch (never waiting for more), which keeps a busy pair of nodes from paying a write per packet.
 */
export class P2pMediaLinks extends EventTarget {
  private readonly byToken = new Map<string, Leg>()
  private readonly byCall = new Map<string, Leg[]>()
  private readonly links = new Set<Link>()
  private readonly outbound = new Map<string, Link>()
  private readonly dialing = new Map<string, Promise<Link | undefined>>()
  private readonly byPeer = new Map<string, PeerLegs>()
  /** the direct rung of the ladder, when enabled */
  readonly direct?: DirectPaths
  private readonly maxPacket: number
  private readonly timeoutMs: number
  private readonly recoverMs: number
  private running = false
  private sent = 0
  private received = 0
  private readonly refused?: MetricCounter

  constructor (private readonly components: P2pMediaComponents, private readonly init: P2pMediaInit = {}) {
    super()
    this.recoverMs = init.recoverMs ?? 10_000
    this.maxPacket = init.maxPacketBytes ?? MAX_RTP_PACKET_BYTES
    this.timeoutMs = init.timeoutMs ?? 5000
    const m = components.metrics
    m?.gauge('m1node_media_p2p_streams', 'Open /m1/rtp/1.0.0 streams', [], () => this.links.size)
    m?.gauge('m1node_media_p2p_legs', 'Call legs whose media rides on /m1/rtp/1.0.0', [], () => this.byToken.size)
    this.refused = m?.counter('m1node_media_p2p_refused_total', '/m1/rtp/1.0.0 streams or hellos refused', ['reason'])
    const p2p = components.p2p
    const self = components.selfPeerId
    if (init.direct !== false && p2p.request != null && p2p.handle != null && self != null) {
      this.direct = new DirectPaths({
        p2p: {
          request: async (peer, protocol, frame, options) => await p2p.request!(peer, protocol, frame, options),
          handle: async (protocol, handler, options) => { await p2p.handle!(protocol, handler, options) },
          unhandle: async (protocol) => { await p2p.unhandle(protocol) }
        },
        selfPeerId: self,
        iceServers: () => components.iceServers?.() ?? [],
        allowed: (peer) => { for (const leg of this.byToken.values()) if (leg.peer === peer && !leg.ended) return true; return false },
        onFrame: (peer, frame) => { this.deliverDirect(peer, frame) },
        onSwitch: (peer, active) => { this.switched(peer, active) },
        ...(components.logger != null ? { logger: components.logger } : {}),
        ...(m != null ? { metrics: m } : {})
      }, init.directPath ?? {})
    }
  }

  /** Open `/m1/rtp/1.0.0` streams (for tests and the status page). */
  get size (): number { return this.links.size }

  /** Packets written to and read from streams since start. */
  totals (): { sent: number, received: number } { return { sent: this.sent, received: this.received } }

  /** Call legs waiting for or holding a channel. */
  get legs (): number { return this.byToken.size }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    const max = this.init.maxStreams ?? 64
    try {
      await this.components.p2p.handleStreams(RTP_PROTOCOL, (stream, peer) => { this.accept(stream, peer) }, { maxInboundStreams: max, maxOutboundStreams: max })
      await this.direct?.start()
    } catch (err) {
      this.running = false
      throw err
    }
  }

  async stop (): Promise<void> {
    this.running = false
    await this.components.p2p.unhandle(RTP_PROTOCOL).catch(() => {})
    for (const callId of [...this.byCall.keys()]) this.end(callId)
    for (const link of [...this.links]) this.closeLink(link)
    await this.direct?.stop()
  }

  /**
   * The SIP leg of call `callId` toward `peer` is ours (we sent the first SDP): relay side `side` will be fed by the
   * channel `peer` opens naming the returned token (put it in the SDP with {@link withToken}). One token per leg.
   */
  expect (callId: string, side: Side, peer: string): string {
    const existing = this.byCall.get(callId)?.find(l => l.side === side && l.peer === peer)
    if (existing != null) return existing.token
    const token = randomBytes(18).toString('base64url')
    this.add({ token, callId, side, peer, ended: false, switches: [] })
    return token
  }

  /**
   * The far node of call `callId`'s SIP leg (`peer`) offered media over `/m1/rtp/1.0.0` with `token`: open a channel
   * on our stream to it and bind relay side `side` to it. Runs in the background; a failure leaves that side silent
   * (the media timeout ends the call).
   */
  connect (callId: string, side: Side, peer: string, token: string): void {
    if (!this.running || !TOKEN_RE.test(token) || this.byToken.has(token)) return
    const leg: Leg = { token, callId, side, peer, ended: false, switches: [], opener: true }
    this.add(leg)
    void this.open(leg)
  }

  /**
   * The call ended: its channels go, a stream left without channels closes, and the direct path with a peer left
   * without calls closes. Returns the media path of its first leg that had one. Idempotent.
   */
  end (callId: string): MediaPathReport | undefined {
    const legs = this.byCall.get(callId)
    if (legs == null) return undefined
    this.byCall.delete(callId)
    let report: MediaPathReport | undefined
    for (const leg of legs) {
      leg.ended = true
      if (leg.lost != null) clearTimeout(leg.lost)
      this.byToken.delete(leg.token)
      this.unbind(leg)
      if (report == null && leg.path != null) report = { path: leg.path, switches: leg.switches }
    }
    return report
  }

  /** The media path of a call now (first leg with one), for tests and the status page. */
  pathOf (callId: string): MediaPath | undefined {
    return this.byCall.get(callId)?.find(l => l.path != null)?.path
  }

  /** The stream rung for a peer: direct or relayed connection. */
  private streamPath (peer: string): MediaPath {
    const c = this.components.p2p.connectionTo?.(peer)
    return c == null || c.direct ? 'stream-direct' : 'stream-relayed'
  }

  private setPath (leg: Leg, path: MediaPath): void {
    if (leg.path === path) return
    leg.path = path
    if (leg.switches.length < 64) leg.switches.push({ at: Date.now(), path })
  }

  /** The data channel with `peer` became (or stopped being) the carrier: every bound leg with it follows. */
  private switched (peer: string, active: boolean): void {
    const legs = this.byPeer.get(peer)
    if (legs == null) return
    const path = active ? 'datachannel' : this.streamPath(peer)
    this.components.logger?.info({ peer, path, legs: legs.ours.size + legs.theirs.size }, 'media path switched')
    for (const leg of [...legs.ours.values(), ...legs.theirs.values()]) {
      if (leg.link != null || active) this.setPath(leg, path)
      // a leg that lost its stream and rode on the data channel alone: without it, it needs a stream again
      else if (!leg.ended && this.running) this.recover(leg)
    }
  }

  /** A media frame from the data channel: the kind's opener bit says whose stream numbered its channel. */
  private deliverDirect (peer: string, frame: Buffer): void {
    const kind = frame[2]!
    if ((kind & ~(KIND_RTCP | KIND_INDEX | KIND_OPENER)) !== 0) return
    const legs = this.byPeer.get(peer)
    const channel = frame.readUInt16BE(3)
    const leg = (kind & KIND_OPENER) !== 0 ? legs?.theirs.get(channel) : legs?.ours.get(channel)
    if (leg == null || frame.length <= HEADER) return
    this.received++
    leg.heard = true
    // copy: the relay may hand the packet to a socket after this callback
    leg.attached?.receive(Buffer.from(frame.subarray(HEADER)), kind & KIND_INDEX, (kind & KIND_RTCP) !== 0)
  }

  private add (leg: Leg): void {
    this.byToken.set(leg.token, leg)
    const list = this.byCall.get(leg.callId)
    if (list == null) this.byCall.set(leg.callId, [leg])
    else list.push(leg)
  }

  private async open (leg: Leg): Promise<void> {
    const link = await this.outboundLink(leg.peer)
    if (link == null || leg.ended || !this.running) {
      if (link != null && link.channels.size === 0) this.closeLink(link)
      return
    }
    if (link.channels.size >= MAX_CHANNELS) {
      this.components.logger?.warn({ callId: leg.callId, peer: leg.peer }, 'no free media channel on the stream')
      return
    }
    let channel = link.nextChannel
    while (link.channels.has(channel)) channel = (channel + 1) % MAX_CHANNELS
    link.nextChannel = (channel + 1) % MAX_CHANNELS
    const token = Buffer.from(leg.token, 'ascii')
    const hello = Buffer.allocUnsafe(HEADER + token.length)
    hello.writeUInt16BE(token.length, 0)
    hello[2] = KIND_HELLO
    hello.writeUInt16BE(channel, 3)
    token.copy(hello, HEADER)
    this.enqueue(link, hello)
    this.bind(leg, link, channel)
  }

  /** Our open stream to `peer`, or a new one (one dial at a time per peer). */
  private async outboundLink (peer: string): Promise<Link | undefined> {
    const open = this.outbound.get(peer)
    if (open != null && !open.closed) return open
    let p = this.dialing.get(peer)
    if (p == null) {
      p = (async () => {
        let stream: PacketStream
        try {
          stream = await this.components.p2p.dialStream(peer, RTP_PROTOCOL, { signal: AbortSignal.timeout(this.timeoutMs) })
        } catch (err) {
          this.components.logger?.warn({ err, peer }, 'cannot open media stream')
          return undefined
        }
        if (!this.running) { stream.abort(new Error('stopped')); return undefined }
        const link = this.newLink(peer, stream, true)
        this.outbound.set(peer, link)
        this.consume(link, (kind, channel, payload) => {
          if (kind === KIND_HELLO) throw new RefusedError('bad-kind', 'hello from the accepting side')
          this.deliver(link, kind, channel, payload)
        })
        return link
      })().finally(() => this.dialing.delete(peer))
      this.dialing.set(peer, p)
    }
    return await p
  }

  /** An inbound stream: hellos name tokens we gave this very peer; until the first good one, a timer runs. */
  private accept (stream: PacketStream, peer: string): void {
    if (!this.running) { stream.abort(new Error('not running')); return }
    const link = this.newLink(peer, stream, false)
    let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(() => {
      this.refused?.inc({ reason: 'no-hello' })
      this.components.logger?.warn({ peer }, 'media stream without a valid hello: closed')
      this.closeLink(link, new Error('no valid hello'))
    }, this.timeoutMs)
    this.consume(link, (kind, channel, payload) => {
      if (kind !== KIND_HELLO) { this.deliver(link, kind, channel, payload); return }
      const found = this.byToken.get(payload.toString('latin1'))
      if (found == null || found.ended) {
        // a call that just ended (CANCEL, BYE) or a token never given: the hello is ignored, the stream stays
        this.refused?.inc({ reason: 'unknown-token' })
        this.components.logger?.debug({ peer }, 'media hello for no live call')
        return
      }
      // the channel must come from the peer our SIP leg for that call talks to, and only once
      if (found.peer !== peer) throw new RefusedError('wrong-peer', 'token of another peer\'s call')
      if (found.link === link || link.channels.has(channel)) throw new RefusedError('duplicate', 'call leg or channel already bound')
      if (timer != null) { clearTimeout(timer); timer = undefined }
      // the peer opened a new stream for a leg bound to an older one (its connection died first on that side): move it
      if (found.link != null) this.leave(found)
      this.bind(found, link, channel)
    }, () => { if (timer != null) clearTimeout(timer) })
  }

  private newLink (peer: string, stream: PacketStream, outbound: boolean): Link {
    const link: Link = { peer, stream, outbound, channels: new Map(), nextChannel: 0, pending: [], scheduled: false, congested: false, closed: false }
    this.links.add(link)
    return link
  }

  /**
   * Binds the leg to a channel of the link: packets of its relay side become frames on it. The relay side is attached
   * once per leg; a leg moved to a new stream keeps it (frames go wherever the leg's channel is now).
   */
  private bind (leg: Leg, link: Link, channel: number): void {
    if (leg.lost != null) { clearTimeout(leg.lost); leg.lost = undefined }
    leg.link = link
    this.setChannel(leg, link.outbound, channel)
    link.channels.set(channel, leg)
    const direct = this.direct
    // a leg moved to a new stream gets its path set again (a relay lost may have left a direct connection, or none)
    this.setPath(leg, direct?.isActive(link.peer) === true ? 'datachannel' : this.streamPath(link.peer))
    direct?.want(link.peer)
    if (leg.attached != null) return
    const max = this.maxPacket
    const peer = leg.peer
    const packetLink: PacketLink = {
      send: (packet, index, rtcp) => {
        const channel = leg.channel
        if (packet.length > max || leg.ended || channel == null) return
        const to = leg.link
        const onStream = to != null && !to.closed
        // no carrier for now (stream lost, being recovered, no data channel): dropped, never sent anywhere else
        if (!onStream && direct?.isActive(peer) !== true) return
        const frame = Buffer.allocUnsafe(HEADER + packet.length)
        frame.writeUInt16BE(packet.length, 0)
        const kind = (rtcp ? KIND_RTCP : 0) | (index & KIND_INDEX)
        frame.writeUInt16BE(channel, 3)
        frame.set(packet, HEADER)
        this.sent++
        // the data channel, when it is the carrier, takes the leg under its last channel, stream lost or not
        if (direct != null && leg.ours != null) {
          frame[2] = kind | (leg.ours ? KIND_OPENER : 0)
          if (direct.send(peer, frame)) return
        }
        if (!onStream) return
        frame[2] = kind
        this.enqueue(to, frame)
      }
    }
    try {
      leg.attached = this.components.relay.attach(leg.callId, leg.side, packetLink)
    } catch (err) {
      // the call's media is gone already
      this.components.logger?.debug({ err, callId: leg.callId }, 'media channel for a call without media')
      leg.ended = true
      this.unbind(leg)
    }
  }

  /**
   * The leg lets go of its relay side, its channel and its place on the data channel; an outbound stream left without
   * channels closes, and a peer left without legs loses its direct path.
   */
  private unbind (leg: Leg): void {
    leg.attached?.detach()
    leg.attached = undefined
    this.leave(leg)
    this.unmapDirect(leg)
  }

  /**
   * The leg leaves its stream's channel (its relay side stays attached, and so does its place on the data channel
   * until it binds anew); an outbound stream left without channels closes.
   */
  private leave (leg: Leg): void {
    const link = leg.link
    if (link == null) return
    leg.link = undefined
    if (leg.channel != null && link.channels.get(leg.channel) === leg) link.channels.delete(leg.channel)
    if (link.channels.size === 0 && link.outbound) this.closeLink(link)
  }

  /**
   * The leg takes `channel` (numbered on a stream we opened when `ours`), where data-channel frames find it too; its
   * previous channel, if any, is let go without touching the direct path.
   */
  private setChannel (leg: Leg, ours: boolean, channel: number): void {
    let legs = this.byPeer.get(leg.peer)
    if (legs == null) this.byPeer.set(leg.peer, legs = { ours: new Map(), theirs: new Map() })
    if (leg.ours != null && leg.channel != null) {
      const old = leg.ours ? legs.ours : legs.theirs
      if (old.get(leg.channel) === leg) old.delete(leg.channel)
    }
    leg.ours = ours
    leg.channel = channel
    ;(ours ? legs.ours : legs.theirs).set(channel, leg)
  }

  /** The leg is gone from the data channel; a peer left with no leg loses its direct path. */
  private unmapDirect (leg: Leg): void {
    const legs = this.byPeer.get(leg.peer)
    if (legs != null && leg.ours != null && leg.channel != null) {
      const map = leg.ours ? legs.ours : legs.theirs
      if (map.get(leg.channel) === leg) map.delete(leg.channel)
    }
    leg.ours = undefined
    if (legs != null && legs.ours.size === 0 && legs.theirs.size === 0) {
      this.byPeer.delete(leg.peer)
      this.direct?.release(leg.peer)
    }
  }

  /**
   * Queues a frame; the queue is written in one go once the current batch of events is handled (setImmediate: the
   * end of this event-loop turn, never a timer). A stream that cannot take more drops frames until it drains: late
   * media is worse than lost media.
   */
  private enqueue (link: Link, frame: Buffer): void {
    if (link.closed) return
    link.pending.push(frame)
    if (link.scheduled) return
    link.scheduled = true
    setImmediate(() => { this.flush(link) })
  }

  private flush (link: Link): void {
    link.scheduled = false
    const frames = link.pending
    link.pending = []
    if (link.closed || frames.length === 0) return
    if (link.congested) {
      // hellos are never dropped: a call would lose its channel for good
      const hellos = frames.filter(f => f[2] === KIND_HELLO)
      if (hellos.length === 0) return
      frames.length = 0
      frames.push(...hellos)
    }
    try {
      if (!link.stream.send(frames.length === 1 ? frames[0]! : Buffer.concat(frames))) {
        link.congested = true
        void link.stream.onDrain().then(() => { link.congested = false }, () => {})
      }
    } catch (err) {
      this.closeLink(link, err)
    }
  }

  /** A packet frame: straight to the relay side bound to its channel; an unknown channel is a call that ended. */
  private deliver (link: Link, kind: number, channel: number, payload: Buffer): void {
    if ((kind & ~(KIND_RTCP | KIND_INDEX)) !== 0) throw new RefusedError('bad-kind', `frame kind ${kind}`)
    this.received++
    const leg = link.channels.get(channel)
    if (leg != null) leg.heard = true
    if (leg != null && payload.length > 0) leg.attached?.receive(payload, kind & KIND_INDEX, (kind & KIND_RTCP) !== 0)
  }

  /**
   * Reads frames as the muxer hands over data, in the same callback (no promise or timer between the connection
   * and the relay), and calls `onFrame` for each. A frame over the cap, or `onFrame` throwing, aborts the stream.
   */
  private consume (link: Link, onFrame: (kind: number, channel: number, payload: Buffer) => void, onEnd?: () => void): void {
    const stream = link.stream
    let buffer: Buffer = EMPTY
    let done = false
    const max = this.maxPacket
    const finish = (err?: unknown): void => {
      if (done) return
      done = true
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      stream.removeEventListener('remoteCloseWrite', onClose)
      if (err instanceof RefusedError) {
        this.refused?.inc({ reason: err.reason })
        this.components.logger?.warn({ err, peer: link.peer, reason: err.reason }, 'media stream from peer refused')
      }
      this.closeLink(link, err)
      try { onEnd?.() } catch {}
    }
    const onMessage = (evt: { data: Uint8Array | { subarray: () => Uint8Array } }): void => {
      if (done) return
      try {
        const bytes = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
        // copy: the relay hands packets straight to a socket, and the muxer may reuse its buffers
        buffer = buffer.length === 0 ? Buffer.from(bytes) : Buffer.concat([buffer, bytes])
        while (buffer.length >= HEADER) {
          const length = buffer.readUInt16BE(0)
          const kind = buffer[2] as number
          if (length > (kind === KIND_HELLO ? 64 : max)) throw new RefusedError('too-large', `frame of ${length} bytes exceeds ${max}`)
          if (buffer.length < HEADER + length) break
          const channel = buffer.readUInt16BE(3)
          const payload = buffer.subarray(HEADER, HEADER + length)
          buffer = buffer.length === HEADER + length ? EMPTY : buffer.subarray(HEADER + length)
          onFrame(kind, channel, payload)
        }
      } catch (err) {
        finish(err)
      }
    }
    const onClose = (): void => { finish() }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    stream.addEventListener('remoteCloseWrite', onClose)
  }

  /**
   * A live leg lost its stream. The side that opened the channel dials the peer again (libp2p takes any path still
   * there) and names the token anew, when packets had come on it; the other side waits for that hello. Neither
   * waits longer than `recoverMs`.
   */
  private recover (leg: Leg): void {
    if (leg.lost != null) return
    this.components.logger?.info({ callId: leg.callId, peer: leg.peer }, 'media stream lost, recovering')
    const deadline = Date.now() + this.recoverMs
    leg.lost = setTimeout(() => {
      leg.lost = undefined
      if (leg.ended || leg.link != null || !this.running) return
      // the data channel carries it still: the call goes on there (losing that carrier starts a recovery again)
      if (this.direct?.isActive(leg.peer) === true && leg.ours != null) {
        this.components.logger?.info({ callId: leg.callId, peer: leg.peer }, 'media stream not recovered: data channel only')
        return
      }
      this.components.logger?.warn({ callId: leg.callId, peer: leg.peer }, 'media stream lost for good')
      this.dispatchEvent(new CustomEvent('media:lost', { detail: { callId: leg.callId, peer: leg.peer } }))
    }, this.recoverMs)
    leg.lost.unref?.()
    // a channel the far end never answered on (refused, or no media yet) is not forced on it again
    if (leg.opener !== true || leg.heard !== true) return
    leg.heard = false
    void (async () => {
      while (!leg.ended && leg.link == null && this.running && Date.now() < deadline) {
        await this.open(leg)
        if (leg.link != null || leg.ended) return
        await new Promise(resolve => setTimeout(resolve, 500).unref())
      }
    })().catch(err => this.components.logger?.debug({ err, callId: leg.callId }, 'media stream recovery failed'))
  }

  /** Closes a stream (aborts it on error); its legs lose their channel (their media stops). */
  private closeLink (link: Link, err?: unknown): void {
    if (link.closed) return
    link.closed = true
    this.links.delete(link)
    if (this.outbound.get(link.peer) === link) this.outbound.delete(link.peer)
    link.pending = []
    const orphans = [...link.channels.values()]
    link.channels.clear()
    for (const leg of orphans) {
      leg.link = undefined
      // live calls lose only this stream: they get a new one (over another path: the other relay, a direct
      // connection) or are reported lost. Their relay side stays attached meanwhile, so that its packets are
      // dropped rather than sent to the far relay's SDP address, which means nothing here (and may be our own).
      if (this.running && !leg.ended) this.recover(leg)
      else {
        leg.attached?.detach()
        leg.attached = undefined
        this.unmapDirect(leg)
      }
    }
    const stream = link.stream
    if (err != null) stream.abort(err instanceof Error ? err : new Error(String(err)))
    else void stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('close timed out')) })
  }
}

/** A stream refused for a reason the metrics count. */
class RefusedError extends Error {
  constructor (readonly reason: string, message: string) { super(message) }
}


/** The `a=m1-rtp` token of an SDP body, if any. */
export function tokenOf (sdp: string): string | undefined {
  const m = /^a=m1-rtp:([A-Za-z0-9_-]{16,64})\s*$/m.exec(sdp)
  return m?.[1]
}

/** The SDP without any `a=m1-rtp` line (what a phone gets). */
export function withoutToken (sdp: string): string {
  return sdp.replace(/^a=m1-rtp:[^\r\n]*(\r?\n|$)/gm, '')
}

/** The SDP with `a=m1-rtp:<token>` as its last session-level line (before the first m=). */
export function withToken (sdp: string, token: string): string {
  const clean = withoutToken(sdp)
  const eol = clean.includes('\r\n') ? '\r\n' : '\n'
  const line = `a=${RTP_SDP_ATTRIBUTE}:${token}${eol}`
  const m = /^m=/m.exec(clean)
  if (m == null) return clean.endsWith(eol) || clean === '' ? clean + line : clean + eol + line
  return clean.slice(0, m.index) + line + clean.slice(m.index)
}
