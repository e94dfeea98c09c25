import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../../src/core/errors.js'
import { parseTomlText, validate } from '../../../src/config/index.js'

describe('[pbx] and [[upstream]] config', () => {
  it('reads [[upstream]] arrays of tables with defaults', () => {
    const cfg = validate(parseTomlText([
      '[pbx]', 'did_providers = ["203.0.113.5"]', 'distribution = "roundrobin"',
      '[[upstream]]', 'server = "sip.provider.example:5070"', 'username = "15551234567"', 'password = "secret"',
      '[[upstream]]', 'server = "192.0.2.1"', 'username = "acct"', 'password = "pw"', 'expiry = 600', 'transport = "tcp"'
    ].join('\n')))
    expect(cfg.pbx.didProviders).toEqual(['203.0.113.5'])
    expect(cfg.upstream).toHaveLength(2)
    expect(cfg.upstream[0]).toMatchObject({ server: 'sip.provider.example:5070', username: '15551234567', expiry: 3600, transport: 'udp', authUsername: '' })
    expect(cfg.upstream[1]).toMatchObject({ expiry: 600, transport: 'tcp' })
    expect(validate({}).upstream).toEqual([])
  })

  it('names the field of a bad entry', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ upstream: { server: 'x' } }, 'upstream'],
      [{ upstream: [{ server: 'a.example', username: 'u' }] }, 'upstream[0].password'],
      [{ upstream: [{ server: 'a.example', username: 'u', password: 'p', expiry: 5 }] }, 'upstream[0].expiry'],
      [{ upstream: [{ server: 'a.example', username: 'u', password: 'p', transport: 'sctp' }] }, 'upstream[0].transport'],
      [{ upstream: [{ server: 'a.example', username: 'u', password: 'p', frob: 1 }] }, 'upstream[0].frob'],
      [{ upstream: [{ server: 'has space', username: 'u', password: 'p' }] }, 'upstream[0].server'],
      [{ pbx: { did_providers: ['provider.example'] } }, 'pbx.did_providers'],
      [{ pbx: { distribution: 'random' } }, 'pbx.distribution']
    ]
    for (const [raw, path] of bad) {
      let err: unknown
      try { validate(raw) } catch (e) { err = e }
      expect(err, path).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).path, path).toBe(path)
    }
  })
})
