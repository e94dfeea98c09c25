import { describe, it, expect } from 'vitest'
import { parseMessage, screenMessage, getHeaders, parseContactHeader, SipParseError, type SipRequest } from '../../src/sip/message/index.js'
import { acceptable, describeScreening, expectRoundTrip, haveCorpus, readManifest, readMessage } from './corpus.js'

// RFC 4475 torture messages, each as one UDP datagram: valid ones parse and round-trip; every one gets an outcome
// (the screening decision: parse + sanity) that its manifest entry lists for a UAS.
describe.skipIf(!haveCorpus)('RFC 4475 torture tests', () => {
  const manifest = haveCorpus ? readManifest('rfc4475') : { messages: [], errata: [] }
  const entries = [
    ...manifest.messages,
    ...(manifest.errata ?? []).map(e => ({ ...e, name: `${e.derived_from} (errata)` }))
  ]

  it('has the whole corpus', () => {
    expect(manifest.messages).toHaveLength(50)
  })

  for (const entry of entries) {
    it(`${entry.section} ${entry.name}: ${entry.expected}, UAS ${JSON.stringify(entry.uas_outcomes)}`, () => {
      const data = readMessage('rfc4475', entry.file, entry.sha256)
      if (entry.expected === 'valid') {
        const m = parseMessage(data)
        expectRoundTrip(m)
      } else {
        // refused by the parser (with SipParseError only), or parsed and refused by the sanity checks below
        try {
          expectRoundTrip(parseMessage(data))
        } catch (err) {
          if (!(err instanceof SipParseError)) throw err
        }
      }
      const s = screenMessage(data)
      expect(acceptable(s, entry.uas_outcomes), describeScreening(s)).toBe(true)
    })
  }

  // What some messages are about, beyond their outcome.
  const parse = (name: string): SipRequest => parseMessage(readMessage('rfc4475', `${name}.dat`)) as SipRequest

  it('3.1.1.1 wsinv: folding, escaped quotes, leading zeros, opaque unknown header', () => {
    const m = parse('wsinv')
    expect(m.maxForwards).toBe(68)
    expect(m.cseq).toEqual({ seq: 9, method: 'INVITE' })
    expect(m.from.displayName).toBe('J Rosenberg \\"')
    expect(m.vias.map(v => v.params.branch)).toEqual(['390skdjuw', 'z9hG4bK9ikj8', 'z9hG4bK30239'])
    expect(m.headers.find(h => h.name === 'UnknownHeaderWithUnusualValue')?.value).toBe(';;,,;;,;')
    expect(m.headers.find(h => h.name === 'Subject')?.value).toBe('')
    const [contact] = parseContactHeader(getHeaders(m, 'Contact')[0]!) as Exclude<ReturnType<typeof parseContactHeader>, '*'>
    expect(contact).toMatchObject({ displayName: 'Quoted string ""', params: { newparam: 'newvalue', secondparam: null, q: '0.33' } })
  })

  it('3.1.1.2 intmeth: % is no escape in method or Call-ID; quoted NUL in display name', () => {
    const m = parse('intmeth')
    expect(m.method).toBe("!interesting-Method0123456789_*+`.%indeed'~")
    expect(m.callId).toBe('intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{')
    expect(m.to.displayName).toBe('BEL:\x07 NUL:\x00 DEL:\x7f')
  })

  it('3.1.1.4 escnull: escaped NULs are kept, two distinct contacts', () => {
    const m = parse('escnull')
    expect(m.to.uri.user).toBe('null-%00-null')
    expect(getHeaders(m, 'Contact').map(c => (parseContactHeader(c) as Array<{ uri: { user?: string } }>)[0]!.uri.user)).toEqual(['%00', '%00%00'])
  })

  it('3.1.1.5 esc02: C%6Fntact is not Contact', () => {
    expect(getHeaders(parse('esc02'), 'Contact')).toHaveLength(2)
  })

  it('3.1.1.7 longreq: 34 Via values under every spelling of the name', () => {
    expect(parse('longreq').vias).toHaveLength(34)
  })

  it('3.1.1.8 dblreq: the octets after Content-Length are not part of the message', () => {
    const m = parse('dblreq')
    expect(m.method).toBe('REGISTER')
    expect(m.body.length).toBe(0)
  })

  it('3.1.1.11 mpart01: the binary body is framed by Content-Length exactly', () => {
    const data = readMessage('rfc4475', 'mpart01.dat')
    const m = parse('mpart01')
    expect(m.body.length).toBe(553)
    expect(m.body.equals(data.subarray(data.length - 553))).toBe(true)
  })

  it('3.3.12/3.3.13 cparam01/02: contact params vs URI params', () => {
    const c1 = parseContactHeader(getHeaders(parse('cparam01'), 'Contact')[0]!) as Array<{ uri: { params: object }, params: object }>
    expect(c1[0]!.params).toEqual({ unknownparam: null })
    expect(c1[0]!.uri.params).toEqual({})
    const c2 = parseContactHeader(getHeaders(parse('cparam02'), 'Contact')[0]!) as Array<{ uri: { params: object }, params: object }>
    expect(c2[0]!.uri.params).toEqual({ unknownparam: null })
  })

  it('3.4.1 inv2543: no Content-Length, the body is the rest of the datagram', () => {
    expect(parse('inv2543').body.length).toBe(105)
  })

  it('3.3.1 insuf: the 400 echoes Via and CSeq', () => {
    const s = screenMessage(readMessage('rfc4475', 'insuf.dat'))
    expect(s.action).toBe('reject')
    if (s.action !== 'reject') return
    const text = s.response.toString()
    expect(text).toMatch(/^SIP\/2\.0 400 /)
    expect(text).toContain('Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\n')
    expect(text).toContain('CSeq: 193942 INVITE\r\n')
  })
})
