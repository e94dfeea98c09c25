import { describe, it, expect } from 'vitest'
import { StreamFramer, readContentLength, type StreamFramerInit } from '../../../../src/sip/transport/framer.js'

function request (body = '', headers = ''): string {
  return 'REGISTER sip:example.test SIP/2.0\r\n' +
    'Via: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK1\r\n' +
    'Call-ID: a@b\r\n' +
    headers +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` + body
}

function collect (init: StreamFramerInit = {}): { framer: StreamFramer, messages: string[], pings: number[], errors: string[] } {
  const messages: string[] = []
  const pings: number[] = []
  const errors: string[] = []
  const framer = new StreamFramer({
    onMessage: (m) => { messages.push(m.toString('latin1')) },
    onPing: () => { pings.push(messages.length) },
    onError: (r) => { errors.push(r) }
  }, init)
  return { framer, messages, pings, errors }
}

describe('StreamFramer', () => {
  it('emits one message from one chunk without copying', () => {
    const chunk = Buffer.from(request('hello'))
    let got: Buffer | undefined
    const framer = new StreamFramer({ onMessage: (m) => { got = m }, onPing: () => {}, onError: () => {} })
    framer.push(chunk)
    expect(got?.toString()).toBe(request('hello'))
    expect(got?.buffer).toBe(chunk.buffer)
    expect(framer.buffered).toBe(0)
  })

  it('frames the same stream split at every byte boundary', () => {
    const stream = request('v=0\r\n', 'Supported: path\r\n') + '\r\n\r\n' + request() + '\r\n' + request('x'.repeat(300))
    const expected = [request('v=0\r\n', 'Supported: path\r\n'), request(), request('x'.repeat(300))]
    const bytes = Buffer.from(stream)
    for (let cut = 1; cut < bytes.length; cut++) {
      const { framer, messages, pings, errors } = collect()
      framer.push(Buffer.from(bytes.subarray(0, cut)))
      framer.push(Buffer.from(bytes.subarray(cut)))
      expect(errors).toEqual([])
      expect(messages).toEqual(expected)
      expect(pings).toEqual([1])
    }
  })

  it('frames a stream fed one byte at a time', () => {
    const stream = Buffer.from(request('abc') + request('body\r\n\r\nwith blank line') + '\r\n\r\n')
    const { framer, messages, pings, errors } = collect()
    for (const b of stream) framer.push(Buffer.from([b]))
    expect(errors).toEqual([])
    expect(messages).toEqual([request('abc'), request('body\r\n\r\nwith blank line')])
    expect(pings).toEqual([2])
    expect(framer.buffered).toBe(0)
  })

  it('emits several messages from one chunk, in order', () => {
    const { framer, messages } = collect()
    framer.push(Buffer.from(request('1') + request('22') + request('333')))
    expect(messages).toEqual([request('1'), request('22'), request('333')])
  })

  it('keeps a trailing partial message until the rest arrives', () => {
    const { framer, messages } = collect()
    const whole = request('1') + request('the body')
    framer.push(Buffer.from(whole.slice(0, whole.length - 3)))
    expect(messages).toEqual([request('1')])
    expect(framer.buffered).toBeGreaterThan(0)
    framer.push(Buffer.from(whole.slice(-3)))
    expect(messages).toEqual([request('1'), request('the body')])
  })

  it('reports CRLFCRLF as a ping and ignores a lone CRLF', () => {
    const { framer, messages, pings, errors } = collect()
    framer.push(Buffer.from('\r\n\r\n'))
    expect(pings).toEqual([0])
    framer.push(Buffer.from('\r\n'))
    framer.push(Buffer.from(request()))
    expect(pings).toEqual([0])
    framer.push(Buffer.from('\r\n\r\n\r\n\r\n'))
    expect(pings).toEqual([0, 1, 1])
    expect(messages).toHaveLength(1)
    expect(errors).toEqual([])
  })

  it('reports a ping split across chunks', () => {
    const { framer, pings } = collect()
    framer.push(Buffer.from('\r'))
    framer.push(Buffer.from('\n\r'))
    expect(pings).toEqual([])
    framer.push(Buffer.from('\n'))
    expect(pings).toEqual([0])
  })

  it('accepts the compact form l, any case and folded values', () => {
    const { framer, messages, errors } = collect()
    const m1 = 'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nl: 3\r\n\r\nabc'
    const m2 = 'OPTIONS sip:a@b SIP/2.0\r\nCONTENT-LENGTH   :   2\r\n\r\nde'
    const m3 = 'OPTIONS sip:a@b SIP/2.0\r\ncontent-length:\r\n   4\r\nCall-ID: y\r\n\r\nfghi'
    framer.push(Buffer.from(m1 + m2 + m3))
    expect(errors).toEqual([])
    expect(messages).toEqual([m1, m2, m3])
  })

  it('does not take a header that merely ends in l for Content-Length', () => {
    expect(readContentLength('INVITE sip:a SIP/2.0\r\nURL: 7\r\nContent-Length: 0\r\n\r\n')).toBe(0)
    expect(readContentLength('INVITE sip:a SIP/2.0\r\nX-Content-Length: 7\r\nl: 1\r\n\r\n')).toBe(1)
  })

  it('tolerates bare LF line ends', () => {
    const { framer, messages } = collect()
    const m = 'OPTIONS sip:a@b SIP/2.0\nCall-ID: x\nContent-Length: 2\n\nok'
    framer.push(Buffer.from(m))
    expect(messages).toEqual([m])
  })

  it('reports a missing Content-Length once and then ignores input', () => {
    const { framer, messages, errors } = collect()
    framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n'))
    framer.push(Buffer.from(request()))
    expect(errors).toEqual(['missing Content-Length'])
    expect(messages).toEqual([])
    expect(framer.closed).toBe(true)
  })

  it('refuses invalid and conflicting Content-Length values', () => {
    for (const [value, reason] of [['abc', 'invalid Content-Length'], ['-1', 'invalid Content-Length'], ['1 2', 'invalid Content-Length'], ['', 'invalid Content-Length']]) {
      const { framer, errors } = collect()
      framer.push(Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\nContent-Length: ${value}\r\n\r\n`))
      expect(errors).toEqual([reason])
    }
    const { framer, errors } = collect()
    framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 2\r\n\r\nab'))
    expect(errors).toEqual(['conflicting Content-Length'])
    expect(readContentLength('A\r\nContent-Length: 2\r\nl: 2\r\n\r\n')).toBe(2)
  })

  it('refuses a body larger than maxBodyBytes before buffering it', () => {
    const { framer, errors, messages } = collect({ maxBodyBytes: 100 })
    framer.push(Buffer.from('MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 101\r\n\r\n'))
    expect(errors).toEqual(['body too large'])
    expect(messages).toEqual([])
    const ok = collect({ maxBodyBytes: 100 })
    ok.framer.push(Buffer.from(request('x'.repeat(100))))
    expect(ok.messages).toHaveLength(1)
  })

  it('refuses headers larger than maxHeaderBytes, found or not', () => {
    const a = collect({ maxHeaderBytes: 256 })
    a.framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n' + 'X: y\r\n'.repeat(100)))
    expect(a.errors).toEqual(['headers too large'])
    const b = collect({ maxHeaderBytes: 256 })
    b.framer.push(Buffer.from(request('', 'X-Pad: ' + 'p'.repeat(300) + '\r\n')))
    expect(b.errors).toEqual(['headers too large'])
    const c = collect({ maxHeaderBytes: 256 })
    for (let i = 0; i < 100; i++) c.framer.push(Buffer.from('X: y\r\n'))
    expect(c.errors).toEqual(['headers too large'])
    expect(c.framer.buffered).toBe(0)
  })

  it('grows linearly when a large body arrives in small chunks', () => {
    const body = 'b'.repeat(512 * 1024)
    const stream = Buffer.from(request(body) + request('after'))
    const { framer, messages, errors } = collect()
    const started = performance.now()
    for (let i = 0; i < stream.length; i += 1000) framer.push(stream.subarray(i, i + 1000))
    expect(errors).toEqual([])
    expect(messages).toEqual([request(body), request('after')])
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('does not corrupt messages already handed out when more data arrives', () => {
    const got: Buffer[] = []
    const framer = new StreamFramer({ onMessage: (m) => { got.push(m) }, onPing: () => {}, onError: () => {} })
    const a = request('first')
    const b = request('second')
    const c = request('third')
    const all = Buffer.from(a + b + c)
    // first chunk ends inside message a, so later bytes land in the framer's own buffer
    framer.push(all.subarray(0, 10))
    framer.push(all.subarray(10, a.length + 5))
    framer.push(all.subarray(a.length + 5, a.length + b.length + 7))
    framer.push(all.subarray(a.length + b.length + 7))
    expect(got.map(m => m.toString())).toEqual([a, b, c])
  })

  it('survives random garbage without throwing', () => {
    let seed = 42
    const rand = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
    for (let round = 0; round < 200; round++) {
      const { framer } = collect({ maxHeaderBytes: 1024, maxBodyBytes: 1024 })
      for (let i = 0; i < 20; i++) {
        const len = rand() % 200
        const chunk = Buffer.alloc(len)
        for (let j = 0; j < len; j++) chunk[j] = [13, 10, 58, 108, 48 + (rand() % 10), rand() % 256][rand() % 6] as number
        expect(() => { framer.push(chunk) }).not.toThrow()
      }
    }
  })
})
