import { describe, expect, it } from 'vitest'
import { BadQueryError, matches, queryWords, tokensOf, words } from '../../../src/directory/index.js'

describe('search words and tokens', () => {
  it('splits logins and display names into words', () => {
    expect(words('Coca-Cola Company')).toEqual(['coca', 'cola', 'company'])
    expect(words('coca.cola')).toEqual(['coca', 'cola'])
    expect(words('Müller GmbH')).toEqual(['müller', 'gmbh'])
  })
  it('tokens are the 3..12 character prefixes of every word', () => {
    const t = tokensOf('coca-cola', 'Coca-Cola Company')
    expect(t).toContain('coc')
    expect(t).toContain('coca')
    expect(t).toContain('compan')
    expect(t).not.toContain('co')
    expect(tokensOf('x', 'abcdefghijklmnopq')).toContain('abcdefghijkl')
    expect(tokensOf('x', 'abcdefghijklmnopq')).not.toContain('abcdefghijklm')
  })
  it('matches when every query word prefixes a word', () => {
    expect(matches(['coca'], 'coca-cola', '')).toBe(true)
    expect(matches(['cola', 'comp'], 'coca-cola', 'Coca-Cola Company')).toBe(true)
    expect(matches(['pepsi'], 'coca-cola', 'Coca-Cola Company')).toBe(false)
  })
  it('refuses short and long queries', () => {
    expect(() => queryWords('co')).toThrow(BadQueryError)
    expect(() => queryWords('x'.repeat(200))).toThrow(BadQueryError)
    expect(queryWords('co coca a cola')).toEqual(['coca', 'cola'])
  })
})
