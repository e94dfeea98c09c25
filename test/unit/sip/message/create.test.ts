import { describe, it, expect } from 'vitest'
import {
  parseMessage, serialize, createResponse, createRequest, createParseErrorResponse, newBranch, newTag, newCallId,
  parseNameAddr, parseVia, reasonPhrase, getHeader, SipParseError, type SipRequest
} from '../../../../src/sip/message/index.js'
import { INVITE, msg } from './fixtures.js'

describe('createResponse', () => {
  const req = parseMessage(msg([
    'INVITE sip:bob@example.com SIP/2.0',
    'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK-1, SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-0;rport=5062;received=203.0.113.9',
    'Max-Forwards: 69',
    'To: Bob <sip:bob@example.com>',
    'From: Alice <sip:alice@example.com>;tag=a1',
    'Call-ID: call-1',
    'CSeq: 4 INVITE',
    'Timestamp: 54',
    'Contact: <sip:alice@192.0.2.1:5062>',
    'Content-Length: 0'
  ])) as SipRequest

  it('copies Via entries, From, To, Call-ID and CSeq, and tags To', () => {
    const res = createResponse(req, 486, undefined, { toTag: 'b2', headers: [{ name: 'Retry-After', value: '30' }] })
    expect(res.reason).toBe('Busy Here')
    expect(res.headers).toEqual([
      { name: 'Via', value: 'SIP/2.0/UDP p1.example.com;branch=z9hG4bK-1' },
      { name: 'Via', value: 'SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK-0;rport=5062;received=203.0.113.9' },
      { name: 'To', value: 'Bob <sip:bob@example.com>;tag=b2' },
      { name: 'From', value: 'Alice <sip:alice@example.com>;tag=a1' },
      { name: 'Call-ID', value: 'call-1' },
      { name: 'CSeq', value: '4 INVITE' },
      { name: 'Retry-After', value: '30' }
    ])
    expect(res.to.params.tag).toBe('b2')
    expect(req.to.params.tag).toBeUndefined()
    const wire = parseMessage(serialize(res))
    expect(wire).toMatchObject({ kind: 'response', status: 486, reason: 'Busy Here', callId: 'call-1', cseq: { seq: 4, method: 'INVITE' } })
    expect(wire.vias).toEqual(res.vias)
    expect(wire.to).toEqual(res.to)
  })

  it('keeps an existing To tag, copies Timestamp into 100, takes a body', () => {
    const tagged = parseMessage(serialize({ ...req, headers: req.headers.map(h => h.name === 'To' ? { ...h, value: h.value + ';tag=old' } : h) })) as SipRequest
    expect(getHeader(createResponse(tagged, 200, 'OK', { toTag: 'new' }), 'To')).toBe('Bob <sip:bob@example.com>;tag=old')
    expect(getHeader(createResponse(req, 100), 'Timestamp')).toBe('54')
    expect(getHeader(createResponse(req, 180), 'Timestamp')).toBeUndefined()
    const res = createResponse(req, 200, 'OK', { body: Buffer.from('v=0\r\n'), headers: [{ name: 'Content-Type', value: 'application/sdp' }] })
    expect(serialize(res).toString()).toMatch(/Content-Length: 5\r\n\r\nv=0\r\n$/)
  })

  it('has no link back to the request', () => {
    const res = createResponse(req, 200)
    res.vias[0]!.params.branch = 'changed'
    expect(req.vias[0]!.params.branch).toBe('z9hG4bK-1')
  })
})

describe('createRequest', () => {
  it('builds a request that serializes and parses back', () => {
    const branch = newBranch()
    const req = createRequest({
      method: 'MESSAGE',
      uri: 'sip:bob@example.com',
      from: parseNameAddr('"Alice" <sip:alice@example.com>;tag=' + newTag()),
      to: parseNameAddr('<sip:bob@example.com>'),
      callId: newCallId(),
      cseq: 1,
      via: parseVia(`SIP/2.0/UDP 127.0.0.1:5060;branch=${branch};rport`)[0]!,
      headers: [{ name: 'Content-Type', value: 'text/plain' }],
      body: Buffer.from('hello')
    })
    const back = parseMessage(serialize(req))
    expect(back).toMatchObject({ kind: 'request', method: 'MESSAGE', rawUri: 'sip:bob@example.com', maxForwards: 70, callId: req.callId })
    expect(back.vias).toEqual(req.vias)
    expect(back.from).toEqual(req.from)
    expect(back.to).toEqual(req.to)
    expect(back.body.toString()).toBe('hello')
    expect(back.headers.map(h => h.name)).toEqual(['Via', 'Max-Forwards', 'From', 'To', 'Call-ID', 'CSeq', 'Content-Type', 'Content-Length'])
  })

  it('refuses a CSeq out of range', () => {
    const base = { method: 'OPTIONS', uri: 'sip:a@b', from: parseNameAddr('<sip:a@b>'), to: parseNameAddr('<sip:a@b>'), callId: 'c', via: parseVia('SIP/2.0/UDP h')[0]! }
    expect(() => createRequest({ ...base, cseq: 2 ** 31 })).toThrow(SipParseError)
    expect(() => createRequest({ ...base, cseq: 1.5 })).toThrow(SipParseError)
  })
})

describe('ids and reason phrases', () => {
  it('makes unique, token-safe ids', () => {
    const branches = new Set(Array.from({ length: 200 }, () => newBranch()))
    expect(branches.size).toBe(200)
    for (const b of branches) expect(b).toMatch(/^z9hG4bK[A-Za-z0-9_-]{16}$/)
    expect(newTag()).toMatch(/^[A-Za-z0-9_-]{11}$/)
    expect(newCallId()).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })

  it('names statuses', () => {
    expect(reasonPhrase(200)).toBe('OK')
    expect(reasonPhrase(416)).toBe('Unsupported URI Scheme')
    expect(reasonPhrase(499)).toBe('Client Error')
    expect(reasonPhrase(299)).toBe('Success')
  })
})

describe('createParseErrorResponse', () => {
  function failure (data: Buffer): SipParseError {
    try { parseMessage(data) } catch (err) { return err as SipParseError }
    throw new Error('parsed')
  }

  it('echoes what it can of a bad request', () => {
    const e = failure(msg([
      'INVITE sip:user@example.com SIP/2.0',
      'CSeq: 193942 INVITE',
      'Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf',
      'Content-Length: 0'
    ]))
    const out = createParseErrorResponse(e)!.toString()
    expect(out).toBe('SIP/2.0 400 Bad Request (missing From)\r\nCSeq: 193942 INVITE\r\nVia: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\nContent-Length: 0\r\n\r\n')
  })

  it('tags a readable To, and answers 505 to another version', () => {
    const e = failure(Buffer.from(INVITE.toString().replace('SIP/2.0\r\n', 'SIP/3.0\r\n')))
    const res = parseMessage(createParseErrorResponse(e)!)
    expect(res.kind === 'response' && res.status).toBe(505)
    expect(res.to.params.tag).toMatch(/.+/)
    expect(res.callId).toBe('inv1@192.168.1.34')
  })

  it('answers no response and no ACK', () => {
    expect(createParseErrorResponse(failure(msg(['SIP/2.0 200 OK', 'Via: SIP/2.0/UDP h', 'CSeq: 1 INVITE'])))).toBeNull()
    expect(createParseErrorResponse(failure(msg(['ACK sip:a@b SIP/2.0', 'Via: SIP/2.0/UDP h', 'CSeq: 1 ACK'])))).toBeNull()
    // noise that is no request line gets no answer
    for (const noise of ['', '\x00\x01garbage x', 'hello', 'hello\r\nVia: SIP/2.0/UDP h\r\n\r\n']) {
      expect(createParseErrorResponse(failure(Buffer.from(noise))), noise).toBeNull()
    }
    // but a request line without version is answered (RFC 4475 archive test.dat)
    expect(createParseErrorResponse(failure(msg(['INVITE sip:alan@jasomi.com', 'Call-ID: x'])))?.toString()).toMatch(/^SIP\/2\.0 400 /)
  })
})
