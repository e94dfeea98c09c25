import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startNodePair, type TestNode } from '../helpers/node.js'
import { eventually } from '../helpers/wait.js'
import { Phone, registerContact } from '../helpers/phone.js'

const CONFIG = { media: { anchor: 'never' }, routing: { ring_timeout: 10 }, directory: { negative_cache_ttl: 0 } }

// two nodes in one process: a PBX on node-a places calls to a user and to a DID whose PBX sits behind node-b
describe('PBX calls across nodes', () => {
  let a: TestNode
  let b: TestNode
  const phones: Phone[] = []
  let pbxA: Phone
  let pbxB: Phone
  let carol: Phone

  beforeAll(async () => {
    const pair = await startNodePair({ config: CONFIG })
    a = pair.a
    b = pair.b
    await a.node.users.add({ login: 'corp', password: 'pw-corp' })
    await b.node.users.add({ login: 'acme', password: 'pw-acme' })
    await b.node.users.add({ login: 'carol', password: 'pw-carol' })
    const ta = await a.node.pbx.addTrunk({ login: 'corp', name: 'pbx' })
    const tb = await b.node.pbx.addTrunk({ login: 'acme', name: 'pbx' })
    await b.node.pbx.setSettings('acme', { mode: 'extensions', alias: { name: 'sales', ext: '305', listed: true } })
    await b.node.pbx.addDid('+15551234567', 'acme.201')
    pbxA = new Phone(ta.username, ta.password, { port: a.udp, domain: 'node-a' })
    pbxB = new Phone(tb.username, tb.password, { port: b.udp, domain: 'node-b' })
    carol = new Phone('carol', 'pw-carol', { port: b.udp, domain: 'node-b' })
    for (const p of [pbxA, pbxB, carol]) { await p.open(); phones.push(p) }
    expect((await registerContact(pbxA, `<sip:s@127.0.0.1:${pbxA.port};line=aaa>`)).status).toBe(200)
    expect((await registerContact(pbxB, `<sip:s@127.0.0.1:${pbxB.port};line=bbb>`)).status).toBe(200)
    expect((await carol.register()).status).toBe(200)
    // the DID record of node-b, signed by it, is found from node-a
    await eventually(async () => await a.node.directory!.resolveDid('+15551234567'), 15_000)
  }, 60_000)

  afterAll(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all([a?.stop(), b?.stop()])
  }, 20_000)

  it('the PBX reaches a user on another node', async () => {
    const call = pbxA.call('carol', { uri: 'sip:carol@node-b', from: 'sip:100@node-a' })
    expect((await call.final).status).toBe(200)
    const inv = await carol.waitRequest('INVITE')
    expect(inv.from.uri.user).toBe('corp')
    expect(inv.from.uri.host).toBe('node-a')
    expect((await call.bye()).status).toBe(200)
  }, 20_000)

  it('the PBX dials a DID owned by another node: it arrives at that node\'s PBX extension', async () => {
    const call = pbxA.call('+15551234567', { from: 'sip:100@node-a' })
    expect((await call.final).status).toBe(200)
    const inv = await pbxB.waitRequest('INVITE')
    expect(inv.rawUri).toBe(`sip:201@127.0.0.1:${pbxB.port};line=bbb`)
    expect(inv.from.uri.user).toBe('corp')
    expect((await call.bye()).status).toBe(200)
  }, 20_000)

  it('a listed alias has a login record of its own: the PBX on node-a dials sales.acme and reaches extension 305', async () => {
    await eventually(async () => await a.node.directory!.resolveLogin('sales.acme'), 15_000)
    const mark = pbxB.received.length
    const call = pbxA.call('sales.acme', { from: 'sip:100@node-a' })
    expect((await call.final).status).toBe(200)
    const inv = await pbxB.waitRequest('INVITE', 5000, mark)
    expect(inv.rawUri).toBe(`sip:305@127.0.0.1:${pbxB.port};line=bbb`)
    expect((await call.bye()).status).toBe(200)
  }, 30_000)

  it('a DID record is refused under a name that is no E.164 number, and the DID resolves from the CLI API', async () => {
    await expect(a.node.directory!.resolveDid('12345')).rejects.toThrow(/E\.164/)
    const r = await a.node.directory!.resolve('+15551234567')
    expect(r.did).toMatchObject({ kind: 'did', name: '+15551234567', node: 'node-b' })
    expect(r.node?.name).toBe('node-b')
  }, 20_000)
})
