import { randomBytes } from 'node:crypto'
import type { Logger, MetricCounter, Metrics } from '../core/index.js'
import type { AttachedLink, PacketLink, Side } from '../media/index.js'

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

export interface P2pMediaComponents {
  /** the libp2p node (src/p2p `P2p`), as the SIP transport uses it */
  p2p: {
    handleStreams: (protocol: string, handler: (stream: PacketStream, peer: string) => void, options?: { maxInboundStreams?: number, maxOutboundStreams?: number }) => Promise<void>
    dialStream: (peer: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<PacketStream>
    unhandle: (protocol: string) => Promise<void>
  }
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
  /** we opened its channel ({@link P2pMediaLinks.connect}): we dial again when the stream goes */
  opener?: boolean
  /** a packet came on its channel: the far end took it (a refused channel is not dialled again) */
  heard?: boolean
  /** running while the leg waits for a new stream after losing one */
  lost?: ReturnType<typeof setTimeout>
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
  }

  /**
   * The SIP leg of call `callId` toward `peer` is ours (we sent the first SDP): relay side `side` will be fed by the
   * channel `peer` opens naming the returned token (put it in the SDP with {@link withToken}). One token per leg.
   */
  expect (callId: string, side: Side, peer: string): string {
    const existing = this.byCall.get(callId)?.find(l => l.side === side && l.peer === peer)
    if (existing != null) return existing.token
    const token = randomBytes(18).toString('base64url')
    this.add({ token, callId, side, peer, ended: false })
    return token
  }

  /**
   * The far node of call `callId`'s SIP leg (`peer`) offered media over `/m1/rtp/1.0.0` with `token`: open a channel
   * on our stream to it and bind relay side `side` to it. Runs in the background; a failure leaves that side silent
   * (the media timeout ends the call).
   */
  connect (callId: string, side: Side, peer: string, token: string): void {
    if (!this.running || !TOKEN_RE.test(token) || this.byToken.has(token)) return
    const leg: Leg = { token, callId, side, peer, ended: false, opener: true }
    this.add(leg)
    void this.open(leg)
  }

  /** The call ended: its channels go, a stream left without channels closes. Idempotent. */
  end (callId: string): void {
    const legs = this.byCall.get(callId)
    if (legs == null) return
    this.byCall.delete(callId)
    for (const leg of legs) {
      leg.ended = true
      if (leg.lost != null) clearTimeout(leg.lost)
      this.byToken.delete(leg.token)
      this.unbind(leg)
    }
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
    leg.channel = channel
    link.channels.set(channel, leg)
    if (leg.attached != null) return
    const max = this.maxPacket
    const packetLink: PacketLink = {
      send: (packet, index, rtcp) => {
        const to = leg.link
        // no stream for now (lost, being recovered): dropped, never sent anywhere else
        if (packet.length > max || leg.ended || to == null || to.closed || leg.channel == null) return
        const frame = Buffer.allocUnsafe(HEADER + packet.length)
        frame.writeUInt16BE(packet.length, 0)
        frame[2] = (rtcp ? KIND_RTCP : 0) | (index & KIND_INDEX)
        frame.writeUInt16BE(leg.channel, 3)
        frame.set(packet, HEADER)
        this.sent++
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

  /** The leg lets go of its relay side and its channel; an outbound stream left without channels closes. */
  private unbind (leg: Leg): void {
    leg.attached?.detach()
    leg.attached = undefined
    this.leave(leg)
  }

  /** The leg leaves its channel (its relay side stays attached); an outbound stream left without channels closes. */
  private leave (leg: Leg): void {
    const link = leg.link
    if (link == null) return
    leg.link = undefined
    if (leg.channel != null && link.channels.get(leg.channel) === leg) link.channels.delete(leg.channel)
    if (link.channels.size === 0 && link.outbound) this.closeLink(link)
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
