import { describe, it, expect } from 'vitest'
import { parseNameAddr, parseNameAddrList, parseContactHeader, formatNameAddr, SipParseError } from '../../../../src/sip/message/index.js'

describe('parseNameAddr', () => {
  it('reads the name-addr forms', () => {
    expect(parseNameAddr('"A. G. Bell" <sip:agb@bell-telephone.com> ;tag=a48s')).toMatchObject({
      displayName: 'A. G. Bell', rawUri: 'sip:agb@bell-telephone.com', params: { tag: 'a48s' }
    })
    expect(parseNameAddr('Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8').displayName).toBe('Anonymous')
    expect(parseNameAddr('token1~` token2 <sip:a@b>').displayName).toBe('token1~` token2')
    // RFC 4475 §3.1.1.6: no LWS between display name and <
    expect(parseNameAddr('caller<sip:caller@example.com>;tag=323').displayName).toBe('caller')
    expect(parseNameAddr('<sip:a@b;lr>').uri.params).toEqual({ lr: null })
  })

  it('unescapes quoted display names', () => {
    expect(parseNameAddr('"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>').displayName).toBe('J Rosenberg \\"')
    expect(parseNameAddr('"BEL:\\\x07 NUL:\\\x00" <sip:a@b>').displayName).toBe('BEL:\x07 NUL:\x00')
    expect(parseNameAddr('"%Z%45" <sip:resource@example.com>').displayName).toBe('%Z%45')
  })

  it('gives the params of an addr-spec to the header, not the URI (RFC 4475 §3.3.12)', () => {
    const na = parseNameAddr('sip:+19725552222@gw1.example.net;unknownparam')
    expect(na.uri.params).toEqual({})
    expect(na.params).toEqual({ unknownparam: null })
    const bracketed = parseNameAddr('<sip:+19725552222@gw1.example.net;unknownparam>')
    expect(bracketed.uri.params).toEqual({ unknownparam: null })
    expect(bracketed.params).toEqual({})
    expect(parseNameAddr('sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n').params.tag).toBe('1918181833n')
  })

  it('keeps quoted param values with their quotes', () => {
    const na = parseNameAddr('<sip:a@b>;+sip.instance="<urn:uuid:1234>";reg-id=1;q=0.5')
    expect(na.params).toEqual({ '+sip.instance': '"<urn:uuid:1234>"', 'reg-id': '1', q: '0.5' })
  })

  it('refuses malformed values', () => {
    const bad = [
      '"Mr. J. User <sip:j.user@example.com>', '< sip:a@b >', 'Bell, Alexander <sip:a@b>', '<sip:a@b', 'sip:a@b?Route=x',
      '<sip:a@b>;', '<sip:a@b>;;', '<sip:a@b> junk', '', '"x"', 'nobody'
    ]
    for (const s of bad) expect(() => parseNameAddr(s), s).toThrow(SipParseError)
  })
})

describe('parseNameAddrList / parseContactHeader', () => {
  it('splits contact lists', () => {
    const list = parseNameAddrList('"A, B" <sip:a@x>;q=0.1, sip:b@y;expires=30 ,<sip:c@z;lr>')
    expect(list.map(c => c.rawUri)).toEqual(['sip:a@x', 'sip:b@y', 'sip:c@z;lr'])
    expect(list[0]!.displayName).toBe('A, B')
    expect(list[1]!.params.expires).toBe('30')
  })

  it('recognizes the * contact', () => {
    expect(parseContactHeader(' * ')).toBe('*')
    expect(() => parseContactHeader('*, <sip:a@b>')).toThrow(SipParseError)
    expect(() => parseContactHeader('"Joe" <sip:joe@example.org>;;;;')).toThrow(SipParseError)
    expect(() => parseContactHeader('<sip:a@b>,,<sip:c@d>')).toThrow(SipParseError)
  })
})

describe('formatNameAddr', () => {
  it('writes name-addrs that parse back the same', () => {
    for (const s of ['"Alice \\"A\\"" <sip:alice@example.com>;tag=1', 'sip:b@y;expires=30', '<sip:c@z;lr>;q=0.5', 'Bob <tel:+123>']) {
      const na = parseNameAddr(s)
      expect(parseNameAddr(formatNameAddr(na))).toEqual(na)
    }
    expect(formatNameAddr(parseNameAddr('sip:b@y;expires=30'))).toBe('<sip:b@y>;expires=30')
  })

  it('cannot be made to write a line break', () => {
    const na = parseNameAddr('<sip:a@b>')
    na.displayName = 'evil\r\nVia: x'
    expect(formatNameAddr(na)).toBe('"evil  Via: x" <sip:a@b>')
  })
})
