import { describe, it, expect } from 'vitest'
import { parseMessage, validateRequest, screenMessage, type SipRequest } from '../../../../src/sip/message/index.js'
import { INVITE, REGISTER, RESPONSE, SDP, msg } from './fixtures.js'

const BASE = [
  'Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-x',
  'To: <sip:bob@example.com>',
  'From: <sip:alice@example.com>;tag=1',
  'Call-ID: c1'
]

function request (method: string, extra: string[] = [], body = '', uri = 'sip:bob@example.com'): SipRequest {
  return parseMessage(msg([`${method} ${uri} SIP/2.0`, ...BASE, `CSeq: 1 ${method}`, ...extra], body)) as SipRequest
}

describe('validateRequest', () => {
  it('passes ordinary requests', () => {
    expect(validateRequest(parseMessage(REGISTER) as SipRequest)).toBeNull()
    expect(validateRequest(parseMessage(INVITE) as SipRequest)).toBeNull()
    expect(validateRequest(request('OPTIONS', ['Max-Forwards: 0']))).toBeNull()
    expect(validateRequest(request('REGISTER', ['Contact: *', 'Expires: 0']))).toBeNull()
    expect(validateRequest(request('ACK', ['Require: foo']))).toBeNull()
    expect(validateRequest(request('INVITE', ['Accept: application/*', 'Content-Type: application/sdp'], SDP))).toBeNull()
  })

  it('refuses with 400 what Kamailio sanity refuses', () => {
    const cases: Array<[SipRequest, RegExp]> = [
      [request('OPTIONS', ['Max-Forwards: 256']), /Max-Forwards/],
      [parseMessage(msg(['OPTIONS sip:a@b SIP/2.0', ...BASE, 'CSeq: 2147483648 OPTIONS'])) as SipRequest, /CSeq/],
      [request('OPTIONS', [], '', 'sip:user@example.com?Route=%3Csip:example.com%3E'), /Request-URI/],
      [request('REGISTER', ['Expires: soon']), /Expires/],
      [request('MESSAGE', [], 'hello'), /Content-Type/],
      [request('REGISTER', ['Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E']), /Contact/],
      [request('REGISTER', ['Contact: *']), /\*/],
      [request('REGISTER', ['Contact: *', 'Contact: <sip:a@b>', 'Expires: 0']), /\*/],
      [request('INVITE', ['Contact: *']), /\*/],
      [parseMessage(msg(['REGISTER sip:example.com SIP/2.0', 'Via: SIP/2.0/UDP h', 'To: isbn:2983792873', 'From: <http://www.example.com>;tag=1', 'Call-ID: c', 'CSeq: 1 REGISTER'])) as SipRequest, /To/]
    ]
    for (const [req, reason] of cases) {
      const f = validateRequest(req)
      expect(f?.status, req.headers.map(h => h.value).join(' | ')).toBe(400)
      expect(f?.reason).toMatch(reason)
    }
  })

  it('501 with Allow for unknown methods, 416 for unknown schemes', () => {
    const f = validateRequest(request('NEWMETHOD'))
    expect(f).toMatchObject({ status: 501, headers: [{ name: 'Allow' }] })
    expect(f!.headers![0]!.value).toContain('INVITE')
    expect(validateRequest(request('PUBLISH'), { methods: ['PUBLISH'] })).toBeNull()
    expect(validateRequest(request('OPTIONS', [], '', 'nobodyKnowsThisScheme:totallyopaquecontent'))?.status).toBe(416)
    expect(validateRequest(request('OPTIONS', [], '', 'tel:+15551234'))).toBeNull()
  })

  it('420 with Unsupported for unknown Require tags, except in CANCEL and ACK', () => {
    const f = validateRequest(request('OPTIONS', ['Require: nothingSupportsThis, path', 'Proxy-Require: x']), { supported: ['path'] })
    expect(f).toEqual({ status: 420, reason: 'Bad Extension', headers: [{ name: 'Unsupported', value: 'nothingSupportsThis' }] })
    expect(validateRequest(request('CANCEL', ['Require: foo']))).toBeNull()
  })

  it('415 for a body the method cannot take, 406 when the answer would not be acceptable', () => {
    expect(validateRequest(request('INVITE', ['Content-Type: application/unknownformat'], '<audio/>'))).toMatchObject({
      status: 415, headers: [{ name: 'Accept', value: 'application/sdp' }]
    })
    expect(validateRequest(request('MESSAGE', ['Content-Type: application/unknownformat'], '<x/>'))).toBeNull()
    expect(validateRequest(request('INVITE', ['Accept: text/nobodyKnowsThis', 'Content-Type: application/sdp'], SDP))?.status).toBe(406)
  })
})

describe('screenMessage', () => {
  it('processes good requests and responses', () => {
    expect(screenMessage(REGISTER)).toMatchObject({ action: 'process', message: { kind: 'request', method: 'REGISTER' } })
    expect(screenMessage(RESPONSE)).toMatchObject({ action: 'process', message: { kind: 'response', status: 180 } })
  })

  it('rejects bad requests with a response to send back', () => {
    const s = screenMessage(msg(['OPTIONS sip:a@b SIP/2.0', ...BASE, 'CSeq: 1 INVITE']))
    expect(s).toMatchObject({ action: 'reject', status: 400 })
    if (s.action !== 'reject') return
    const res = parseMessage(s.response)
    expect(res).toMatchObject({ kind: 'response', status: 400, callId: 'c1', cseq: { seq: 1, method: 'INVITE' } })
    expect(res.to.params.tag).toBeTruthy()

    const s2 = screenMessage(msg(['OPTIONS sip:a@b SIP/2.0', ...BASE, 'CSeq: 1 OPTIONS', 'Require: foo']))
    expect(s2).toMatchObject({ action: 'reject', status: 420 })
    if (s2.action !== 'reject') return
    const res2 = parseMessage(s2.response)
    expect(res2.headers.find(h => h.name === 'Unsupported')?.value).toBe('foo')
    expect(res2.vias).toEqual(parseMessage(msg(['OPTIONS sip:a@b SIP/2.0', ...BASE, 'CSeq: 1 OPTIONS'])).vias)
  })

  it('drops bad responses, bad ACKs and noise', () => {
    expect(screenMessage(msg(['SIP/2.0 200 OK', ...BASE, 'CSeq: 99999999999 INVITE'])).action).toBe('drop')
    expect(screenMessage(msg(['ACK sip:a@b SIP/2.0', ...BASE, 'CSeq: 1 INVITE'])).action).toBe('drop')
    expect(screenMessage(msg(['ACK sip:a@b SIP/2.0', ...BASE, 'CSeq: 1 ACK', 'Max-Forwards: 300'])).action).toBe('drop')
    expect(screenMessage(Buffer.from('\r\n\r\n')).action).toBe('drop')
  })
})
