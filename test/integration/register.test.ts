import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { rm } from 'node:fs/promises'
import { startNode, type TestNode } from '../helpers/node.js'
import { SipTestUa } from '../helpers/sip-ua.js'
import { getHeader, getHeaders } from '../../src/sip/message/index.js'

describe('registrar over real sockets', () => {
  let n: TestNode
  const uas: SipTestUa[] = []
  const ua = async (t: 'UDP' | 'TCP' = 'UDP'): Promise<SipTestUa> => {
    const u = new SipTestUa(t, t === 'UDP' ? n.udp : n.tcp)
    await u.open()
    uas.push(u)
    return u
  }

  beforeEach(async () => {
    n = await startNode({ config: { auth: { max_failures: 3, algorithms: ['SHA-256', 'MD5'] } } })
    await n.node.users.add({ login: 'alice', password: 'secret-a' })
    await n.node.users.add({ login: 'bob', password: 'secret-b' })
  })
  afterEach(async () => {
    for (const u of uas.splice(0)) u.close()
    await n.stop()
  })

  it('challenges, then registers with MD5 over UDP', async () => {
    const u = await ua()
    const { challenge, final } = await u.registerWithAuth('alice', 'secret-a', { expires: 600 })
    expect(challenge.status).toBe(401)
    const challenges = getHeaders(challenge, 'WWW-Authenticate')
    expect(challenges[0]).toMatch(/algorithm=SHA-256/)
    expect(challenges[1]).toMatch(/algorithm=MD5/)
    expect(final.status).toBe(200)
    expect(getHeader(final, 'Contact')).toMatch(new RegExp(`<sip:alice@127.0.0.1:${u.localPort};transport=udp>;expires=600`))
    // RFC 3581: the node stamped received/rport and answered to the source port
    expect(final.vias[0]?.params.rport).toBe(String(u.localPort))
    expect(n.node.location.lookup('alice')).toHaveLength(1)
  })

  it('registers with SHA-256 over TCP', async () => {
    const u = await ua('TCP')
    const { final } = await u.registerWithAuth('bob', 'secret-b', { algorithm: 'SHA-256' })
    expect(final.status).toBe(200)
    const [b] = n.node.location.lookup('bob')
    expect(b?.flow.transport).toBe('TCP')
    expect(getHeader(final, 'Contact')).toMatch(/expires=3600/)
  })

  it('answers a wrong password and an unknown login alike, then blocks', async () => {
    const u = await ua()
    const wrong = await u.registerWithAuth('alice', 'nope')
    const unknown = await u.registerWithAuth('mallory', 'nope')
    expect(wrong.final.status).toBe(401)
    expect(unknown.final.status).toBe(401)
    expect(getHeaders(wrong.final, 'WWW-Authenticate').length).toBe(getHeaders(unknown.final, 'WWW-Authenticate').length)
    // max_failures = 3 per source address: the third failure blocks it
    const third = await u.registerWithAuth('alice', 'nope')
    expect(third.final.status).toBe(403)
    const blocked = await u.request(u.register('alice'))
    expect(blocked.status).toBe(403)
  })

  it('holds several devices per login, ordered by q, and removes them with *', async () => {
    const phone = await ua()
    const soft = await ua('TCP')
    expect((await phone.registerWithAuth('alice', 'secret-a', { contact: `<sip:alice@127.0.0.1:${phone.localPort}>;q=0.5` })).final.status).toBe(200)
    const { final } = await soft.registerWithAuth('alice', 'secret-a', { contact: `<sip:alice@127.0.0.1:${soft.localPort};transport=tcp>;q=0.9` })
    expect(final.status).toBe(200)
    expect(getHeaders(final, 'Contact')).toHaveLength(2)
    expect(n.node.location.lookup('alice').map(b => b.q)).toEqual([900, 500])
    const { final: removed } = await phone.registerWithAuth('alice', 'secret-a', { contact: '*', expires: 0 })
    expect(removed.status).toBe(200)
    expect(getHeaders(removed, 'Contact')).toHaveLength(0)
    expect(n.node.location.lookup('alice')).toHaveLength(0)
  })

  it('unregisters one contact with Expires: 0 and refuses too brief intervals with 423', async () => {
    const u = await ua()
    expect((await u.registerWithAuth('alice', 'secret-a')).final.status).toBe(200)
    const brief = await u.registerWithAuth('alice', 'secret-a', { expires: 5 })
    expect(brief.final.status).toBe(423)
    expect(getHeader(brief.final, 'Min-Expires')).toBe('60')
    expect((await u.registerWithAuth('alice', 'secret-a', { expires: 0 })).final.status).toBe(200)
    expect(n.node.location.lookup('alice')).toHaveLength(0)
  })

  it('refuses to register another login\'s AOR', async () => {
    const u = await ua()
    const challenge = await u.request(u.register('bob'))
    // alice's credentials for bob's AOR
    const auth = u.authorize(challenge, 'alice', 'secret-a', 'REGISTER', 'sip:127.0.0.1')
    const res = await u.request(u.register('bob', { authorization: auth }))
    expect(res.status).toBe(403)
  })

  it('keeps bindings across a restart', async () => {
    const u = await ua()
    expect((await u.registerWithAuth('alice', 'secret-a')).final.status).toBe(200)
    const dataDir = n.dataDir
    await n.node.stop()
    const again = await startNode({ dataDir })
    try {
      expect(again.node.location.lookup('alice')).toHaveLength(1)
      expect(await again.node.users.get('alice')).toBeDefined()
    } finally {
      await again.stop()
      await rm(dataDir, { recursive: true, force: true })
      n = await startNode()
    }
  })

  it('answers OPTIONS with what the node allows', async () => {
    const u = await ua()
    const res = await u.request([
      'OPTIONS sip:127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${u.localPort};branch=z9hG4bKopt1`,
      'Max-Forwards: 70', 'From: <sip:ping@127.0.0.1>;tag=1', 'To: <sip:127.0.0.1>', 'Call-ID: opt1', 'CSeq: 1 OPTIONS',
      'Content-Length: 0', '', ''
    ].join('\r\n'))
    expect(res.status).toBe(200)
    expect(getHeader(res, 'Allow')).toMatch(/REGISTER/)
    expect(getHeader(res, 'Accept')).toBeDefined()
  })

  it('answers malformed requests with 400 and stays up', async () => {
    const u = await ua()
    const res = await u.request([
      'REGISTER sip:127.0.0.1 SIP/2.0',
      `Via: SIP/2.0/UDP 127.0.0.1:${u.localPort};branch=z9hG4bKbad1`,
      'From: <sip:alice@127.0.0.1>;tag=1', 'To: <sip:alice@127.0.0.1>', 'Call-ID: bad1', 'CSeq: 1 REGISTER',
      'Max-Forwards: 70', 'Expires: soon', 'Content-Length: 0', '', ''
    ].join('\r\n'))
    expect(res.status).toBe(400)
    u.sendRaw('\x00\x01garbage that is not SIP\r\n\r\n')
    expect((await u.registerWithAuth('alice', 'secret-a')).final.status).toBe(200)
  })

  it('serves /health and /metrics', async () => {
    const u = await ua()
    await u.registerWithAuth('alice', 'secret-a')
    expect((await fetch(`${n.web}/health`)).status).toBe(200)
    const text = await (await fetch(`${n.web}/metrics`)).text()
    expect(text).toMatch(/m1node_registrar_bindings 1/)
    expect(text).toMatch(/m1node_registrar_requests_total\{result="ok"\} 1/)
    expect(text).toMatch(/m1node_sip_requests_total\{method="REGISTER"\} 2/)
    expect(text).toMatch(/m1node_sip_transactions_in_flight/)
    const api = await fetch(`${n.web}/api/status`)
    expect(api.status).toBe(401)
  })
})
