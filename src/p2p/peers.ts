import type { AbortOptions, Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Logger } from '../core/index.js'
import { FrameError, PeerUnreachableError, RemoteError } from './errors.js'
import { FrameReader, MAX_FRAME_BYTES, writeFrame } from './protocols/frames.js'

/** A request handler: gets one frame and the caller's peer id (from the secured connection), returns one frame. */
export type RequestHandler = (frame: Record<string, unknown>, context: { peer: string, signal: AbortSignal }) => Promise<Record<string, unknown>>

export interface HandleOptions {
  /** @default 8 */
  maxInboundStreams?: number
  /** Milliseconds a request may take, reading included. @default 5000 */
  timeoutMs?: number
  /** @default MAX_FRAME_BYTES (64 KiB) */
  maxFrameBytes?: number
}

export interface RequestOptions extends AbortOptions {
  /** @default MAX_FRAME_BYTES (64 KiB) */
  maxFrameBytes?: number
}

/** Opens a stream to `peer` on `protocol`; limited (relayed) connections are allowed. */
export async function dial (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: string | PeerId, protocol: string, options: AbortOptions = {}): Promise<Stream> {
  const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
  try {
    return await libp2p.dialProtocol(id, protocol, { signal: options.signal, runOnLimitedConnection: true })
  } catch (err) {
    options.signal?.throwIfAborted()
    throw new PeerUnreachableError(id.toString(), { cause: err })
  }
}

/**
 * One request and its answer: dial, write a frame, read a frame, close. An `{ type: 'error' }` answer becomes a
 * RemoteError.
 */
export async function request (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: string | PeerId, protocol: string, frame: Record<string, unknown>, options: RequestOptions = {}): Promise<Record<string, unknown>> {
  const stream = await dial(libp2p, peer, protocol, options)
  try {
    await writeFrame(stream, frame, options)
    const reader = new FrameReader(stream, options.maxFrameBytes ?? MAX_FRAME_BYTES)
    const answer = await reader.read(options)
    if (answer == null) throw new FrameError('stream closed without an answer')
    if (answer.type === 'error') throw new RemoteError(typeof answer.code === 'string' ? answer.code : 'error', typeof answer.message === 'string' ? answer.message.slice(0, 200) : 'remote error')
    await stream.close(options).catch(() => {})
    return answer
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/**
 * Registers a request/response handler. It reads one frame, answers one frame and closes; it never throws: a bad
 * frame gets `{ type: 'error', code: 'bad-request' }`, a handler failure `{ type: 'error', code: 'internal' }` and an
 * error log.
 */
export async function handleRequests (libp2p: Pick<Libp2p, 'handle'>, protocol: string, handler: RequestHandler, logger: Logger | undefined, options: HandleOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 5000
  await libp2p.handle(protocol, (stream: Stream, connection: Connection) => {
    void serve(stream, connection, handler, logger, timeoutMs, options.maxFrameBytes ?? MAX_FRAME_BYTES)
  }, { runOnLimitedConnection: true, maxInboundStreams: options.maxInboundStreams ?? 8 })
}

async function serve (stream: Stream, connection: Connection, handler: RequestHandler, logger: Logger | undefined, timeoutMs: number, maxBytes: number): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs)
  const peer = connection.remotePeer.toString()
  try {
    let answer: Record<string, unknown>
    try {
      const frame = await new FrameReader(stream, maxBytes).read({ signal })
      if (frame == null) throw new FrameError('no request')
      answer = await handler(frame, { peer, signal })
    } catch (err) {
      if (err instanceof FrameError) {
        answer = { type: 'error', code: 'bad-request', message: err.message }
      } else if (err instanceof RemoteError) {
        answer = { type: 'error', code: err.code, message: err.message }
      } else if (signal.aborted) {
        stream.abort(new Error('request timed out'))
        return
      } else {
        logger?.error({ err, peer, protocol: stream.protocol }, 'request handler failed')
        answer = { type: 'error', code: 'internal', message: 'internal error' }
      }
    }
    await writeFrame(stream, answer, { signal })
    await stream.close({ signal })
  } catch (err) {
    logger?.debug({ err, peer }, 'request stream failed')
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}
