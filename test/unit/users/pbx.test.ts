import { describe, expect, it } from 'vitest'
import { checkE164, didOf, parseTrunkUser } from '../../../src/users/index.js'
import { dialEscape, withUser } from '../../../src/routing/index.js'

describe('PBX names', () => {
  it('trunk usernames are <login>_<name>', () => {
    expect(parseTrunkUser('acme_office-pbx')).toEqual({ login: 'acme', name: 'office-pbx' })
    expect(parseTrunkUser('ACME_Office-PBX')).toEqual({ login: 'acme', name: 'office-pbx' })
    expect(parseTrunkUser('acme')).toBeUndefined()
    expect(parseTrunkUser('_x')).toBeUndefined()
    expect(parseTrunkUser('acme_')).toBeUndefined()
    expect(parseTrunkUser('acme_bad name')).toBeUndefined()
  })

  it('E.164 numbers: + and 1-15 digits', () => {
    expect(checkE164('+15551234567')).toBe('+15551234567')
    expect(checkE164('+1 555 123-4567')).toBe('+15551234567')
    for (const bad of ['15551234567', '+', '+1234567890123456', '+1555abc', '']) expect(() => checkE164(bad), bad).toThrow(/E\.164/)
    expect(didOf('+15551234567')).toBe('+15551234567')
    expect(didOf('15551234567')).toBe('+15551234567')
    expect(didOf('201')).toBeUndefined()
  })

  it('contacts keep host, port and parameters when the user part changes; the dial escape splits login*node', () => {
    expect(withUser('sip:s@192.0.2.1:5060;line=abc', '201')).toBe('sip:201@192.0.2.1:5060;line=abc')
    expect(withUser('sip:192.0.2.1;transport=tcp', '201')).toBe('sip:201@192.0.2.1;transport=tcp')
    expect(dialEscape('bob*othernode')).toEqual({ login: 'bob', node: 'othernode' })
    expect(dialEscape('12345')).toBeUndefined()
  })
})
