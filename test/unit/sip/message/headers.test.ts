import { describe, it, expect } from 'vitest'
import {
  parseMessage, serialize, getHeader, getHeaders, setHeader, addHeader, removeHeader, canonicalHeaderName, splitList,
  parseAuthParams, SipParseError, type SipRequest
} from '../../../../src/sip/message/index.js'
import { REGISTER, msg } from './fixtures.js'

function sample (): SipRequest {
  return parseMessage(msg([
    'OPTIONS sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x',
    'To: <sip:bob@example.com>',
    'From: <sip:alice@example.com>;tag=1',
    'Call-ID: c1',
    'CSeq: 1 OPTIONS',
    'Accept: application/sdp, application/pkcs7-mime,',
    '        multipart/mixed',
    'Contact: "Doe, John" <sip:john@a.example.com>;q=0.1, <sip:john@b.example.com;lr>',
    'm: sip:john@c.example.com',
    'Warning: 399 host "a, b", 370 other "c"',
    'Date: Sat, 13 Nov 2010 23:29:00 GMT'
  ])) as SipRequest
}

describe('header access', () => {
  it('canonicalizes names', () => {
    expect(canonicalHeaderName('v')).toBe('Via')
    expect(canonicalHeaderName('CALL-id')).toBe('Call-ID')
    expect(canonicalHeaderName('www-authenticate')).toBe('WWW-Authenticate')
    expect(canonicalHeaderName('X-Thing')).toBe('X-Thing')
  })

  it('getHeader: first value, any case or compact form', () => {
    const m = sample()
    expect(getHeader(m, 'i')).toBe('c1')
    expect(getHeader(m, 'CONTACT')).toBe('"Doe, John" <sip:john@a.example.com>;q=0.1, <sip:john@b.example.com;lr>')
    expect(getHeader(m, 'Subject')).toBeUndefined()
  })

  it('getHeaders: splits list headers across lines, respecting quotes and <>', () => {
    const m = sample()
    expect(getHeaders(m, 'm')).toEqual(['"Doe, John" <sip:john@a.example.com>;q=0.1', '<sip:john@b.example.com;lr>', 'sip:john@c.example.com'])
    expect(getHeaders(m, 'Accept')).toEqual(['application/sdp', 'application/pkcs7-mime', 'multipart/mixed'])
    expect(getHeaders(m, 'Warning')).toEqual(['399 host "a, b"', '370 other "c"'])
    // not a list header: kept whole
    expect(getHeaders(m, 'Date')).toEqual(['Sat, 13 Nov 2010 23:29:00 GMT'])
    expect(splitList(';;,,;;,;')).toEqual([';;', ';;', ';'])
  })

  it('setHeader replaces every line in place of the first and keeps parsed fields in step', () => {
    const m = sample()
    addHeader(m, 'Contact', '<sip:x@y>')
    setHeader(m, 'm', '<sip:only@z>')
    expect(getHeaders(m, 'Contact')).toEqual(['<sip:only@z>'])
    expect(m.headers.findIndex(h => h.name === 'Contact')).toBe(6)
    setHeader(m, 'To', '<sip:carol@example.com>;tag=9')
    expect(m.to.params.tag).toBe('9')
    setHeader(m, 'CSeq', '7 OPTIONS')
    expect(m.cseq.seq).toBe(7)
    setHeader(m, 'Max-Forwards', '10')
    expect(m.maxForwards).toBe(10)
    setHeader(m, 'Subject', 'new')
    expect(m.headers.at(-1)).toEqual({ name: 'Subject', value: 'new' })
    expect(() => setHeader(m, 'From', 'not a uri')).toThrow(SipParseError)
    expect(() => setHeader(m, 'X-Evil', 'a\r\nVia: x')).toThrow(SipParseError)
  })

  it('addHeader first puts a Via on top, one line per value; removeHeader drops every line', () => {
    const m = sample()
    addHeader(m, 'Via', 'SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p1, SIP/2.0/TCP p2.example.com;branch=z9hG4bK-p2', 'first')
    expect(m.headers.slice(0, 3).map(h => h.value)).toEqual([
      'SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p1',
      'SIP/2.0/TCP p2.example.com;branch=z9hG4bK-p2',
      'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x'
    ])
    expect(m.vias.map(v => v.host)).toEqual(['proxy.example.com', 'p2.example.com', '192.0.2.1'])
    addHeader(m, 'Route', '<sip:r@example.com;lr>', 'first')
    expect(m.headers[0]!.name).toBe('Route')
    removeHeader(m, 'v')
    expect(m.vias).toEqual([])
    expect(getHeader(m, 'Via')).toBeUndefined()
    const again = parseMessage(serialize({ ...m, headers: [{ name: 'Via', value: 'SIP/2.0/UDP h;branch=z9hG4bK-y' }, ...m.headers] }))
    expect(again.vias).toHaveLength(1)
  })
})

describe('parseAuthParams', () => {
  it('parses Digest credentials', () => {
    const m = parseMessage(REGISTER)
    expect(parseAuthParams(getHeader(m, 'Authorization')!)).toEqual({
      scheme: 'Digest',
      params: { username: 'alice', realm: 'm1.example.net', nonce: 'bm9uY2U', uri: 'sip:m1.example.net', response: '3b8d7c6f', qop: 'auth', nc: '00000001', cnonce: '6b8b' }
    })
  })

  it('parses challenges, escapes, odd spacing and unknown schemes', () => {
    expect(parseAuthParams('Digest realm="a\\"b" ,qop="auth,auth-int",  algorithm=SHA-256 , stale=FALSE')).toEqual({
      scheme: 'Digest', params: { realm: 'a"b', qop: 'auth,auth-int', algorithm: 'SHA-256', stale: 'FALSE' }
    })
    expect(parseAuthParams('NoOneKnowsThisScheme opaque-data=here')).toEqual({ scheme: 'NoOneKnowsThisScheme', params: { 'opaque-data': 'here' } })
    expect(parseAuthParams('Bearer mF_9.B5f-4.1JqM==')).toEqual({ scheme: 'Bearer', params: {}, token68: 'mF_9.B5f-4.1JqM==' })
    expect(parseAuthParams('Digest')).toEqual({ scheme: 'Digest', params: {} })
  })

  it('refuses malformed values and repeated params', () => {
    for (const s of ['', 'Digest realm="x', 'Digest realm="a", realm="b"', 'Digest a=b c=d', '"Digest" a=b']) {
      expect(() => parseAuthParams(s), s).toThrow(SipParseError)
    }
  })
})
