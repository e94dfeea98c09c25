import { describe, it, expect } from 'vitest'
import { EgressPolicy, parseCidr, parseIp } from '../../../../src/sip/transport/egress.js'
import { InvalidCidrError } from '../../../../src/sip/transport/errors.js'

describe('parseIp', () => {
  it('parses IPv4 as IPv4-mapped IPv6', () => {
    expect([...parseIp('127.0.0.1') as Uint8Array]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1])
    expect(parseIp('::ffff:127.0.0.1')).toEqual(parseIp('127.0.0.1'))
    expect(parseIp('::ffff:7f00:1')).toEqual(parseIp('127.0.0.1'))
  })

  it('parses IPv6 forms', () => {
    expect([...parseIp('::1') as Uint8Array]).toEqual([...new Array(15).fill(0), 1])
    expect([...parseIp('::') as Uint8Array]).toEqual(new Array(16).fill(0))
    expect(parseIp('2001:db8::1')).toEqual(parseIp('2001:0db8:0:0:0:0:0:0001'))
    expect(parseIp('[2001:db8::1]')).toEqual(parseIp('2001:db8::1'))
    expect(parseIp('fe80::1%eth0')).toEqual(parseIp('fe80::1'))
    expect(parseIp('1:2:3:4:5:6:1.2.3.4')).toBeDefined()
    expect(parseIp('1::')).toBeDefined()
  })

  it('refuses anything that is not an IP literal', () => {
    for (const s of ['', 'example.com', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', ':::', '1::2::3',
      '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', ':1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::', '::1.2.3']) {
      expect(parseIp(s), s).toBeUndefined()
    }
  })
})

describe('parseCidr', () => {
  it('clears host bits and maps IPv4 prefixes', () => {
    expect(parseCidr('10.1.2.3/8')).toEqual(parseCidr('10.0.0.0/8'))
    expect(parseCidr('10.0.0.0/8').prefix).toBe(104)
    expect(parseCidr('::1').prefix).toBe(128)
    expect(parseCidr('192.0.2.7').prefix).toBe(128)
  })

  it('throws InvalidCidrError for bad input', () => {
    for (const s of ['10.0.0.0/33', '::/129', 'foo/8', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8/8']) {
      expect(() => parseCidr(s), s).toThrow(InvalidCidrError)
    }
    expect(EgressPolicy.validate(['127.0.0.0/8', 'nope'])?.cidr).toBe('nope')
    expect(EgressPolicy.validate(['127.0.0.0/8'])).toBeUndefined()
  })
})

describe('EgressPolicy', () => {
  it('allows any unicast destination by default', () => {
    const p = new EgressPolicy()
    for (const a of ['127.0.0.1', '192.0.2.1', '10.0.0.1', '::1', '2001:db8::1', '[2001:db8::2]', '::ffff:10.0.0.1']) {
      expect(p.allows(a), a).toBe(true)
    }
  })

  it('never allows unspecified, multicast, broadcast or host names', () => {
    const p = new EgressPolicy()
    for (const a of ['0.0.0.0', '0.1.2.3', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::', 'ff02::1', '::ffff:0.0.0.0', 'example.com', '']) {
      expect(p.allows(a), a).toBe(false)
    }
  })

  it('restricts to the allow list, IPv4-mapped addresses included', () => {
    const p = new EgressPolicy(['127.0.0.0/8', '::1/128', '10.20.0.0/15'])
    expect(p.allows('127.0.0.1')).toBe(true)
    expect(p.allows('127.255.255.254')).toBe(true)
    expect(p.allows('::ffff:127.0.0.1')).toBe(true)
    expect(p.allows('::1')).toBe(true)
    expect(p.allows('::2')).toBe(false)
    expect(p.allows('128.0.0.1')).toBe(false)
    expect(p.allows('10.20.1.1')).toBe(true)
    expect(p.allows('10.21.255.255')).toBe(true)
    expect(p.allows('10.22.0.0')).toBe(false)
    expect(p.allows('192.0.2.1')).toBe(false)
  })

  it('keeps IPv4 and IPv6 "any" separate', () => {
    const v4 = new EgressPolicy(['0.0.0.0/0'])
    expect(v4.allows('192.0.2.1')).toBe(true)
    expect(v4.allows('2001:db8::1')).toBe(false)
    const v6 = new EgressPolicy(['2000::/3'])
    expect(v6.allows('2001:db8::1')).toBe(true)
    expect(v6.allows('192.0.2.1')).toBe(false)
    expect(v6.allows('fd00::1')).toBe(false)
  })

  it('allows nothing with an empty list', () => {
    expect(new EgressPolicy([]).allows('127.0.0.1')).toBe(false)
  })
})
