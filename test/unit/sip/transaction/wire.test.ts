import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { parseMessage, serialize } from '../../../../src/sip/message/index.js'
import type { SipRequest, SipResponse } from '../../../../src/sip/message/types.js'
import { clientUser, flow, harness, target } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

const INVITE = [
  'INVITE sip:bob@example.test SIP/2.0',
  'Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKwire1;rport',
  'Route: <sip:p1.example.test;lr>',
  'Max-Forwards: 70',
  'From: "Alice" <sip:alice@example.test>;tag=a1',
  'To: <sip:bob@example.test>',
  'Call-ID: wire-1@127.0.0.1',
  'CSeq: 314 INVITE',
  'Timestamp: 54',
  'Contact: <sip:alice@127.0.0.1:5062>',
  'Content-Length: 0',
  '', ''
].join('\r\n')

describe('messages built by the transaction layer, through the real serializer and parser', () => {
  it('the ACK for a non-2xx parses back as RFC 3261 §17.1.1.3 requires', () => {
    const h = harness()
    const req = parseMessage(Buffer.from(INVITE)) as SipRequest
    h.layer.request(req, target(), clientUser())
    const busy = parseMessage(Buffer.from([
      'SIP/2.0 486 Busy Here',
      'Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKwire1;rport=5062;received=127.0.0.1',
      'From: "Alice" <sip:alice@example.test>;tag=a1',
      'To: <sip:bob@example.test>;tag=b2',
      'Call-ID: wire-1@127.0.0.1',
      'CSeq: 314 INVITE',
      'Content-Length: 0',
      '', ''
    ].join('\r\n'))) as SipResponse
    h.layer.receiveResponse(busy, flow())
    const ack = parseMessage(serialize(h.sent[1]?.msg as SipRequest)) as SipRequest
    expect(ack.method).toBe('ACK')
    expect(ack.rawUri).toBe('sip:bob@example.test')
    expect(ack.vias).toHaveLength(1)
    expect(ack.vias[0]?.params.branch).toBe('z9hG4bKwire1')
    expect(ack.vias[0]?.params.received).toBeUndefined() // the INVITE's Via, not the response's
    expect(ack.to.params.tag).toBe('b2')
    expect(ack.from.params.tag).toBe('a1')
    expect(ack.callId).toBe('wire-1@127.0.0.1')
    expect(ack.cseq).toEqual({ seq: 314, method: 'ACK' })
    expect(ack.headers.filter((x) => x.name === 'Route').map((x) => x.value)).toEqual(['<sip:p1.example.test;lr>'])
    expect(ack.headers.filter((x) => x.name === 'Content-Length').map((x) => x.value)).toEqual(['0'])
    expect(ack.headers.find((x) => x.name === 'Contact')).toBeUndefined()
  })

  it('the 100 Trying echoes Via, From, To, Call-ID, CSeq and Timestamp', () => {
    const h = harness()
    h.layer.receiveRequest(parseMessage(Buffer.from(INVITE)) as SipRequest, flow())
    const trying = parseMessage(serialize(h.sent[0]?.msg as SipResponse)) as SipResponse
    expect(trying.status).toBe(100)
    expect(trying.vias[0]?.params.branch).toBe('z9hG4bKwire1')
    expect(trying.to.params.tag).toBeUndefined()
    expect(trying.cseq).toEqual({ seq: 314, method: 'INVITE' })
    expect(trying.headers.find((x) => x.name === 'Timestamp')?.value).toBe('54')
  })
})
