/** What a {@link StreamFramer} reports. Callbacks must not throw. */
export interface StreamFramerComponents {
  /** One complete SIP message: start line, headers and exactly Content-Length bytes of body. */
  onMessage(message: Buffer): void
  /** RFC 5626 §3.5.1 keep-alive ping (CRLFCRLF between messages); the transport answers with a CRLF pong. */
  onPing(): void
  /** The stream cannot be framed any more; the transport closes the connection. Reported once. */
  onError(reason: string): void
}

export interface StreamFramerInit {
  /**
   * Largest start line plus headers, including the blank line.
   * @default 65536
   */
  maxHeaderBytes?: number
  /**
   * Largest Content-Length accepted.
   * @default 1048576
   */
  maxBodyBytes?: number
}

const LF = 0x0a
const CR = 0x0d
const MIN_CAPACITY = 4096

// `Content-Length` or compact `l` at the start of a line (so not a folded continuation nor `X-Content-Length`),
// then HCOLON; the value is read by hand so folded lines work.
const CONTENT_LENGTH = /(?:^|\n)(?:content-length|l)[ \t]*:/gi

/**
 * RFC 3261 §18.3 framing of SIP over a byte stream: messages are delimited by the blank line after the headers
 * plus Content-Length bytes of body.
 *
 * Messages are handed out as `subarray`s of the received chunks where they fit in one chunk, so the common case
 * (one or more whole messages per read) copies nothing. Bytes are scanned once: the search for the end of the
 * headers resumes where the previous chunk left off.
 */
export class StreamFramer {
  private readonly components: StreamFramerComponents
  private readonly maxHeaderBytes: number
  private readonly maxBodyBytes: number

  // pending bytes are buf[start, end); `owned` means buf is ours and may be written past `end`
  private buf: Buffer | undefined
  private start = 0
  private end = 0
  private owned = false
  /** bytes of the current message already searched for the end of the headers */
  private scanned = 0
  /** total length of the current message once its headers are parsed, else -1 */
  private need = -1
  /** line feeds seen since the last message: two make a ping */
  private blankLines = 0
  private failed = false

  constructor (components: StreamFramerComponents, init: StreamFramerInit = {}) {
    this.components = components
    this.maxHeaderBytes = init.maxHeaderBytes ?? 65536
    this.maxBodyBytes = init.maxBodyBytes ?? 1048576
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered (): number { return this.end - this.start }

  /** True once an error was reported; later input is ignored. */
  get closed (): boolean { return this.failed }

  /** Feeds bytes read from the stream. The framer keeps `chunk` (or part of it) until the message is complete. */
  push (chunk: Buffer): void {
    if (this.failed || chunk.length === 0) return
    if (this.start === this.end) {
      this.buf = chunk
      this.start = 0
      this.end = chunk.length
      this.owned = false
    } else {
      this.append(chunk)
    }
    this.drain()
  }

  /** Drops buffered bytes and ignores any later input (connection closing). */
  destroy (): void {
    this.failed = true
    this.release()
  }

  private release (): void {
    this.buf = undefined
    this.start = 0
    this.end = 0
    this.owned = false
  }

  private append (chunk: Buffer): void {
    const buf = this.buf as Buffer
    if (this.owned && buf.length - this.end >= chunk.length) {
      chunk.copy(buf, this.end)
      this.end += chunk.length
      return
    }
    // Grow into a fresh buffer; the old one is never written again, so messages already handed out as
    // subarrays of it stay intact.
    const pending = this.end - this.start
    const needed = pending + chunk.length
    const capacity = Math.max(needed, this.need, Math.min(pending * 2, this.maxHeaderBytes + this.maxBodyBytes), MIN_CAPACITY)
    const next = Buffer.allocUnsafe(capacity)
    buf.copy(next, 0, this.start, this.end)
    chunk.copy(next, pending)
    this.buf = next
    this.start = 0
    this.end = needed
    this.owned = true
  }

  private fail (reason: string): void {
    if (this.failed) return
    this.destroy()
    this.components.onError(reason)
  }

  private drain (): void {
    while (!this.failed && this.start < this.end) {
      const buf = this.buf as Buffer
      if (this.need < 0) {
        if (this.scanned === 0 && !this.skipBlankLines(buf)) return
        if (!this.parseHead(buf)) return
      }
      if (this.end - this.start < this.need) return
      const message = buf.subarray(this.start, this.start + this.need)
      this.start += this.need
      this.need = -1
      this.scanned = 0
      this.blankLines = 0
      this.components.onMessage(message)
    }
    if (this.start === this.end && !this.failed) this.release()
  }

  /**
   * RFC 3261 §7.5: CRLFs before a start line are ignored; RFC 5626 §3.5.1: a CRLFCRLF there is a keep-alive ping.
   * Returns false when only line breaks (or half of one) are buffered.
   */
  private skipBlankLines (buf: Buffer): boolean {
    let i = this.start
    const end = this.end
    while (i < end) {
      const b = buf[i]
      if (b === LF) {
        if (++this.blankLines === 2) {
          this.blankLines = 0
          this.components.onPing()
          if (this.failed) return false
        }
      } else if (b !== CR) {
        break
      }
      i++
    }
    this.start = i
    if (i === end) {
      this.release()
      return false
    }
    return true
  }

  /** Finds the blank line ending the headers and reads Content-Length. Returns false when more bytes are needed. */
  private parseHead (buf: Buffer): boolean {
    const end = this.end
    const limit = Math.min(end, this.start + this.maxHeaderBytes)
    // resume one byte early: the previous search may have stopped on the LF of a line end
    let i = this.start + Math.max(0, this.scanned - 1)
    let headEnd = -1
    for (;;) {
      i = buf.indexOf(LF, i)
      if (i === -1 || i >= limit) { i = limit; break }
      // a line end followed by an empty line; a bare LF is tolerated as a line end
      const a = i + 1
      if (a >= end) break
      if (buf[a] === LF) { headEnd = a + 1; break }
      if (buf[a] === CR) {
        if (a + 1 >= end) break
        if (buf[a + 1] === LF) { headEnd = a + 2; break }
      }
      i = a
    }
    if (headEnd === -1) {
      this.scanned = Math.max(1, i - this.start)
      if (end - this.start >= this.maxHeaderBytes) this.fail('headers too large')
      return false
    }
    const headLength = headEnd - this.start
    if (headLength > this.maxHeaderBytes) {
      this.fail('headers too large')
      return false
    }
    const contentLength = readContentLength(buf.toString('latin1', this.start, headEnd))
    if (typeof contentLength === 'string') {
      this.fail(contentLength)
      return false
    }
    if (contentLength > this.maxBodyBytes) {
      this.fail('body too large')
      return false
    }
    this.need = headLength + contentLength
    return true
  }
}

/** The Content-Length of a header block, or the reason it cannot be used. */
export function readContentLength (head: string): number | string {
  let value: number | undefined
  CONTENT_LENGTH.lastIndex = 0
  for (let m = CONTENT_LENGTH.exec(head); m != null; m = CONTENT_LENGTH.exec(head)) {
    let pos = m.index + m[0].length
    let text = ''
    // unfold: the value runs until a line end that is not followed by whitespace
    for (;;) {
      let eol = head.indexOf('\n', pos)
      if (eol === -1) eol = head.length
      text += head.slice(pos, eol)
      const next = head.charCodeAt(eol + 1)
      if (next !== 0x20 && next !== 0x09) break
      pos = eol + 1
    }
    const trimmed = text.trim()
    if (!/^\d{1,10}$/.test(trimmed)) return 'invalid Content-Length'
    const n = Number(trimmed)
    // RFC 4475 §3.1.2.10 (mcl01): several differing values make the message unusable
    if (value !== undefined && value !== n) return 'conflicting Content-Length'
    value = n
  }
  // RFC 3261 §18.3: Content-Length MUST be used with stream-oriented transports
  if (value === undefined) return 'missing Content-Length'
  return value
}
