import { describe, it, expect } from 'vitest'
import { parseVia, formatVia, stampVia, parseMessage, serialize, SipParseError, type SipRequest } from '../../../../src/sip/message/index.js'
import { msg } from './fixtures.js'

function request (via: string): SipRequest {
  return parseMessage(msg([
    'OPTIONS sip:bob@example.com SIP/2.0',
    `Via: ${via}`,
    'Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p',
    'To: <sip:bob@example.com>',
    'From: <sip:alice@example.com>;tag=1',
    'Call-ID: c1',
    'CSeq: 1 OPTIONS'
  ])) as SipRequest
}

describe('parseVia / formatVia', () => {
  it('parses lists, LWS, IPv6 and unknown transports', () => {
    const vias = parseVia('SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8  , SIP/2.0/UNKNOWN [2001:db8::9:1]:6050;received=[2001:db8::9:255];rport')
    expect(vias).toEqual([
      { protocol: 'SIP/2.0', transport: 'TCP', host: 'spindle.example.com', port: undefined, params: { branch: 'z9hG4bK9ikj8' } },
      { protocol: 'SIP/2.0', transport: 'UNKNOWN', host: '[2001:db8::9:1]', port: 6050, params: { received: '[2001:db8::9:255]', rport: null } }
    ])
    expect(formatVia(vias[1]!)).toBe('SIP/2.0/UNKNOWN [2001:db8::9:1]:6050;received=[2001:db8::9:255];rport')
    expect(parseVia('sip/2.0/udp Host.Example.COM:5060')[0]).toMatchObject({ protocol: 'SIP/2.0', transport: 'UDP', host: 'host.example.com', port: 5060 })
  })

  it('refuses malformed values', () => {
    for (const s of ['', 'SIP/2.0/UDP', 'SIP/2.0 UDP host', 'SIP/2.0/UDPhost', 'SIP/2.0/UDP host;;', 'SIP/2.0/UDP host,', 'SIP/2.0/UDP host:99999', 'SIP/2.0/UDP [::1', 'SIP/2.0/UDP host;branch=']) {
      expect(() => parseVia(s), s).toThrow(SipParseError)
    }
  })
})

describe('stampVia', () => {
  it('adds received when sent-by differs, and rport when forced (the default)', () => {
    const req = request('SIP/2.0/UDP phone.example.com:5060;branch=z9hG4bK-1')
    stampVia(req, '203.0.113.7', 40000)
    expect(req.vias[0]!.params).toEqual({ branch: 'z9hG4bK-1', rport: '40000', received: '203.0.113.7' })
    expect(req.headers[0]).toEqual({ name: 'Via', value: 'SIP/2.0/UDP phone.example.com:5060;branch=z9hG4bK-1;rport=40000;received=203.0.113.7' })
    // only the top Via changes
    expect(req.headers[1]!.value).toBe('SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p')
    const again = parseMessage(serialize(req))
    expect(again.vias[0]!.params.rport).toBe('40000')
  })

  it('without force: received only when the host differs (RFC 3261 §18.2.1)', () => {
    const same = request('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1')
    stampVia(same, '192.0.2.1', 5060, false)
    expect(same.vias[0]!.params).toEqual({ branch: 'z9hG4bK-1' })
    const other = request('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1')
    stampVia(other, '198.51.100.2', 5060, false)
    expect(other.vias[0]!.params).toEqual({ branch: 'z9hG4bK-1', received: '198.51.100.2' })
  })

  it('fills a bare rport and then always adds received (RFC 3581 §4)', () => {
    const req = request('SIP/2.0/UDP 192.0.2.1:5060;rport;branch=z9hG4bK-1')
    stampVia(req, '192.0.2.1', 5060, false)
    expect(req.vias[0]!.params).toEqual({ rport: '5060', branch: 'z9hG4bK-1', received: '192.0.2.1' })
    expect(req.headers[0]!.value).toBe('SIP/2.0/UDP 192.0.2.1:5060;rport=5060;branch=z9hG4bK-1;received=192.0.2.1')
  })

  it('compares IPv6 sent-by without brackets', () => {
    const req = request('SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK-1')
    stampVia(req, '2001:DB8::1', 5060, false)
    expect(req.vias[0]!.params.received).toBeUndefined()
    stampVia(req, '2001:db8::2', 5062, false)
    expect(req.vias[0]!.params.received).toBe('2001:db8::2')
  })
})
