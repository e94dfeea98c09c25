import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSocket, type Socket } from 'node:dgram'
import { startNode, type TestNode } from '../helpers/node.js'
import { Phone, registerContact } from '../helpers/phone.js'
import { waitForRecords } from '../helpers/records.js'
import { createResponse, getHeader, parseMessage, serialize, type SipRequest, type SipResponse } from '../../src/sip/message/index.js'
import { buildChallenge } from '../../src/sip/auth/index.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

const CONFIG = {
  media: { anchor: 'never' },
  routing: { ring_timeout: 10 },
  p2p: { enabled: false },
  pbx: { did_providers: ['127.0.0.2'], failover_timeout: 1 }
}

describe('PBX trunks, extensions and DIDs', () => {
  let n: TestNode
  const phones: Phone[] = []
  const phone = async (login: string, password: string, local = '127.0.0.1'): Promise<Phone> => {
    const p = new Phone(login, password, { port: n.udp, domain: 'pbx-node' }, local)
    await p.open()
    phones.push(p)
    return p
  }

  beforeEach(async () => {
    n = await startNode({ name: 'pbx-node', config: CONFIG })
    await n.node.users.add({ login: 'acme', password: 'pw-acme' })
    await n.node.users.add({ login: 'bob', password: 'pw-bob' })
  })

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await n.stop()
  })

  it('a trunk registers under its own username; calls to the login reach its Contact exactly as registered', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    expect(username).toBe('acme_office-pbx')
    expect(password.length).toBeGreaterThanOrEqual(20)
    const pbx = await phone(username, password)
    const reg = await registerContact(pbx, `<sip:s@127.0.0.1:${pbx.port};line=xkq3bzn>`)
    expect(reg.status).toBe(200)
    // the trunk's 200 lists its own contact, parameters kept
    expect(getHeader(reg, 'Contact')).toContain(';line=xkq3bzn')
    expect(n.node.location.lookup('acme')[0]!.trunk).toBe('office-pbx')

    // a wrong password is refused like any other
    const bad = new Phone(username, 'wrong-password', { port: n.udp, domain: 'pbx-node' })
    await bad.open(); phones.push(bad)
    expect((await registerContact(bad, `<sip:s@127.0.0.1:${bad.port}>`)).status).toBe(401)

    const bob = await phone('bob', 'pw-bob')
    const call = bob.call('acme')
    expect((await call.final).status).toBe(200)
    const inv = await pbx.waitRequest('INVITE')
    expect(inv.rawUri).toBe(`sip:s@127.0.0.1:${pbx.port};line=xkq3bzn`)
    expect(inv.from.uri.user).toBe('bob')
    expect((await call.bye()).status).toBe(200)
  })

  it('extensions mode: acme.201 and an alias reach the extension by the Request-URI user; main number unchanged', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    await n.node.pbx.setSettings('acme', { mode: 'extensions', alias: { name: 'sales', ext: '305' } })
    const pbx = await phone(username, password)
    expect((await registerContact(pbx, `<sip:s@127.0.0.1:${pbx.port};line=abc>`, { to: 'acme' })).status).toBe(200)
    const bob = await phone('bob', 'pw-bob')

    const c1 = bob.call('acme.201')
    expect((await c1.final).status).toBe(200)
    const inv1 = await pbx.waitRequest('INVITE')
    expect(inv1.rawUri).toBe(`sip:201@127.0.0.1:${pbx.port};line=abc`)
    expect(inv1.to.uri.user).toBe('acme.201')
    await c1.bye()

    const after = pbx.received.length
    const c2 = bob.call('sales.acme')
    expect((await c2.final).status).toBe(200)
    const inv2 = await pbx.waitRequest('INVITE', 5000, after)
    expect(inv2.rawUri).toBe(`sip:305@127.0.0.1:${pbx.port};line=abc`)
    await c2.bye()

    const after2 = pbx.received.length
    const c3 = bob.call('acme')
    expect((await c3.final).status).toBe(200)
    expect((await pbx.waitRequest('INVITE', 5000, after2)).rawUri).toBe(`sip:s@127.0.0.1:${pbx.port};line=abc`)
    await c3.bye()

    // an extension of a login without extensions mode is no target
    expect((await bob.call('bob.201').final).status).toBe(404)
  })

  it('fails over by q-value on 5xx; round-robin takes the contacts in turn', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    const first = await phone(username, password)
    const second = await phone(username, password)
    first.behaviour = { kind: 'reject', status: 503 }
    expect((await registerContact(first, `<sip:s@127.0.0.1:${first.port}>;q=0.9`)).status).toBe(200)
    expect((await registerContact(second, `<sip:s@127.0.0.1:${second.port}>;q=0.5`)).status).toBe(200)
    const bob = await phone('bob', 'pw-bob')
    const call = bob.call('acme')
    expect((await call.final).status).toBe(200)
    await first.waitRequest('INVITE')
    await second.waitRequest('INVITE')
    await call.bye()

    first.behaviour = { kind: 'answer' }
    await n.node.pbx.setSettings('acme', { distribution: 'roundrobin' })
    const counts = async (): Promise<number[]> => [first, second].map(p => p.received.filter(m => m.kind === 'request' && m.method === 'INVITE').length)
    const before = await counts()
    for (let i = 0; i < 2; i++) {
      const c = bob.call('acme')
      expect((await c.final).status).toBe(200)
      await c.bye()
    }
    const now = await counts()
    expect(now[0]! - before[0]!).toBe(1)
    expect(now[1]! - before[1]!).toBe(1)
  })

  it('a contact that answers nothing at all is skipped after pbx.failover_timeout', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    const dead = await phone(username, password)
    const alive = await phone(username, password)
    expect((await registerContact(dead, `<sip:s@127.0.0.1:${dead.port}>;q=1.0`)).status).toBe(200)
    expect((await registerContact(alive, `<sip:s@127.0.0.1:${alive.port}>;q=0.1`)).status).toBe(200)
    dead.close() // the PBX is gone: its INVITEs go nowhere
    phones.splice(phones.indexOf(dead), 1)
    const bob = await phone('bob', 'pw-bob')
    const started = Date.now()
    const call = bob.call('acme')
    expect((await call.final).status).toBe(200)
    const waited = Date.now() - started
    expect(waited).toBeGreaterThanOrEqual(900)
    expect(waited).toBeLessThan(8000)
    await alive.waitRequest('INVITE')
    await call.bye()
  }, 20_000)

  it('a PBX calls out with its trunk credentials: caller becomes the login (or login.ext); caps hold', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx', maxCalls: 1, extensionIdentity: true })
    const pbx = await phone(username, password)
    const bob = await phone('bob', 'pw-bob')
    bob.behaviour = { kind: 'ring' }
    expect((await bob.register()).status).toBe(200)
    const c1 = pbx.call('bob', { from: 'sip:201@pbx-node' })
    const inv = await bob.waitRequest('INVITE')
    expect(inv.from.uri.user).toBe('acme.201')
    expect(getHeader(inv, 'P-Asserted-Identity')).toContain('sip:acme@pbx-node')
    // one call at most through this trunk
    expect((await pbx.call('bob').final).status).toBe(503)
    c1.cancel()
    expect((await c1.final).status).toBe(487)
    // the digit-only escape: bob*pbx-node
    bob.behaviour = { kind: 'answer' }
    const c2 = pbx.call('bob*pbx-node')
    expect((await c2.final).status).toBe(200)
    await c2.bye()
  })

  it('DIDs: a provider reaches the mapped extension; unknown DID 404; others may not call the DID', async () => {
    const { username, password } = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    await n.node.pbx.addDid('+15551234567', 'acme.201')
    await expect(n.node.pbx.addDid('15551234567x', 'acme')).rejects.toThrow(/E\.164/)
    const pbx = await phone(username, password)
    expect((await registerContact(pbx, `<sip:s@127.0.0.1:${pbx.port};line=abc>`)).status).toBe(200)

    const provider = await phone('provider', 'none', '127.0.0.2')
    const c = provider.call('+15551234567', { auth: false, from: 'sip:+12125550100@provider.example' })
    expect((await c.final).status).toBe(200)
    const inv = await pbx.waitRequest('INVITE')
    expect(inv.rawUri).toBe(`sip:201@127.0.0.1:${pbx.port};line=abc`)
    expect(inv.to.uri.user).toBe('+15551234567')
    await c.bye()
    // without the +, as many providers send it
    const c2 = provider.call('15551234567', { auth: false, from: 'sip:+12125550100@provider.example' })
    expect((await c2.final).status).toBe(200)
    await c2.bye()

    expect((await provider.call('+15559999999', { auth: false, from: 'sip:x@provider.example' }).final).status).toBe(404)
    // an anonymous caller from elsewhere: refused
    const stranger = await phone('stranger', 'none', '127.0.0.3')
    expect((await stranger.call('+15551234567', { auth: false, from: 'sip:x@elsewhere.example' }).final).status).toBe(403)
    // a local user may dial the number
    const bob = await phone('bob', 'pw-bob')
    const c3 = bob.call('+15551234567')
    expect((await c3.final).status).toBe(200)
    await c3.bye()

    // removing the login removes its trunks and DIDs
    await n.node.users.remove('acme')
    for (let i = 0; i < 50 && (await n.node.pbx.listDids()).length > 0; i++) await sleep(20)
    expect(await n.node.pbx.listDids()).toEqual([])
    expect(await n.node.pbx.listTrunks('acme')).toEqual([])
  })

  it('static trunks: calls from an allowed address need no account; calls to the login go to the target', async () => {
    const target = await phone('static-pbx', 'none', '127.0.0.4')
    await n.node.pbx.addTrunk({ login: 'acme', name: 'legacy', kind: 'static', allow: ['127.0.0.4'], target: `127.0.0.4:${target.port}` })
    await expect(n.node.pbx.addTrunk({ login: 'acme', name: 'bad', kind: 'static', allow: ['pbx.example'], target: '127.0.0.4:5060' })).rejects.toThrow(/IP address/)
    const bob = await phone('bob', 'pw-bob')
    expect((await bob.register()).status).toBe(200)

    const out = target.call('bob', { auth: false, from: 'sip:200@192.0.2.1' })
    expect((await out.final).status).toBe(200)
    const inv = await bob.waitRequest('INVITE')
    expect(inv.from.uri.user).toBe('acme')
    await out.bye()

    const inbound = bob.call('acme')
    expect((await inbound.final).status).toBe(200)
    const toPbx = await target.waitRequest('INVITE')
    expect(toPbx.rawUri).toBe(`sip:acme@127.0.0.4:${target.port}`)
    await inbound.bye()
    await waitForRecords(n.node, 2)
  })

  it('trunks and DIDs survive a restart', async () => {
    await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx', password: 'long-enough-pw' })
    await n.node.pbx.addDid('+4930123456', 'acme')
    const dataDir = n.dataDir
    await n.node.stop()
    const again = await startNode({ name: 'pbx-node', dataDir, config: CONFIG })
    try {
      expect((await again.node.pbx.listTrunks('acme')).map(t => t.name)).toEqual(['office-pbx'])
      expect(await again.node.pbx.getDid('+4930123456')).toMatchObject({ login: 'acme' })
      expect(await again.node.pbx.credentials('acme_office-pbx')).toBeDefined()
    } finally {
      await again.stop()
      n = await startNode({ name: 'pbx-node', config: CONFIG })
    }
  })
})

/** A provider registrar on a UDP socket: challenges, then grants `grant` seconds. */
class FakeProvider {
  sock?: Socket
  registers = 0
  constructor (readonly port: number, readonly grant: number) {}
  async open (): Promise<void> {
    const s = this.sock = createSocket('udp4')
    s.on('message', (buf, rinfo) => {
      let req: SipRequest
      try { const m = parseMessage(buf); if (m.kind !== 'request') return; req = m } catch { return }
      let res: SipResponse
      if (getHeader(req, 'Authorization') == null) {
        res = createResponse(req, 401, 'Unauthorized', { toTag: 'p1', headers: [{ name: 'WWW-Authenticate', value: buildChallenge({ realm: 'provider', nonce: `n${Date.now()}`, algorithm: 'MD5' }) }] })
      } else {
        this.registers++
        res = createResponse(req, 200, 'OK', { toTag: 'p1', headers: [{ name: 'Contact', value: `${getHeader(req, 'Contact')!};expires=${this.grant}` }] })
      }
      s.send(serialize(res), rinfo.port, rinfo.address)
    })
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(this.port, '127.0.0.5', () => { resolve() }) })
  }

  close (): void { this.sock?.close() }
}

describe('upstream registration', () => {
  it('registers with digest, refreshes, and comes back after the provider restarts', async () => {
    const probe = createSocket('udp4')
    await new Promise<void>(resolve => probe.bind(0, '127.0.0.5', resolve))
    const port = probe.address().port
    probe.close()
    let provider = new FakeProvider(port, 2)
    await provider.open()
    const n = await startNode({
      name: 'up-node',
      config: { p2p: { enabled: false }, media: { anchor: 'never' }, sip: { t1: 100, t2: 400 }, upstream: [{ server: `127.0.0.5:${port}`, username: '15551234567', password: 'provider-secret', expiry: 120 }] } as any
    })
    try {
      const until = async (pred: () => boolean, ms: number): Promise<void> => {
        const end = Date.now() + ms
        while (!pred()) { if (Date.now() > end) throw new Error(`timeout; status ${JSON.stringify(n.node.upstream!.status())}`); await sleep(100) }
      }
      await until(() => n.node.upstream!.status()[0]!.state === 'registered', 5000)
      // a refresh before the 2 s grant runs out
      await until(() => provider.registers >= 2, 5000)
      expect(n.node.info().upstream![0]).toMatchObject({ state: 'registered', server: `127.0.0.5:${port}` })
      const metrics = await n.node.metrics.render()
      expect(metrics).toMatch(/m1node_upstream_registered\{server="127\.0\.0\.5:\d+",username="15551234567"\} 1/)
      expect(metrics).not.toContain('provider-secret')

      // the provider's address may now call the node's DIDs without an account
      await n.node.users.add({ login: 'acme', password: 'pw-acme' })
      const t = await n.node.pbx.addTrunk({ login: 'acme', name: 'pbx' })
      await n.node.pbx.addDid('+15551234567', 'acme')
      const pbx = new Phone(t.username, t.password, { port: n.udp, domain: 'up-node' })
      const caller = new Phone('pstn', 'none', { port: n.udp, domain: 'up-node' }, '127.0.0.5')
      const stranger = new Phone('stranger', 'none', { port: n.udp, domain: 'up-node' }, '127.0.0.6')
      try {
        for (const p of [pbx, caller, stranger]) await p.open()
        expect((await registerContact(pbx, `<sip:s@127.0.0.1:${pbx.port}>`)).status).toBe(200)
        const c = caller.call('+15551234567', { auth: false, from: 'sip:+12125550100@provider.example' })
        expect((await c.final).status).toBe(200)
        await c.bye()
        expect((await stranger.call('+15551234567', { auth: false, from: 'sip:x@elsewhere.example' }).final).status).toBe(403)
      } finally {
        for (const p of [pbx, caller, stranger]) p.close()
      }

      provider.close()
      await until(() => n.node.upstream!.status()[0]!.state === 'failed', 10_000)
      provider = new FakeProvider(port, 2)
      await provider.open()
      await until(() => n.node.upstream!.status()[0]!.state === 'registered', 15_000)
    } finally {
      provider.close()
      await n.stop()
    }
  }, 40_000)
})
