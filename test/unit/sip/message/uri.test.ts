import { describe, it, expect } from 'vitest'
import { parseUri, formatUri, SipParseError } from '../../../../src/sip/message/index.js'

describe('parseUri / formatUri', () => {
  it('parses every part of a SIP URI', () => {
    const u = parseUri('sips:Alice:secret@Example.COM:5061;transport=TCP;lr;maddr=[2001:db8::1]?Subject=hi&Priority=urgent')
    expect(u).toMatchObject({ scheme: 'sips', user: 'Alice', password: 'secret', host: 'example.com', port: 5061 })
    expect(u.params).toEqual({ transport: 'TCP', lr: null, maddr: '[2001:db8::1]' })
    expect(u.headers).toEqual({ Subject: 'hi', Priority: 'urgent' })
    expect(formatUri(u)).toBe('sips:Alice:secret@example.com:5061;transport=TCP;lr;maddr=[2001:db8::1]?Subject=hi&Priority=urgent')
  })

  it('takes the unusual user parts of RFC 4475 (§3.1.1.2, §3.1.1.9)', () => {
    const u = parseUri("sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com")
    expect(u.user).toBe("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    expect(u.password).toBe("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    expect(u.host).toBe('example.com')
    expect(parseUri('sip:user;par=u%40example.net@example.com').user).toBe('user;par=u%40example.net')
  })

  it('keeps user escapes but normalizes unreserved escapes in params (RFC 4475 §3.1.1.3)', () => {
    const u = parseUri('sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31')
    expect(u.user).toBe('cal%6Cer')
    expect(u.params).toEqual({ lr: null, name: 'value%2541' })
    expect(parseUri('sip:%00%00@host5.example.com').user).toBe('%00%00')
  })

  it('parses IPv6 references (RFC 5118)', () => {
    expect(parseUri('sip:[2001:db8::10]').host).toBe('[2001:db8::10]')
    expect(parseUri('sip:[2001:db8::10]').port).toBeUndefined()
    expect(parseUri('sip:[2001:db8::10:5070]').port).toBeUndefined()
    expect(parseUri('sip:[2001:db8::10]:5070').port).toBe(5070)
    expect(parseUri('sip:user@[2001:db8:::192.0.2.1]').host).toBe('[2001:db8:::192.0.2.1]')
    expect(parseUri('sip:ted@[::ffff:192.0.2.2]').host).toBe('[::ffff:192.0.2.2]')
  })

  it('keeps tel and unknown schemes', () => {
    const t = parseUri('tel:+1-201-555-0123;phone-context=example.com')
    expect(t).toMatchObject({ scheme: 'tel', user: '+1-201-555-0123', host: '' })
    expect(t.params).toEqual({ 'phone-context': 'example.com' })
    expect(formatUri(t)).toBe('tel:+1-201-555-0123;phone-context=example.com')
    for (const s of ['soap.beep://192.0.2.103:3002', 'http://www.example.com', 'isbn:2983792873', 'name:John_Smith']) {
      const u = parseUri(s)
      expect(u.host).toBe('')
      expect(formatUri(u)).toBe(s.slice(0, s.indexOf(':')).toLowerCase() + s.slice(s.indexOf(':')))
    }
  })

  it('round-trips', () => {
    for (const s of ['sip:example.com', 'sip:a@b.example.com:5060;transport=udp', 'sip:a:@h', 'sips:[::1]:5061;lr?h=v', 'sip:*97#@pbx']) {
      expect(formatUri(parseUri(s))).toBe(s)
      expect(parseUri(formatUri(parseUri(s)))).toEqual(parseUri(s))
    }
  })

  it('refuses what is not a URI', () => {
    const bad = [
      '', 'sip', ':x', '1sip:x', '<sip:a@b>', ' sip:a@b', 'sip:a@b ', 'sip:', 'sip:@host', 'sip:a@', 'sip:2001:db8::10',
      'sip:a@b:99999', 'sip:a@b:', 'sip:a@[2001:db8::1', 'sip:a@[zz::1]', 'sip:a@b;', 'sip:a@b;x=', 'sip:a@b?x',
      'sip:a b@c', 'sip:a@b>', 'sip:a"b@c', 'tel:', 'x:', 'x:a b'
    ]
    for (const s of bad) expect(() => parseUri(s), s).toThrow(SipParseError)
  })
})
