import { randomBytes } from 'node:crypto'
import type { Logger, MetricCounter, Metrics } from '../core/index.js'
import type { AttachedLink, PacketLink, Side } from '../media/index.js'
import type { SipStream } from './p2p-transport.js'

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
const HEADER = 3
const TOKEN_RE = /^[A-Za-z0-9_-]{16,64}$/

export interface P2pMediaComponents {
  /** the libp2p node (src/p2p `P2p`), as the SIP transport uses it */
  p2p: {
    handleStreams: (protocol: string, handler: (stream: SipStream, peer: string) => void, options?: { maxInboundStreams?: number }) => Promise<void>
    dialStream: (peer: string, protocol: string, options?: { signal?: AbortSignal }) => Promise<SipStream>
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
  /** Milliseconds to open a stream, and for the hello to arrive on an inbound one. @default 5000 */
  timeoutMs?: number
  /** `/m1/rtp/1.0.0` streams a peer may hold open to us on one connection (one per call leg). @default 4096 */
  maxInboundStreams?: number
}

/** A call leg whose media goes over a stream: the relay side it binds and the one peer allowed to carry it. */
interface Leg {
  token: string
  callId: string
  side: Side
  peer: string
  stream?: SipStream
  attached?: AttachedLink
  ended: boolean
}

/**
 * Carries the media of cross-node call legs on `/m1/rtp/1.0.0` streams, one stream per call leg. The node that sent
 * the INVITE calls {@link expect} (the token goes in its SDP as `a=m1-rtp:<token>`); the node that received it
 * calls {@link connect}, which opens the stream and names the token in its first frame. Only the peer of the call's
 * SIP leg may open it. Each RTP/RTCP packet is one frame, written as soon as the relay hands it over.
 */
export class P2pMediaLinks {
  private readonly byToken = new Map<string, Leg>()
  private readonly byCall = new Map<string, Leg[]>()
  private readonly streams = new Set<SipStream>()
  private readonly maxPacket: number
  private readonly timeoutMs: number
  private running = false
  private sent = 0
  private received = 0
  private readonly refused?: MetricCounter

  constructor (private readonly components: P2pMediaComponents, private readonly init: P2pMediaInit = {}) {
    this.maxPacket = init.maxPacketBytes ?? MAX_RTP_PACKET_BYTES
    this.timeoutMs = init.timeoutMs ?? 5000
    const m = components.metrics
    m?.gauge('m1node_media_p2p_streams', 'Open /m1/rtp/1.0.0 streams', [], () => this.streams.size)
    this.refused = m?.counter('m1node_media_p2p_refused_total', '/m1/rtp/1.0.0 streams refused', ['reason'])
  }

  /** Open `/m1/rtp/1.0.0` streams (for tests and the status page). */
  get size (): number { return this.streams.size }

  /** Packets written to and read from streams since start. */
  totals (): { sent: number, received: number } { return { sent: this.sent, received: this.received } }

  /** Call legs waiting for or holding a stream. */
  get legs (): number { return this.byToken.size }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await this.components.p2p.handleStreams(RTP_PROTOCOL, (stream, peer) => { void this.accept(stream, peer) }, { maxInboundStreams: this.init.maxInboundStreams ?? 4096 })
    } catch (err) {
      this.running = false
      throw err
    }
  }

  async stop (): Promise<void> {
    this.running = false
    await this.components.p2p.unhandle(RTP_PROTOCOL).catch(() => {})
    for (const callId of [...this.byCall.keys()]) this.end(callId)
    for (const s of [...this.streams]) this.closeStream(s)
  }

  /**
   * The SIP leg of call `callId` toward `peer` is ours (we sent the INVITE): relay side `side` will be fed by a stream
   * that `peer` opens naming the returned token (put it in the SDP with {@link withToken}). One token per call leg.
   */
  expect (callId: string, side: Side, peer: string): string {
    const existing = this.byCall.get(callId)?.find(l => l.side === side && l.peer === peer)
    if (existing != null) return existing.token
    const token = randomBytes(18).toString('base64url')
    this.add({ token, callId, side, peer, ended: false })
    return token
  }

  /**
   * The far node of call `callId`'s SIP leg (`peer`) offered media over a stream with `token`: open it and bind relay
   * side `side` to it. Runs in the background; a failure leaves that side silent (the media timeout ends the call).
   */
  connect (callId: string, side: Side, peer: string, token: string): void {
    if (!this.running || !TOKEN_RE.test(token)) return
    const existing = this.byToken.get(token)
    if (existing != null) return
    const leg: Leg = { token, callId, side, peer, ended: false }
    this.add(leg)
    void this.open(leg)
  }

  /** The call ended: close its streams, forget its tokens. Idempotent. */
  end (callId: string): void {
    const legs = this.byCall.get(callId)
    if (legs == null) return
    this.byCall.delete(callId)
    for (const leg of legs) {
      leg.ended = true
      this.byToken.delete(leg.token)
      leg.attached?.detach()
      if (leg.stream != null) this.closeStream(leg.stream)
    }
  }

  private add (leg: Leg): void {
    this.byToken.set(leg.token, leg)
    const list = this.byCall.get(leg.callId)
    if (list == null) this.byCall.set(leg.callId, [leg])
    else list.push(leg)
  }

  private async open (leg: Leg): Promise<void> {
    let stream: SipStream
    try {
      stream = await this.components.p2p.dialStream(leg.peer, RTP_PROTOCOL, { signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (err) {
      this.components.logger?.warn({ err, callId: leg.callId, peer: leg.peer }, 'cannot open media stream')
      return
    }
    if (leg.ended || !this.running) { stream.abort(new Error('call ended')); return }
    this.streams.add(stream)
    const token = Buffer.from(leg.token, 'ascii')
    const hello = Buffer.allocUnsafe(HEADER + token.length)
    hello.writeUInt16BE(token.length, 0)
    hello[2] = KIND_HELLO
    token.copy(hello, HEADER)
    try {
      stream.send(hello)
    } catch (err) {
      this.closeStream(stream, err)
      return
    }
    this.bind(leg, stream)
    await this.read(leg, stream, Buffer.alloc(0))
  }

  /** An inbound stream: its first frame must name a token we expect from this very peer. */
  private async accept (stream: SipStream, peer: string): Promise<void> {
    if (!this.running) { stream.abort(new Error('not running')); return }
    this.streams.add(stream)
    const timer = setTimeout(() => { this.closeStream(stream, new Error('no hello')) }, this.timeoutMs)
    let leg: Leg | undefined
    let rest: Buffer = Buffer.alloc(0)
    try {
      const it = stream[Symbol.asyncIterator]()
      let buffer: Buffer = Buffer.alloc(0)
      while (leg == null) {
        const next = await it.next()
        if (next.done === true) throw new Error('stream ended before its hello')
        buffer = append(buffer, next.value)
        if (buffer.length < HEADER) continue
        const length = buffer.readUInt16BE(0)
        if (buffer[2] !== KIND_HELLO || length > 64) throw new RefusedError('bad-hello', 'first frame is not a hello')
        if (buffer.length < HEADER + length) continue
        const token = buffer.subarray(HEADER, HEADER + length).toString('latin1')
        rest = buffer.subarray(HEADER + length)
        const found = this.byToken.get(token)
        // the stream must come from the peer our SIP leg for that call talks to, and only once
        if (found == null || found.ended) throw new RefusedError('unknown-token', 'unknown token')
        if (found.peer !== peer) throw new RefusedError('wrong-peer', 'token of another peer\'s call')
        if (found.stream != null) throw new RefusedError('duplicate', 'call leg already has a stream')
        leg = found
      }
      clearTimeout(timer)
      this.bind(leg, stream)
      await this.read(leg, stream, rest, it)
    } catch (err) {
      clearTimeout(timer)
      const reason = err instanceof RefusedError ? err.reason : 'bad-hello'
      this.refused?.inc({ reason })
      this.components.logger?.warn({ err, peer, reason }, 'media stream refused')
      this.closeStream(stream, err)
    }
  }

  /** Binds the leg's relay side to the stream: packets for that side become frames on it, written at once. */
  private bind (leg: Leg, stream: SipStream): void {
    leg.stream = stream
    let congested = false
    const max = this.maxPacket
    const link: PacketLink = {
      send: (packet, index, rtcp) => {
        // real time: a packet that cannot go now is dropped, never queued behind a congested stream
        if (congested || packet.length > max || leg.ended) return
        const frame = Buffer.allocUnsafe(HEADER + packet.length)
        frame.writeUInt16BE(packet.length, 0)
        frame[2] = (rtcp ? KIND_RTCP : 0) | (index & KIND_INDEX)
        frame.set(packet, HEADER)
        try {
          this.sent++
          if (!stream.send(frame)) {
            congested = true
            void stream.onDrain().then(() => { congested = false }, () => {})
          }
        } catch {
          congested = true
        }
      }
    }
    try {
      leg.attached = this.components.relay.attach(leg.callId, leg.side, link)
    } catch (err) {
      // the call's media is gone already
      this.components.logger?.debug({ err, callId: leg.callId }, 'media stream for a call without media')
      leg.ended = true
      this.closeStream(stream)
    }
  }

  /** Reads packet frames until the stream ends; a frame over the cap or of an unknown kind aborts it. */
  private async read (leg: Leg, stream: SipStream, initial: Buffer, iterator?: AsyncIterator<Uint8Array | { subarray: () => Uint8Array }>): Promise<void> {
    let buffer: Buffer = initial
    const max = this.maxPacket
    const deliver = (): void => {
      while (buffer.length >= HEADER) {
        const length = buffer.readUInt16BE(0)
        const kind = buffer[2] as number
        if (length > max) throw new RefusedError('too-large', `frame of ${length} bytes exceeds ${max}`)
        if ((kind & ~(KIND_RTCP | KIND_INDEX)) !== 0) throw new RefusedError('bad-kind', `frame kind ${kind}`)
        if (buffer.length < HEADER + length) break
        const packet = buffer.subarray(HEADER, HEADER + length)
        buffer = buffer.subarray(HEADER + length)
        this.received++
        if (length > 0) leg.attached?.receive(packet, kind & KIND_INDEX, (kind & KIND_RTCP) !== 0)
      }
    }
    try {
      deliver()
      const it = iterator ?? stream[Symbol.asyncIterator]()
      for (;;) {
        const next = await it.next()
        if (next.done === true) break
        buffer = append(buffer, next.value)
        deliver()
      }
      if (!leg.ended) this.components.logger?.debug({ callId: leg.callId, peer: leg.peer }, 'media stream ended by peer')
      this.closeStream(stream)
    } catch (err) {
      if (!leg.ended && err instanceof RefusedError) {
        this.refused?.inc({ reason: err.reason })
        this.components.logger?.warn({ err, callId: leg.callId, peer: leg.peer }, 'media stream from peer refused')
      }
      this.closeStream(stream, err)
    } finally {
      if (leg.stream === stream) {
        leg.attached?.detach()
        leg.attached = undefined
      }
    }
  }

  private closeStream (stream: SipStream, err?: unknown): void {
    if (!this.streams.delete(stream)) return
    if (err != null) stream.abort(err instanceof Error ? err : new Error(String(err)))
    else void stream.close({ signal: AbortSignal.timeout(1000) }).catch(() => { stream.abort(new Error('close timed out')) })
  }
}

/** A stream refused for a reason the metrics count. */
class RefusedError extends Error {
  constructor (readonly reason: string, message: string) { super(message) }
}

function append (buffer: Buffer, chunk: Uint8Array | { subarray: () => Uint8Array }): Buffer {
  const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
  // copy: the stream may reuse its buffers, and the relay hands packets straight to a socket
  return buffer.length === 0 ? Buffer.from(bytes) : Buffer.concat([buffer, bytes])
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
