import { describe, expect, it } from 'vitest'
import { readFile } from 'node:fs/promises'
import { ConfigError } from '../../../src/core/errors.js'
import { configTableRows, exampleToml, loadConfig, parseTomlText, validate, fields } from '../../../src/config/index.js'

const root = new URL('../../../', import.meta.url)

describe('config schema', () => {
  it('config.example.toml is exactly what the schema generates, and parses to the defaults', async () => {
    const committed = await readFile(new URL('config.example.toml', root), 'utf8')
    expect(committed).toBe(exampleToml())
    expect(validate(parseTomlText(committed))).toEqual(validate({}))
  })

  it('docs/config.md lists every key with its default, and no other', async () => {
    const doc = await readFile(new URL('docs/config.md', root), 'utf8')
    const rows = doc.split('\n').filter(l => /^\| `[a-z0-9_.]+` \|/.test(l))
    expect(rows).toEqual(configTableRows())
    expect(rows).toHaveLength(fields().length)
  })

  it('names the key path of a bad value', () => {
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ sip: { udp_port: 70000 } }, 'sip.udp_port'],
      [{ sip: { udp_port: '5060' } }, 'sip.udp_port'],
      [{ sip: { transports: ['udp', 'sctp'] } }, 'sip.transports'],
      [{ sip: { egress_allow: ['10.0.0.1'] } }, 'sip.egress_allow'],
      [{ sip: { frob: 1 } }, 'sip.frob'],
      [{ frob: {} }, 'frob'],
      [{ log: { level: 'loud' } }, 'log.level'],
      [{ registrar: { min_expires: 600, max_expires: 60 } }, 'registrar.min_expires'],
      [{ auth: { algorithms: [] } }, 'auth.algorithms'],
      [{ node: { name: 'Has Space' } }, 'node.name'],
      [{ node: { name: 'a..b' } }, 'node.name'],
      [{ media: { port_min: 30000, port_max: 30001 } }, 'media.port_min']
    ]
    for (const [raw, path] of bad) {
      let err: unknown
      try { validate(raw) } catch (e) { err = e }
      expect(err, path).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).path).toBe(path)
    }
  })

  it('environment wins over the file, flags over the environment', async () => {
    const cfg = await loadConfig({
      env: { M1NODE_SIP_UDP_PORT: '5070', M1NODE_SIP_TRANSPORTS: 'udp, tcp', M1NODE_STORE_SYNC: 'yes', M1NODE_LOG_LEVEL: 'debug' },
      overrides: { 'log.level': 'warn' }
    })
    expect(cfg.sip.udpPort).toBe(5070)
    expect(cfg.sip.transports).toEqual(['udp', 'tcp'])
    expect(cfg.store.sync).toBe(true)
    expect(cfg.log.level).toBe('warn')
    expect(Object.isFrozen(cfg.sip)).toBe(true)
    await expect(loadConfig({ env: { M1NODE_STORE_SYNC: 'maybe' } })).rejects.toThrow(/store\.sync/)
  })

  it('reports TOML syntax errors with their line', () => {
    expect(() => parseTomlText('[sip]\nudp_port = = 1\n', 'x.toml')).toThrow(/x\.toml: line 2/)
  })
})
