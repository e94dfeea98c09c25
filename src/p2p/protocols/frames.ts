import type { AbortOptions, MessageStream } from '@libp2p/interface'
import { FrameError } from '../errors.js'

/**
 * Frames of the m1 request/response protocols: an unsigned LEB128 varint length (at most 3 bytes), then that many
 * bytes of UTF-8 JSON holding one object. Readers refuse frames above their cap before buffering them.
 */

/** Default largest frame, in bytes. */
export const MAX_FRAME_BYTES = 64 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes one object as a length-prefixed JSON frame. */
export function encodeFrame (value: Record<string, unknown>, maxBytes = MAX_FRAME_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(value))
  if (body.length > maxBytes) throw new FrameError(`frame of ${body.length} bytes exceeds ${maxBytes}`)
  const head: number[] = []
  let n = body.length
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n > 0) b |= 0x80
    head.push(b)
  } while (n > 0)
  const out = new Uint8Array(head.length + body.length)
  out.set(head, 0)
  out.set(body, head.length)
  return out
}

/** Decodes the JSON body of a frame; it must be an object. */
export function decodeFrameBody (body: Uint8Array): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(body))
  } catch {
    throw new FrameError('frame is not UTF-8 JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new FrameError('frame is not a JSON object')
  return value as Record<string, unknown>
}

type Chunk = Uint8Array | { subarray: () => Uint8Array }

/** Reads frames one after another from a stream (its async iterator), without reading past what a frame needs. */
export class FrameReader {
  private readonly source: AsyncIterator<Chunk>
  private buffer: Uint8Array = new Uint8Array(0)

  constructor (stream: AsyncIterable<Chunk>, private readonly maxBytes = MAX_FRAME_BYTES) {
    this.source = stream[Symbol.asyncIterator]()
  }

  /** The next frame, or undefined when the stream ended cleanly between frames. */
  async read (options: AbortOptions = {}): Promise<Record<string, unknown> | undefined> {
    let length = -1
    let headLength = 0
    for (;;) {
      if (length < 0) {
        const parsed = readVarint(this.buffer)
        if (parsed === 'short') {
          if (this.buffer.length >= 3) throw new FrameError('frame length prefix longer than 3 bytes')
        } else {
          length = parsed.value
          headLength = parsed.bytes
          if (length > this.maxBytes) throw new FrameError(`frame of ${length} bytes exceeds ${this.maxBytes}`)
        }
      }
      if (length >= 0 && this.buffer.length >= headLength + length) {
        const body = this.buffer.subarray(headLength, headLength + length)
        this.buffer = this.buffer.subarray(headLength + length)
        return decodeFrameBody(body)
      }
      const chunk = await this.next(options)
      if (chunk == null) {
        if (this.buffer.length === 0 && length < 0) return undefined
        throw new FrameError('stream ended inside a frame')
      }
      this.buffer = concat(this.buffer, chunk)
    }
  }

  private async next (options: AbortOptions): Promise<Uint8Array | undefined> {
    const signal = options.signal
    signal?.throwIfAborted()
    const step = this.source.next()
    let onAbort: (() => void) | undefined
    const result = signal == null
      ? await step
      : await Promise.race([step, new Promise<never>((_resolve, reject) => {
        onAbort = () => { reject(signal.reason ?? new Error('aborted')) }
        signal.addEventListener('abort', onAbort, { once: true })
      })]).finally(() => { if (onAbort != null) signal.removeEventListener('abort', onAbort) })
    if (result.done === true) return undefined
    const v = result.value
    return v instanceof Uint8Array ? v : v.subarray()
  }
}

/** Writes one frame, waiting for the stream to drain when its buffer is full. */
export async function writeFrame (stream: Pick<MessageStream, 'send' | 'onDrain'>, value: Record<string, unknown>, options: AbortOptions & { maxBytes?: number } = {}): Promise<void> {
  const bytes = encodeFrame(value, options.maxBytes)
  if (!stream.send(bytes)) await stream.onDrain(options)
}

function readVarint (buf: Uint8Array): { value: number, bytes: number } | 'short' {
  let value = 0
  for (let i = 0; i < Math.min(buf.length, 3); i++) {
    const b = buf[i]!
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) return { value, bytes: i + 1 }
  }
  return 'short'
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}
