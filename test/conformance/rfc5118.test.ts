import { describe, it, expect } from 'vitest'
import { parseMessage, screenMessage, SipParseError, type SipRequest } from '../../src/sip/message/index.js'
import { acceptable, describeScreening, expectRoundTrip, haveCorpus, readManifest, readMessage } from './corpus.js'

// RFC 5118 IPv6 torture messages. The wire/ copies are what a socket carries; the archive copies (bare LF, two
// without the closing empty line, two with a wrong Content-Length) must not break the parser either.
describe.skipIf(!haveCorpus)('RFC 5118 IPv6 torture tests', () => {
  const manifest = haveCorpus ? readManifest('rfc5118') : { messages: [] }

  it('has the whole corpus', () => {
    expect(manifest.messages).toHaveLength(12)
  })

  for (const entry of manifest.messages) {
    it(`${entry.section} ${entry.name}: ${entry.expected}, UAS ${JSON.stringify(entry.uas_outcomes)}`, () => {
      const wire = readMessage('rfc5118', entry.wire_file!, entry.wire_sha256)
      if (entry.expected === 'valid') expectRoundTrip(parseMessage(wire))
      else expect(() => parseMessage(wire)).toThrow(SipParseError)
      const s = screenMessage(wire)
      expect(acceptable(s, entry.uas_outcomes), describeScreening(s)).toBe(true)

      const archive = readMessage('rfc5118', entry.file, entry.sha256)
      let fromArchive
      try {
        fromArchive = parseMessage(archive)
      } catch (err) {
        expect(err).toBeInstanceOf(SipParseError)
        // only the invalid message, and the two whose archived Content-Length exceeds their body, may fail
        expect(entry.expected === 'invalid' || /Content-Length/.test((err as SipParseError).reason)).toBe(true)
        return
      }
      // bare LF aside, the archive message is the wire message
      const { headers: _h1, body: _b1, ...a } = fromArchive
      const { headers: _h2, body: _b2, ...w } = parseMessage(wire)
      expect(a).toEqual(w)
    })
  }

  const parse = (name: string): SipRequest => parseMessage(readMessage('rfc5118', `wire/${name}.dat`)) as SipRequest

  it('4.3/4.4: a port inside the brackets is part of the address', () => {
    expect(parse('port-ambiguous').uri).toMatchObject({ host: '[2001:db8::10:5070]' })
    expect(parse('port-ambiguous').uri.port).toBeUndefined()
    expect(parse('port-unambiguous').uri).toMatchObject({ host: '[2001:db8::10]', port: 5070 })
  })

  it('4.5: received with or without brackets', () => {
    expect(parse('via-received-param-with-delim').vias[0]!.params.received).toBe('[2001:db8::9:255]')
    expect(parse('via-received-param-no-delim').vias[0]!.params.received).toBe('2001:db8::9:255')
  })

  it('4.7/4.9: IPv6 and IPv4-mapped Via hosts', () => {
    expect(parse('mult-ip-in-header').vias.map(v => [v.host, v.port])).toEqual([['[2001:db8::9:1]', 6050], ['192.0.2.1', undefined], ['[2001:db8::9:255]', undefined]])
    expect(parse('ipv4-mapped-ipv6').vias[0]).toMatchObject({ host: '[::ffff:192.0.2.10]', port: 19823 })
  })

  it('4.10: both the two- and the three-colon forms', () => {
    expect(parse('ipv6-bug-abnf-3-colons').uri.host).toBe('[2001:db8:::192.0.2.1]')
    expect(parse('ipv6-correct-abnf-2-colons').uri.host).toBe('[2001:db8::192.0.2.1]')
  })
})
