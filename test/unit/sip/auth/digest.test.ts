import { createHash, randomBytes } from 'node:crypto'
import { describe, it, expect } from 'vitest'
import { DigestAuthentication } from 'sip.js/lib/core/messages/digest-authentication.js'
import {
  AuthParameterError,
  buildChallenge,
  computeHa1,
  computeResponse,
  formatCredentials,
  parseChallenge,
  parseCredentials,
  verifyResponse
} from '../../../../src/sip/auth/index.js'
import type { DigestCredentials } from '../../../../src/sip/auth/index.js'

// RFC 2617 §3.5
const RFC2617 = {
  username: 'Mufasa',
  realm: 'testrealm@host.com',
  password: 'Circle Of Life',
  nonce: 'dcd98b7102dd2f0e8b11d0f600bfb0c093',
  uri: '/dir/index.html',
  nc: '00000001',
  cnonce: '0a4f113b',
  opaque: '5ccc069c403ebaf9f0171e9517f40e41',
  response: '6629fae49393a05397450978507c4ef1'
}
const RFC2617_HEADER = 'Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
  'uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", ' +
  'opaque="5ccc069c403ebaf9f0171e9517f40e41"'

// RFC 7616 §3.9.1
const RFC7616 = {
  username: 'Mufasa',
  realm: 'http-auth@example.org',
  password: 'Circle of Life',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  uri: '/dir/index.html',
  nc: '00000001',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  response: '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1'
}
const RFC7616_HEADER = 'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, ' +
  'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", ' +
  'qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", ' +
  'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'

const MD5_HEX = 'a'.repeat(32)

function creds (over: Partial<DigestCredentials> = {}): DigestCredentials {
  return {
    username: 'alice',
    realm: 'example.org',
    nonce: 'n0nce',
    uri: 'sip:example.org',
    response: MD5_HEX,
    algorithm: 'MD5',
    ...over
  }
}

describe('computeHa1 / computeResponse: known vectors', () => {
  it('RFC 2617 §3.5 (MD5, qop=auth)', () => {
    const ha1 = computeHa1('MD5', RFC2617.username, RFC2617.realm, RFC2617.password)
    expect(ha1).toBe('939e7578ed9e3c518a452acee763bce9')
    expect(computeResponse({ algorithm: 'MD5', ha1, nonce: RFC2617.nonce, method: 'GET', uri: RFC2617.uri, qop: 'auth', nc: 1, cnonce: RFC2617.cnonce }))
      .toBe(RFC2617.response)
    expect(computeResponse({ algorithm: 'MD5', ha1, nonce: RFC2617.nonce, method: 'GET', uri: RFC2617.uri, qop: 'auth', nc: '00000001', cnonce: RFC2617.cnonce }))
      .toBe(RFC2617.response)
  })

  it('RFC 7616 §3.9.1 (SHA-256, qop=auth)', () => {
    const ha1 = computeHa1('SHA-256', RFC7616.username, RFC7616.realm, RFC7616.password)
    expect(ha1).toHaveLength(64)
    expect(computeResponse({ algorithm: 'SHA-256', ha1, nonce: RFC7616.nonce, method: 'GET', uri: RFC7616.uri, qop: 'auth', nc: 1, cnonce: RFC7616.cnonce }))
      .toBe(RFC7616.response)
  })

  it('RFC 7616 §3.9.1 (MD5 variant of the same exchange)', () => {
    const ha1 = computeHa1('MD5', RFC7616.username, RFC7616.realm, RFC7616.password)
    expect(computeResponse({ algorithm: 'MD5', ha1, nonce: RFC7616.nonce, method: 'GET', uri: RFC7616.uri, qop: 'auth', nc: 1, cnonce: RFC7616.cnonce }))
      .toBe('8ca523f5e9506fed4657c9700eebdbec')
  })

  it('accepts an uppercase HA1', () => {
    const ha1 = computeHa1('MD5', RFC2617.username, RFC2617.realm, RFC2617.password).toUpperCase()
    expect(computeResponse({ algorithm: 'MD5', ha1, nonce: RFC2617.nonce, method: 'GET', uri: RFC2617.uri, qop: 'auth', nc: 1, cnonce: RFC2617.cnonce }))
      .toBe(RFC2617.response)
  })

  it('hashes non-ASCII as UTF-8', () => {
    const utf8 = createHash('md5').update(Buffer.from('jörg:r:p', 'utf8')).digest('hex')
    const latin1 = createHash('md5').update(Buffer.from('jörg:r:p', 'latin1')).digest('hex')
    expect(computeHa1('MD5', 'jörg', 'r', 'p')).toBe(utf8)
    expect(utf8).not.toBe(latin1)
  })

  it('throws a named error when qop=auth lacks nc or cnonce', () => {
    expect(() => computeResponse({ algorithm: 'MD5', ha1: MD5_HEX, nonce: 'n', method: 'REGISTER', uri: 'sip:x', qop: 'auth', nc: 1 }))
      .toThrow(AuthParameterError)
    expect(() => computeResponse({ algorithm: 'MD5', ha1: MD5_HEX, nonce: 'n', method: 'REGISTER', uri: 'sip:x', qop: 'auth', cnonce: 'c' }))
      .toThrow(AuthParameterError)
    expect(() => computeResponse({ algorithm: 'MD5', ha1: MD5_HEX, nonce: 'n', method: 'REGISTER', uri: 'sip:x', qop: 'auth', nc: 0, cnonce: 'c' }))
      .toThrow(AuthParameterError)
  })
})

describe('parseCredentials + verifyResponse', () => {
  it('parses and verifies the RFC 2617 example', () => {
    const c = parseCredentials(RFC2617_HEADER)
    expect(c).toEqual({
      username: 'Mufasa',
      realm: 'testrealm@host.com',
      nonce: RFC2617.nonce,
      uri: '/dir/index.html',
      response: RFC2617.response,
      algorithm: 'MD5',
      qop: 'auth',
      nc: '00000001',
      ncValue: 1,
      cnonce: '0a4f113b',
      opaque: RFC2617.opaque
    })
    const ha1 = computeHa1('MD5', RFC2617.username, RFC2617.realm, RFC2617.password)
    expect(verifyResponse(c!, ha1, 'GET')).toBe(true)
    expect(verifyResponse(c!, ha1, 'POST')).toBe(false)
    expect(verifyResponse(c!, computeHa1('MD5', 'Mufasa', RFC2617.realm, 'wrong'), 'GET')).toBe(false)
  })

  it('parses and verifies the RFC 7616 SHA-256 example', () => {
    const c = parseCredentials(RFC7616_HEADER)
    expect(c?.algorithm).toBe('SHA-256')
    expect(c?.opaque).toBe(RFC7616.opaque)
    const ha1 = computeHa1('SHA-256', RFC7616.username, RFC7616.realm, RFC7616.password)
    expect(verifyResponse(c!, ha1, 'GET')).toBe(true)
    // an MD5 HA1 cannot verify SHA-256 credentials
    expect(verifyResponse(c!, computeHa1('MD5', RFC7616.username, RFC7616.realm, RFC7616.password), 'GET')).toBe(false)
  })

  it('verifies RFC 2069 credentials (no qop) unless qop is required', () => {
    const ha1 = computeHa1('MD5', 'alice', 'example.org', 'secret')
    const response = computeResponse({ algorithm: 'MD5', ha1, nonce: 'abc', method: 'REGISTER', uri: 'sip:example.org' })
    const c = parseCredentials(`Digest username="alice",realm="example.org",nonce="abc",uri="sip:example.org",response="${response}"`)
    expect(c).not.toBeNull()
    expect(c?.qop).toBeUndefined()
    expect(verifyResponse(c!, ha1, 'REGISTER')).toBe(true)
    expect(verifyResponse(c!, ha1, 'REGISTER', { requireQop: true })).toBe(false)
  })

  it('refuses qop=auth-int', () => {
    const c = parseCredentials('Digest username="a", realm="r", nonce="n", uri="sip:r", response="' + MD5_HEX + '", qop=auth-int, nc=00000001, cnonce="c"')
    expect(c?.qop).toBe('auth-int')
    expect(verifyResponse(c!, MD5_HEX, 'REGISTER')).toBe(false)
  })

  it('returns false for a malformed HA1 or response instead of throwing', () => {
    expect(verifyResponse(creds(), 'xyz', 'REGISTER')).toBe(false)
    expect(verifyResponse(creds(), 'g'.repeat(32), 'REGISTER')).toBe(false)
    expect(verifyResponse(creds({ response: 'short' }), MD5_HEX, 'REGISTER')).toBe(false)
    expect(verifyResponse(creds({ qop: 'auth' }), MD5_HEX, 'REGISTER')).toBe(false)
  })

  it('accepts an uppercase response from a client', () => {
    const c = parseCredentials(RFC2617_HEADER.replace(RFC2617.response, RFC2617.response.toUpperCase()))
    expect(c?.response).toBe(RFC2617.response)
    expect(verifyResponse(c!, computeHa1('MD5', RFC2617.username, RFC2617.realm, RFC2617.password), 'GET')).toBe(true)
  })
})

describe('parseCredentials: syntax', () => {
  const base = { username: 'alice', realm: 'example.org', nonce: 'abc', uri: 'sip:example.org', response: MD5_HEX, algorithm: 'MD5' }

  it('is case-insensitive in scheme and parameter names, and in algorithm', () => {
    expect(parseCredentials(`dIgEsT USERNAME="alice", Realm="example.org", NONCE="abc", Uri="sip:example.org", Response="${MD5_HEX}", ALGORITHM=md5`))
      .toEqual(base)
    expect(parseCredentials(`Digest username="alice", realm="example.org", nonce="abc", uri="sip:example.org", response="${'b'.repeat(64)}", algorithm=sha-256`)?.algorithm)
      .toBe('SHA-256')
  })

  it('tolerates spacing, tabs, empty list elements and quoted tokens', () => {
    const v = `  Digest\tusername = "alice" ,realm= "example.org",, nonce ="abc"  ,\turi="sip:example.org",response = "${MD5_HEX}" , algorithm="MD5",  `
    expect(parseCredentials(v)).toEqual(base)
    const q = parseCredentials(`Digest username="a", realm="r", nonce="n", uri="sip:r", response="${MD5_HEX}", qop="auth", nc=0000000a, cnonce="c"`)
    expect(q?.qop).toBe('auth')
    expect(q?.ncValue).toBe(10)
  })

  it('accepts unquoted values from lenient clients', () => {
    const c = parseCredentials(`Digest username=alice, realm=example.org, nonce=abc, uri=sip:alice@example.org;transport=udp, response=${MD5_HEX}`)
    expect(c?.username).toBe('alice')
    expect(c?.uri).toBe('sip:alice@example.org;transport=udp')
  })

  it('unescapes quoted-pairs', () => {
    const c = parseCredentials(`Digest username="a\\"b\\\\c", realm="r, \\"x\\"", nonce="abc", uri="sip:r", response="${MD5_HEX}"`)
    expect(c?.username).toBe('a"b\\c')
    expect(c?.realm).toBe('r, "x"')
  })

  it('keeps commas and equals signs inside quoted values', () => {
    const c = parseCredentials(`Digest username="a=b,c", realm="r", nonce="abc", uri="sip:r;a=b,c", response="${MD5_HEX}"`)
    expect(c?.username).toBe('a=b,c')
    expect(c?.uri).toBe('sip:r;a=b,c')
  })

  it('keeps non-ASCII usernames', () => {
    expect(parseCredentials(`Digest username="jörg", realm="r", nonce="abc", uri="sip:r", response="${MD5_HEX}"`)?.username).toBe('jörg')
  })

  it('ignores unknown parameters', () => {
    const c = parseCredentials(`Digest username="alice", realm="example.org", nonce="abc", uri="sip:example.org", response="${MD5_HEX}", foo=bar, baz="q,x", charset=UTF-8, userhash=false`)
    expect(c).toEqual(base)
  })

  it.each([
    ['another scheme', `Basic YWxhZGRpbjpvcGVuc2VzYW1l`],
    ['scheme only', 'Digest'],
    ['scheme glued to params', `Digestusername="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['empty', ''],
    ['a duplicate parameter', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", Realm="s"`],
    ['missing username', `Digest realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['empty username', `Digest username="", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['missing realm', `Digest username="a", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['missing nonce', `Digest username="a", realm="r", uri="u", response="${MD5_HEX}"`],
    ['missing uri', `Digest username="a", realm="r", nonce="n", response="${MD5_HEX}"`],
    ['missing response', `Digest username="a", realm="r", nonce="n", uri="u"`],
    ['a response that is not hex', `Digest username="a", realm="r", nonce="n", uri="u", response="${'z'.repeat(32)}"`],
    ['an MD5-length response with SHA-256', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", algorithm=SHA-256`],
    ['MD5-sess', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", algorithm=MD5-sess, qop=auth, nc=00000001, cnonce="c"`],
    ['SHA-256-sess', `Digest username="a", realm="r", nonce="n", uri="u", response="${'a'.repeat(64)}", algorithm=SHA-256-sess`],
    ['an unknown algorithm', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", algorithm=SHA-1`],
    ['qop without nc', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", qop=auth, cnonce="c"`],
    ['qop without cnonce', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", qop=auth, nc=00000001`],
    ['a short nc', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", qop=auth, nc=1, cnonce="c"`],
    ['a non-hex nc', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", qop=auth, nc=0000000g, cnonce="c"`],
    ['an unknown qop', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", qop=auth-conf, nc=00000001, cnonce="c"`],
    ['userhash=true', `Digest username="${'a'.repeat(64)}", realm="r", nonce="n", uri="u", response="${MD5_HEX}", userhash=true`],
    ['an unterminated quote', `Digest username="a, realm="r", nonce="n", uri="u", response="${MD5_HEX}`],
    ['a trailing backslash in a quote', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", opaque="x\\`],
    ['a missing value', `Digest username=, realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['a missing equals sign', `Digest username "a", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['two values without a comma', `Digest username="a" realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['a quote inside a token', `Digest username=a"b", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['a control character in a quoted value', `Digest username="a\u0000", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['a line break in a quoted value', `Digest username="a\r\nVia: x", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`],
    ['a second credentials set', `Digest username="a", realm="r", nonce="n", uri="u", response="${MD5_HEX}", Digest username="b"`],
    ['an oversized value', `Digest username="${'a'.repeat(10_000)}", realm="r", nonce="n", uri="u", response="${MD5_HEX}"`]
  ])('returns null for %s', (_name, value) => {
    expect(parseCredentials(value)).toBeNull()
  })

  it('returns null for non-string input', () => {
    expect(parseCredentials(undefined as unknown as string)).toBeNull()
    expect(parseCredentials(42 as unknown as string)).toBeNull()
  })

  it('never throws on random input', () => {
    const valid = RFC2617_HEADER
    const alphabet = 'Digest =,"\\\t\r\nabcAZ09-_:;@\u0000\u00ff\u{1F600}'
    let seed = 12345
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    const start = Date.now()
    for (let k = 0; k < 20_000; k++) {
      let s: string
      switch (k % 4) {
        case 0: // random characters after the scheme
          s = 'Digest ' + Array.from({ length: rnd(80) }, () => alphabet[rnd(alphabet.length)]).join('')
          break
        case 1: { // mutate one character of a valid header
          const i = rnd(valid.length)
          s = valid.slice(0, i) + alphabet[rnd(alphabet.length)] + valid.slice(i + 1)
          break
        }
        case 2: // truncate a valid header
          s = valid.slice(0, rnd(valid.length))
          break
        default: // random bytes as latin1
          s = randomBytes(rnd(200)).toString('latin1')
      }
      const c = parseCredentials(s)
      if (c !== null) {
        expect(typeof c.username).toBe('string')
        expect(verifyResponse(c, MD5_HEX, 'REGISTER')).toBeTypeOf('boolean')
      }
      expect(parseChallenge(s) === null || typeof parseChallenge(s)?.nonce === 'string').toBe(true)
    }
    expect(Date.now() - start).toBeLessThan(5_000)
  })
})

describe('buildChallenge / parseChallenge', () => {
  it('builds the documented shape', () => {
    expect(buildChallenge({ realm: 'example.org', nonce: 'abc', algorithm: 'SHA-256' }))
      .toBe('Digest realm="example.org", nonce="abc", algorithm=SHA-256, qop="auth"')
    expect(buildChallenge({ realm: 'example.org', nonce: 'abc', algorithm: 'MD5', stale: true, opaque: 'op' }))
      .toBe('Digest realm="example.org", nonce="abc", opaque="op", algorithm=MD5, qop="auth", stale=true')
    expect(buildChallenge({ realm: 'example.org', nonce: 'abc', algorithm: 'MD5', stale: false, qop: false }))
      .toBe('Digest realm="example.org", nonce="abc", algorithm=MD5')
  })

  it('escapes quotes and backslashes, and round-trips through parseChallenge', () => {
    const v = buildChallenge({ realm: 'a "b" \\c', nonce: 'n', algorithm: 'MD5', stale: true, opaque: 'o' })
    expect(v).toContain('realm="a \\"b\\" \\\\c"')
    expect(parseChallenge(v)).toEqual({ realm: 'a "b" \\c', nonce: 'n', algorithm: 'MD5', qop: ['auth'], stale: true, opaque: 'o' })
  })

  it('refuses control characters with a named error', () => {
    expect(() => buildChallenge({ realm: 'a\r\nb', nonce: 'n', algorithm: 'MD5' })).toThrow(AuthParameterError)
    expect(() => buildChallenge({ realm: 'a', nonce: 'n\u0000', algorithm: 'MD5' })).toThrow(AuthParameterError)
  })

  it('parses challenges from other servers', () => {
    expect(parseChallenge('Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int", nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'))
      .toEqual({ realm: 'atlanta.com', domain: 'sip:ss1.carrier.com', qop: ['auth', 'auth-int'], nonce: 'f84f1cec41e6cbe5aea9c8e88d359', opaque: '', stale: false, algorithm: 'MD5' })
    expect(parseChallenge('Digest realm="x", nonce="y"')).toEqual({ realm: 'x', nonce: 'y', algorithm: 'MD5', qop: [], stale: false })
    expect(parseChallenge('Digest realm="x", nonce="y", algorithm=SHA-512-256')).toBeNull()
    expect(parseChallenge('Digest realm="x"')).toBeNull()
    expect(parseChallenge('Basic realm="x"')).toBeNull()
  })
})

describe('formatCredentials', () => {
  it('writes credentials that parse back and verify (client side)', () => {
    const ha1 = computeHa1('SHA-256', 'bob', 'example.org', 'pw')
    const ch = parseChallenge(buildChallenge({ realm: 'example.org', nonce: 'nn', algorithm: 'SHA-256', opaque: 'op' }))!
    const response = computeResponse({ algorithm: ch.algorithm, ha1, nonce: ch.nonce, method: 'REGISTER', uri: 'sip:example.org', qop: 'auth', nc: 3, cnonce: 'cn' })
    const header = formatCredentials({ username: 'bob', realm: ch.realm, nonce: ch.nonce, uri: 'sip:example.org', response, algorithm: ch.algorithm, qop: 'auth', nc: '00000003', cnonce: 'cn', opaque: ch.opaque! })
    expect(header).toBe(`Digest username="bob", realm="example.org", nonce="nn", uri="sip:example.org", response="${response}", algorithm=SHA-256, qop=auth, nc=00000003, cnonce="cn", opaque="op"`)
    const c = parseCredentials(header)!
    expect(c.ncValue).toBe(3)
    expect(verifyResponse(c, ha1, 'REGISTER')).toBe(true)
  })

  it('refuses qop without nc or cnonce', () => {
    expect(() => formatCredentials({ ...creds(), qop: 'auth' })).toThrow(AuthParameterError)
    expect(() => formatCredentials({ ...creds(), qop: 'auth', nc: '1', cnonce: 'c' })).toThrow(AuthParameterError)
  })
})

describe('cross-check with sip.js DigestAuthentication', () => {
  const loggerFactory = { getLogger: () => ({ warn () {}, log () {}, debug () {}, error () {} }) }

  function sipjs (challenge: Record<string, unknown>, method: string, ruri: string, password: string): string {
    const d = new DigestAuthentication(loggerFactory as never, undefined, 'alice', password)
    expect(d.authenticate({ method, ruri } as never, challenge)).toBe(true)
    return d.toString()
  }

  it('verifies sip.js MD5 credentials with qop=auth', () => {
    const ha1 = computeHa1('MD5', 'alice', 'example.org', 's3cret')
    for (let i = 0; i < 5; i++) {
      const header = sipjs({ realm: 'example.org', nonce: `nonce${i}`, algorithm: 'MD5', qop: 'auth', opaque: 'op' }, 'REGISTER', 'sip:example.org', 's3cret')
      const c = parseCredentials(header)
      expect(c).not.toBeNull()
      expect(c?.opaque).toBe('op')
      expect(verifyResponse(c!, ha1, 'REGISTER')).toBe(true)
      expect(verifyResponse(c!, computeHa1('MD5', 'alice', 'example.org', 'other'), 'REGISTER')).toBe(false)
    }
  })

  it('verifies sip.js MD5 credentials without qop (RFC 2069)', () => {
    const ha1 = computeHa1('MD5', 'alice', 'example.org', 's3cret')
    const header = sipjs({ realm: 'example.org', nonce: 'xyz' }, 'INVITE', 'sip:bob@example.org', 's3cret')
    const c = parseCredentials(header)!
    expect(c.qop).toBeUndefined()
    expect(verifyResponse(c, ha1, 'INVITE')).toBe(true)
    expect(verifyResponse(c, ha1, 'REGISTER')).toBe(false)
  })
})
