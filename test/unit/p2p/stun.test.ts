import { describe, it, expect, afterEach } from 'vitest'
import { createSocket } from 'node:dgram'
import { pino } from 'pino'
import { parseBindingRequest, encodeBindingSuccess, decodeBindingSuccess, StunServer, STUN_MAGIC_COOKIE } from '../../../src/p2p/index.js'
import { isPublicIp, isPublicMultiaddr } from '../../../src/p2p/index.js'

const logger = pino({ level: 'silent' })
const TX = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])

function request (attrs: Uint8Array = new Uint8Array(), opts: { type?: number, cookie?: number, length?: number } = {}): Uint8Array {
  const buf = new Uint8Array(20 + attrs.length)
  const v = new DataView(buf.buffer)
  v.setUint16(0, opts.type ?? 0x0001)
  v.setUint16(2, opts.length ?? attrs.length)
  v.setUint32(4, opts.cookie ?? STUN_MAGIC_COOKIE)
  buf.set(TX, 8)
  buf.set(attrs, 20)
  return buf
}

// RFC 5769 §2.1 sample request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT)
const RFC5769_REQUEST = Buffer.from(
  '000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e74002400046e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a280280004e57a3bcf', 'hex')

// RFC 5769 §2.2 sample IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853
const RFC5769_RESPONSE_ADDR = { address: '192.0.2.1', port: 32853, tx: Buffer.from('b7e7a701bc34d686fa87dfae', 'hex') }

describe('STUN binding (RFC 5389)', () => {
  it('parses a bare binding request', () => {
    expect(parseBindingRequest(request())?.transactionId).toEqual(TX)
  })

  it('parses the RFC 5769 sample request, FINGERPRINT included', () => {
    const r = parseBindingRequest(new Uint8Array(RFC5769_REQUEST))
    expect(r).toBeDefined()
    expect(Buffer.from(r!.transactionId).toString('hex')).toBe('b7e7a701bc34d686fa87dfae')
  })

  it('drops a request whose FINGERPRINT is wrong', () => {
    const bad = Buffer.from(RFC5769_REQUEST)
    bad[bad.length - 1]! ^= 0xff
    expect(parseBindingRequest(new Uint8Array(bad))).toBeUndefined()
  })

  it('drops malformed input', () => {
    expect(parseBindingRequest(new Uint8Array(0))).toBeUndefined()
    expect(parseBindingRequest(new Uint8Array(19))).toBeUndefined()
    expect(parseBindingRequest(request(new Uint8Array(), { type: 0x0101 }))).toBeUndefined() // a response
    expect(parseBindingRequest(request(new Uint8Array(), { type: 0x0003 }))).toBeUndefined() // Allocate
    expect(parseBindingRequest(request(new Uint8Array(), { type: 0xc001 }))).toBeUndefined() // top bits set
    expect(parseBindingRequest(request(new Uint8Array(), { cookie: 0 }))).toBeUndefined() // RFC 3489
    expect(parseBindingRequest(request(new Uint8Array(), { length: 4 }))).toBeUndefined() // length beyond the datagram
    expect(parseBindingRequest(request(new Uint8Array([0, 0x22, 0, 3, 1, 2]), { length: 6 }))).toBeUndefined() // not a multiple of 4
    expect(parseBindingRequest(request(new Uint8Array([0, 0x22, 0, 9, 1, 2, 3, 4])))).toBeUndefined() // attribute overruns
    expect(parseBindingRequest(new Uint8Array(2000))).toBeUndefined()
    expect(parseBindingRequest(new TextEncoder().encode('INVITE sip:a@b SIP/2.0\r\n\r\n'))).toBeUndefined()
  })

  it('never throws on random bytes', () => {
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(Math.random() * 64)
      const buf = new Uint8Array(len).map(() => Math.floor(Math.random() * 256))
      if (len >= 8 && i % 2 === 0) { buf[0] = 0; buf[1] = 1; new DataView(buf.buffer).setUint32(4, STUN_MAGIC_COOKIE) }
      expect(() => parseBindingRequest(buf)).not.toThrow()
    }
  })

  it('encodes XOR-MAPPED-ADDRESS as in the RFC 5769 sample (IPv4)', () => {
    const res = encodeBindingSuccess(new Uint8Array(RFC5769_RESPONSE_ADDR.tx), RFC5769_RESPONSE_ADDR.address, RFC5769_RESPONSE_ADDR.port)
    // RFC 5769 §2.2: 0020 0008 0001 a147 e112a643
    expect(Buffer.from(res.subarray(20)).toString('hex')).toBe('00200008' + '0001a147e112a643')
    expect(decodeBindingSuccess(res)).toEqual({ transactionId: new Uint8Array(RFC5769_RESPONSE_ADDR.tx), address: '192.0.2.1', port: 32853 })
  })

  it('encodes XOR-MAPPED-ADDRESS as in the RFC 5769 sample (IPv6)', () => {
    const res = encodeBindingSuccess(new Uint8Array(RFC5769_RESPONSE_ADDR.tx), '2001:db8:1234:5678:11:2233:4455:6677', 32853)
    // RFC 5769 §2.3: 0020 0014 0002 a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
    expect(Buffer.from(res.subarray(20)).toString('hex')).toBe('00200014' + '0002a1470113a9faa5d3f179bc25f4b5bed2b9d9')
    expect(decodeBindingSuccess(res)?.address).toBe('2001:db8:1234:5678:11:2233:4455:6677')
  })
})

describe('StunServer', () => {
  let server: StunServer | undefined
  afterEach(async () => { await server?.stop(); server = undefined })

  it('answers a binding request with the source address and drops the rest', async () => {
    server = new StunServer({ logger }, { host: '127.0.0.1', port: 0 })
    await server.start()
    const port = server.address()!.port
    const client = createSocket('udp4')
    await new Promise<void>(resolve => client.bind(0, '127.0.0.1', resolve))
    try {
      const got: Buffer[] = []
      client.on('message', (m) => got.push(m))
      client.send(Buffer.from('garbage'), port, '127.0.0.1')
      client.send(request(new Uint8Array(), { type: 0x0101 }), port, '127.0.0.1')
      client.send(request(), port, '127.0.0.1')
      const deadline = Date.now() + 5000
      while (got.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
      await new Promise(resolve => setTimeout(resolve, 100))
      expect(got).toHaveLength(1)
      expect(decodeBindingSuccess(new Uint8Array(got[0]!))).toEqual({ transactionId: TX, address: '127.0.0.1', port: client.address().port })
    } finally {
      client.close()
    }
  })
})

describe('public addresses', () => {
  it('tells public from private, documentation and CGNAT ranges', () => {
    for (const ip of ['11.22.33.1', '8.8.8.8', '2a00:1450::1']) expect(isPublicIp(ip), ip).toBe(true)
    for (const ip of ['10.1.2.3', '127.0.0.1', '172.16.0.1', '192.168.1.1', '100.64.0.1', '192.0.2.1', '198.51.100.1', '203.0.113.9', '198.18.0.1', '169.254.1.1', '0.0.0.0', '::1', 'fd00::1', 'fe80::1', 'nonsense']) expect(isPublicIp(ip), ip).toBe(false)
    expect(isPublicMultiaddr('/ip4/11.22.33.1/tcp/4001')).toBe(true)
    expect(isPublicMultiaddr('/ip4/10.0.0.2/tcp/4001')).toBe(false)
    expect(isPublicMultiaddr('/p2p-circuit')).toBe(false)
  })
})
