import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../../helpers/node.js'
import { Phone } from '../../helpers/phone.js'
import { getHeader } from '../../../src/sip/message/index.js'
import { MSG_PROTOCOL, MessageIds } from '../../../src/messaging/index.js'
import { bodiesOf, sendMessage, sleep, until } from './helpers.js'
import { eventually } from '../../helpers/wait.js'

const CONFIG = { directory: { negative_cache_ttl: 0 }, messaging: { offline_after: 1 } }

// three nodes in one process over real libp2p on 127.0.0.1: m (bootstrap, mailbox of node-b), node-a, node-b
describe('messages across nodes (/m1/msg/1.0.0, /m1/mailbox/1.0.0)', () => {
  let m: TestNode
  let a: TestNode
  let b: TestNode | undefined
  const phones: Phone[] = []

  const phone = async (n: TestNode, login: string, domain: string): Promise<Phone> => {
    const p = new Phone(login, `pw-${login}`, { port: n.udp, domain })
    await p.open()
    phones.push(p)
    return p
  }
  const startB = async (dataDir?: string): Promise<TestNode> => await startNode({
    name: 'node-b',
    ...(dataDir != null ? { dataDir } : {}),
    config: { ...CONFIG, p2p: { bootstrap: m.node.p2p!.addresses() }, messaging: { ...CONFIG.messaging, mailboxes: [m.node.info().peerId], mailbox_poll_interval: 5 } }
  })

  beforeEach(async () => {
    m = await startNode({ name: 'node-m', config: CONFIG })
    a = await startNode({ name: 'node-a', config: { ...CONFIG, p2p: { bootstrap: m.node.p2p!.addresses() } } })
    b = await startB()
    await a.node.users.add({ login: 'bob', password: 'pw-bob' })
    await b.node.users.add({ login: 'alice', password: 'pw-alice' })
    await eventually(async () => await a.node.directory!.resolveNode('node-b'), 15_000)
    await eventually(async () => await b!.node.directory!.resolveNode('node-a'), 15_000)
    await eventually(async () => await m.node.directory!.resolveNode('node-a'), 15_000)
    await eventually(async () => await m.node.directory!.resolveNode('node-b'), 15_000)
  }, 60_000)

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all([m.stop(), a.stop(), b?.stop()])
  }, 30_000)

  it('bob@node-a messages alice@node-b online; bob gets an IMDN; both nodes list it delivered', async () => {
    const alice = await phone(b!, 'alice', 'node-b')
    expect((await alice.register()).status).toBe(200)
    const bob = await phone(a, 'bob', 'node-a')
    expect((await bob.register()).status).toBe(200)
    const res = await sendMessage(bob, 'alice', 'hello across', { uri: 'sip:alice@node-b', headers: ['Disposition-Notification: positive-delivery'] })
    expect(res.status).toBe(202)
    const id = getHeader(res, 'M1-Message-ID')
    const msg = await alice.waitRequest('MESSAGE', 10_000)
    expect(msg.body.toString()).toBe('hello across')
    expect(msg.from.uri.user).toBe('bob')
    expect(msg.from.uri.host).toBe('node-a')
    expect(getHeader(msg, 'M1-Message-ID')).toBe(id)
    const imdn = await bob.waitRequest('MESSAGE', 10_000)
    expect(getHeader(imdn, 'Content-Type')).toBe('message/imdn+xml')
    expect(imdn.body.toString()).toContain(`<message-id>${id!}</message-id>`)
    await until(async () => (await a.node.messaging!.list({ login: 'bob' })).some(r => r.id === id && r.state === 'delivered'), 10_000, 'delivered at node-a')
    expect(await b!.node.messaging!.list({ login: 'alice' })).toMatchObject([{ id, from: 'bob@node-a', state: 'delivered' }])
  }, 30_000)

  it('an offline remote user gets messages in order when a device registers', async () => {
    const bob = await phone(a, 'bob', 'node-a')
    for (let i = 0; i < 10; i++) expect((await sendMessage(bob, 'alice', `n${i}`, { uri: 'sip:alice@node-b' })).status).toBe(202)
    await until(async () => (await b!.node.messaging!.list({ login: 'alice' })).filter(r => r.state === 'stored').length === 10, 10_000, 'stored at node-b')
    const alice = await phone(b!, 'alice', 'node-b')
    expect((await alice.register()).status).toBe(200)
    await until(() => bodiesOf(alice).length === 10, 10_000, 'ten messages')
    expect(bodiesOf(alice)).toEqual(Array.from({ length: 10 }, (_, i) => `n${i}`))
  }, 30_000)

  it('suppresses duplicates by id and refuses a sender that does not own its From node', async () => {
    const alice = await phone(b!, 'alice', 'node-b')
    expect((await alice.register()).status).toBe(200)
    const id = new MessageIds().next()
    const frame = { type: 'deliver', messages: [{ id, from: 'bob@node-a', to: 'alice', type: 'text/plain', body: Buffer.from('once').toString('base64'), at: Date.now() }] }
    const peerB = b!.node.info().peerId
    const first = await a.node.p2p!.request(peerB, MSG_PROTOCOL, frame)
    const second = await a.node.p2p!.request(peerB, MSG_PROTOCOL, frame)
    expect(first).toMatchObject({ type: 'stored', accepted: [id] })
    expect(second).toMatchObject({ type: 'stored', accepted: [id] })
    await until(() => bodiesOf(alice).length === 1, 10_000, 'one message')
    await sleep(300)
    expect(alice.received.filter(x => x.kind === 'request' && x.method === 'MESSAGE')).toHaveLength(1)
    // node-m claims to speak for node-a
    const forged = await m.node.p2p!.request(peerB, MSG_PROTOCOL, { ...frame, messages: [{ ...frame.messages[0]!, id: new MessageIds().next() }] })
    expect(forged).toMatchObject({ accepted: [], rejected: [{ code: 'forbidden' }] })
  }, 30_000)

  it('answers malformed frames with errors and keeps mailboxes to their owners', async () => {
    const peerB = b!.node.info().peerId
    const peerM = m.node.info().peerId
    await expect(a.node.p2p!.request(peerB, MSG_PROTOCOL, { type: 'deliver', messages: 'x' })).rejects.toThrow(/list/)
    await expect(a.node.p2p!.request(peerB, MSG_PROTOCOL, { type: 'what' })).rejects.toThrow(/unknown frame type/)
    const bad = await a.node.p2p!.request(peerB, MSG_PROTOCOL, { type: 'deliver', messages: [{ id: 'x' }, 42, null] })
    expect(bad).toMatchObject({ accepted: [], rejected: [{ code: 'bad-message' }, { code: 'bad-message' }, { code: 'bad-message' }] })
    // node-a names no mailbox: node-m holds nothing for it
    await expect(a.node.p2p!.request(peerM, '/m1/mailbox/1.0.0', { type: 'deposit', node: 'node-a', messages: [] })).rejects.toThrow(/no mailbox/)
    // a pull answers only what is held for the pulling peer
    expect(await a.node.p2p!.request(peerM, '/m1/mailbox/1.0.0', { type: 'pull' })).toEqual({ type: 'messages', messages: [] })
  }, 30_000)

  it('an offline node gets its messages through its mailbox when it starts again', async () => {
    const dataDir = b!.dataDir
    // keep node-b's data dir: stop the node only
    await b!.node.stop()
    b = undefined
    const bob = await phone(a, 'bob', 'node-a')
    for (let i = 0; i < 3; i++) expect((await sendMessage(bob, 'alice', `mb${i}`, { uri: 'sip:alice@node-b' })).status).toBe(202)
    await until(async () => (await a.node.messaging!.list({ login: 'bob' })).filter(r => r.state === 'stored' && r.note?.startsWith('mailbox:') === true).length === 3, 20_000, 'deposited in the mailbox')
    b = await startB(dataDir)
    const alice = await phone(b, 'alice', 'node-b')
    expect((await alice.register()).status).toBe(200)
    await until(() => bodiesOf(alice).length === 3, 15_000, 'three messages via the mailbox')
    expect(bodiesOf(alice)).toEqual(['mb0', 'mb1', 'mb2'])
  }, 60_000)
})
