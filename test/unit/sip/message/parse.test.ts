import { describe, it, expect } from 'vitest'
import { parseMessage, serialize, getHeader, SipParseError, type SipMessage, type SipRequest } from '../../../../src/sip/message/index.js'
import { INVITE, REGISTER, RESPONSE, SDP, msg } from './fixtures.js'

function req (data: Buffer): SipRequest {
  const m = parseMessage(data)
  if (m.kind !== 'request') throw new Error('expected a request')
  return m
}

function parseError (data: Buffer): SipParseError {
  try {
    parseMessage(data)
  } catch (err) {
    expect(err).toBeInstanceOf(SipParseError)
    return err as SipParseError
  }
  throw new Error('expected a SipParseError')
}

const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x',
  'To: <sip:bob@example.com>',
  'From: <sip:alice@example.com>;tag=1',
  'Call-ID: c1',
  'CSeq: 1 OPTIONS'
]

/** parse → serialize → parse gives the same structure (Content-Length aside: it is recomputed). */
function expectRoundTrip (m: SipMessage): void {
  const again = parseMessage(serialize(m))
  const strip = (x: SipMessage): unknown => ({ ...x, headers: x.headers.filter(h => h.name !== 'Content-Length') })
  expect(strip(again)).toEqual(strip(m))
  expect(again.body.equals(m.body)).toBe(true)
}

describe('parseMessage', () => {
  it('parses a REGISTER: start line, eager fields, raw others', () => {
    const m = req(REGISTER)
    expect(m.method).toBe('REGISTER')
    expect(m.uri).toMatchObject({ scheme: 'sip', host: 'm1.example.net' })
    expect(m.rawUri).toBe('sip:m1.example.net')
    expect(m.vias).toHaveLength(1)
    expect(m.vias[0]).toMatchObject({ protocol: 'SIP/2.0', transport: 'UDP', host: '192.168.1.34', port: 5060 })
    expect(m.vias[0]!.params).toEqual({ branch: 'z9hG4bK-1', rport: null })
    expect(m.from.displayName).toBe('Alice')
    expect(m.from.params.tag).toBe('8e3f1a2b')
    expect(m.to.uri.user).toBe('alice')
    expect(m.callId).toBe('abc123@192.168.1.34')
    expect(m.cseq).toEqual({ seq: 2, method: 'REGISTER' })
    expect(m.maxForwards).toBe(70)
    expect(getHeader(m, 'authorization')).toMatch(/^Digest username="alice"/)
    expect(m.body.length).toBe(0)
    expectRoundTrip(m)
  })

  it('parses an INVITE with its SDP body', () => {
    const m = req(INVITE)
    expect(m.body.toString()).toBe(SDP)
    expectRoundTrip(m)
  })

  it('parses a response', () => {
    const m = parseMessage(RESPONSE)
    expect(m.kind).toBe('response')
    if (m.kind !== 'response') return
    expect(m.status).toBe(180)
    expect(m.reason).toBe('Ringing')
    expect(m.vias[0]!.params).toEqual({ branch: 'z9hG4bK-2', rport: '5060', received: '203.0.113.7' })
    expectRoundTrip(m)
  })

  it('accepts an empty reason phrase, with or without the SP', () => {
    for (const line of ['SIP/2.0 100 ', 'SIP/2.0 100']) {
      const m = parseMessage(msg([line, ...BASE]))
      expect(m.kind === 'response' && m.status === 100 && m.reason === '').toBe(true)
    }
  })

  it('expands compact forms and canonicalizes names in any case', () => {
    const m = req(msg([
      'OPTIONS sip:bob@example.com SIP/2.0',
      'v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x',
      't: <sip:bob@example.com>',
      'F: <sip:alice@example.com>;tag=1',
      'i: c1',
      'cseq: 1 OPTIONS',
      'MaX-fOrWaRdS: 0068',
      'm: <sip:alice@192.0.2.1>',
      'c: text/plain',
      'k: path',
      'x-custom-Header: kept as is',
      'l: 2'
    ], 'hi'))
    expect(m.headers.map(h => h.name)).toEqual([
      'Via', 'To', 'From', 'Call-ID', 'CSeq', 'Max-Forwards', 'Contact', 'Content-Type', 'Supported', 'x-custom-Header', 'Content-Length'
    ])
    expect(m.maxForwards).toBe(68)
    expect(m.body.toString()).toBe('hi')
    expect(getHeader(m, 'X-CUSTOM-HEADER')).toBe('kept as is')
    expect(getHeader(m, 'm')).toBe('<sip:alice@192.0.2.1>')
  })

  it('unfolds continuation lines and takes LWS around colons, slashes and semicolons', () => {
    const m = req(Buffer.from([
      'INVITE sip:bob@example.com SIP/2.0',
      'TO :',
      ' sip:bob@example.com ;   tag    = 1918',
      'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>',
      '  ;',
      '  tag = 98asjd8',
      'cseq: 0009',
      '  INVITE',
      'Via  : SIP  /   2.0',
      ' /UDP',
      '    192.0.2.2;branch=390skdjuw',
      'Call-ID: c',
      'Subject:',
      'X-Folded: a',
      '\tb',
      '', ''
    ].join('\r\n')))
    expect(m.to.params.tag).toBe('1918')
    expect(m.from.displayName).toBe('J Rosenberg \\"')
    expect(m.from.params.tag).toBe('98asjd8')
    expect(m.cseq).toEqual({ seq: 9, method: 'INVITE' })
    expect(m.vias[0]).toMatchObject({ protocol: 'SIP/2.0', transport: 'UDP', host: '192.0.2.2' })
    expect(getHeader(m, 'Subject')).toBe('')
    expect(getHeader(m, 'X-Folded')).toBe('a b')
    expectRoundTrip(m)
  })

  it('gives each Via value its own header entry, in order', () => {
    const m = req(msg([
      'OPTIONS sip:bob@example.com SIP/2.0',
      'Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2',
      'To: <sip:bob@example.com>',
      'Via: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK3;received=2001:db8::9',
      'From: <sip:alice@example.com>;tag=1',
      'Call-ID: c1',
      'CSeq: 1 OPTIONS'
    ]))
    expect(m.vias.map(v => v.host)).toEqual(['a.example.com', 'b.example.com', '[2001:db8::1]'])
    expect(m.vias[1]!.port).toBe(5070)
    expect(m.vias[2]!.params.received).toBe('2001:db8::9')
    expect(m.headers.filter(h => h.name === 'Via').map(h => h.value)).toEqual([
      'SIP/2.0/UDP a.example.com;branch=z9hG4bK1',
      'SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2',
      'SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK3;received=2001:db8::9'
    ])
    expect(m.headers[1]!.name).toBe('Via')
    expect(m.headers[2]!.name).toBe('To')
    expectRoundTrip(m)
  })

  it('handles IPv6 references in the Request-URI (RFC 5118)', () => {
    const m = req(msg(['REGISTER sip:[2001:DB8::10]:5070 SIP/2.0', ...BASE.slice(0, 4), 'CSeq: 1 REGISTER']))
    expect(m.uri.host).toBe('[2001:db8::10]')
    expect(m.uri.port).toBe(5070)
    const e = parseError(msg(['REGISTER sip:2001:db8::10 SIP/2.0', ...BASE.slice(0, 4), 'CSeq: 1 REGISTER']))
    expect(e.status).toBe(400)
  })

  it('keeps a Request-URI of an unknown scheme', () => {
    const m = req(msg(['OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0', ...BASE]))
    expect(m.uri).toMatchObject({ scheme: 'nobodyknowsthisscheme', user: 'totallyopaquecontent', host: '' })
    expect(m.rawUri).toBe('nobodyKnowsThisScheme:totallyopaquecontent')
  })

  it('tolerates extra SP in the request line, bare LF line ends, leading CRLF, a missing final empty line', () => {
    expect(req(msg(['OPTIONS  sip:bob@example.com  SIP/2.0  ', ...BASE])).method).toBe('OPTIONS')
    expect(req(Buffer.from(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, '', 'body'].join('\n'))).body.toString()).toBe('body')
    expect(req(Buffer.concat([Buffer.from('\r\n\r\n'), msg(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE])])).method).toBe('OPTIONS')
    expect(req(Buffer.from(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, ''].join('\r\n'))).body.length).toBe(0)
  })

  it('finds the body after a bare-LF header section by bytes, whatever the header encoding', () => {
    const head = Buffer.from(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, 'Subject: caf'].join('\n'))
    for (const blank of ['\n\n', '\n\r\n']) {
      // an invalid UTF-8 octet in a header (decoded as U+FFFD, 3 octets) must not shift the body
      const data = Buffer.concat([head, Buffer.from([0xe9]), Buffer.from(blank + 'body\r\n\r\nmore')])
      const m = req(data)
      expect(m.body.toString()).toBe('body\r\n\r\nmore')
      expect(getHeader(m, 'Subject')).toBe('caf\ufffd')
    }
  })

  it('frames the body by Content-Length: truncates extra datagram octets, refuses missing ones', () => {
    const extra = req(msg(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, 'Content-Type: text/plain', 'Content-Length: 3'], 'abcdef'))
    expect(extra.body.toString()).toBe('abc')
    const none = req(msg(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, 'Content-Type: text/plain'], 'abcdef'))
    expect(none.body.toString()).toBe('abcdef')
    expect(parseError(msg(['OPTIONS sip:bob@example.com SIP/2.0', ...BASE, 'Content-Length: 10'], 'abc')).reason).toMatch(/shorter/)
  })

  it('does not alias the input buffer', () => {
    const data = Buffer.from(INVITE)
    const m = req(data)
    data.fill(0)
    expect(m.body.toString()).toBe(SDP)
  })

  it('refuses malformed start lines', () => {
    const bad = [
      'OPTIONS sip:bob@example.com', // no version
      'OPTIONS sip:bob@example.com; lr SIP/2.0', // LWS in the URI
      'OPTIONS <sip:bob@example.com> SIP/2.0',
      'OPT@ONS sip:bob@example.com SIP/2.0',
      'OPTIONS sip:bob@example.com HTTP/1.1',
      'SIP/2.0 4294967301 Big',
      'SIP/2.0 99 Low',
      'SIP/2.0 700 High',
      'SIP/2.0 20 OK',
      'SIP/3.0 200 OK'
    ]
    for (const line of bad) expect(parseError(msg([line, ...BASE])).status, line).toBe(400)
  })

  it('answers another SIP version with 505', () => {
    const e = parseError(msg(['OPTIONS sip:bob@example.com SIP/7.0', ...BASE]))
    expect(e.status).toBe(505)
    expect(e.partial?.callId).toBe('c1')
    expect(e.partial?.vias?.[0]?.host).toBe('192.0.2.1')
  })

  it('refuses bad or missing mandatory headers, with what could be read', () => {
    const line = 'OPTIONS sip:bob@example.com SIP/2.0'
    const cases: Array<[string[], RegExp]> = [
      [BASE.filter(h => !h.startsWith('Call-ID')), /missing Call-ID/],
      [BASE.filter(h => !h.startsWith('Via')), /missing Via/],
      [BASE.filter(h => !h.startsWith('From')), /missing From/],
      [BASE.filter(h => !h.startsWith('To')), /missing To/],
      [BASE.filter(h => !h.startsWith('CSeq')), /missing CSeq/],
      [[...BASE, 'CSeq: 2 OPTIONS'], /more than one CSeq/],
      [[...BASE, 'Call-ID: c2'], /more than one Call-ID/],
      [[...BASE, 'To: <sip:x@example.com>'], /more than one To/],
      [[...BASE, 'Content-Length: -1'], /Content-Length/],
      [[...BASE, 'Content-Length: five'], /Content-Length/],
      [[...BASE, 'Content-Length: 0', 'Content-Length: 5'], /conflicting/],
      [[...BASE, 'Max-Forwards: many'], /Max-Forwards/],
      [[...BASE.slice(0, 4), 'CSeq: 0009 INVITE'], /CSeq method/],
      [[...BASE.slice(0, 4), 'CSeq: 4294967296 OPTIONS'], /2\^32/],
      [[...BASE.slice(1), 'Via: SIP/2.0/UDP 192.0.2.15;;,;,,'], /Via/],
      [[...BASE, 'No colon here'], /without ":"/],
      [[...BASE, 'Bad Name: x'], /header name/],
      [[...BASE.slice(0, 1), 'To: "unterminated <sip:bob@example.com>', ...BASE.slice(2)], /unterminated/],
      [[...BASE.slice(0, 1), 'To: < sip:bob@example.com >', ...BASE.slice(2)], /To/],
      [[...BASE.slice(0, 2), 'From: Bell, Alexander <sip:a@example.com>;tag=1', ...BASE.slice(3)], /From/]
    ]
    for (const [headers, reason] of cases) {
      const e = parseError(msg([line, ...headers]))
      expect(e.reason, headers.join(' | ')).toMatch(reason)
      expect(e.partial?.kind).toBe('request')
      expect(e.partial?.method).toBe('OPTIONS')
      expect(e.partial?.headers?.length).toBeGreaterThan(0)
    }
  })

  it('refuses data that is no SIP message', () => {
    for (const data of ['', '\r\n\r\n', 'hello', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x00\x01\x02']) {
      parseError(Buffer.from(data))
    }
  })
})
