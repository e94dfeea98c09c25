import { afterEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../../helpers/node.js'
import { Phone } from '../../helpers/phone.js'
import { createSocket } from 'node:dgram'
import { createResponse, getHeader, parseMessage, serialize, type SipRequest } from '../../../src/sip/message/index.js'
import { bodiesOf, messagesOf, sendMessage, until } from './helpers.js'
import { runCli } from '../../helpers/cli.js'

// one node, real UDP phones: MESSAGE between local users, held for offline users, limits
describe('messages between local users', () => {
  const nodes: TestNode[] = []
  const phones: Phone[] = []

  const node = async (config: Record<string, Record<string, unknown>> = {}, dataDir?: string): Promise<TestNode> => {
    const n = await startNode({ name: 'msg-node', config: { p2p: { enabled: false }, ...config }, ...(dataDir != null ? { dataDir } : {}) })
    nodes.push(n)
    return n
  }
  const phone = async (n: TestNode, login: string): Promise<Phone> => {
    const p = new Phone(login, `pw-${login}`, { port: n.udp, domain: 'msg-node' })
    await p.open()
    phones.push(p)
    return p
  }
  const users = async (n: TestNode, ...logins: string[]): Promise<void> => {
    for (const l of logins) await n.node.users.add({ login: l, password: `pw-${l}` })
  }

  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    for (const n of nodes.splice(0)) await n.stop()
  }, 20_000)

  it('an authenticated sender reaches a registered receiver: 407, 202 with an id, MESSAGE to the device', async () => {
    const n = await node()
    await users(n, 'alice', 'bob')
    const bob = await phone(n, 'bob')
    expect((await bob.register()).status).toBe(200)
    const alice = await phone(n, 'alice')
    const unauth = await sendMessage(alice, 'bob', 'hi', { auth: false })
    expect(unauth.status).toBe(407)
    const res = await sendMessage(alice, 'bob', 'hello bob', { type: 'text/plain;charset=utf-8' })
    expect(res.status).toBe(202)
    const id = getHeader(res, 'M1-Message-ID')
    expect(id).toMatch(/^[0-9A-Z]{26}$/)
    const msg = await bob.waitRequest('MESSAGE')
    expect(msg.body.toString()).toBe('hello bob')
    expect(getHeader(msg, 'Content-Type')).toBe('text/plain;charset=utf-8')
    expect(getHeader(msg, 'M1-Message-ID')).toBe(id)
    expect(msg.from.uri.user).toBe('alice')
    await until(async () => (await n.node.messaging!.list({ login: 'bob' }))[0]?.state === 'delivered', 5000, 'delivered state')
    const history = await n.node.messaging!.list({ login: 'alice' })
    expect(history).toMatchObject([{ id, from: 'alice@msg-node', to: 'bob', state: 'delivered' }])
  }, 20_000)

  it('holds messages for a receiver without devices and delivers them in order when one registers, with IMDN to the sender', async () => {
    const n = await node()
    await users(n, 'alice', 'carol')
    const alice = await phone(n, 'alice')
    expect((await alice.register()).status).toBe(200)
    for (let i = 0; i < 5; i++) {
      const res = await sendMessage(alice, 'carol', `m${i}`, { headers: i === 4 ? ['Disposition-Notification: positive-delivery'] : [] })
      expect(res.status).toBe(202)
    }
    await until(async () => (await n.node.messaging!.list({ login: 'carol' })).every(m => m.state === 'stored'), 5000, 'stored state')
    const carol = await phone(n, 'carol')
    expect((await carol.register()).status).toBe(200)
    await until(() => bodiesOf(carol).length === 5, 10_000, 'five messages')
    expect(bodiesOf(carol)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4'])
    // the sender asked for a delivery notification on the last one
    const imdn = await alice.wait(m => m.kind === 'request' && m.method === 'MESSAGE', 5000, 'IMDN')
    expect(getHeader(imdn, 'Content-Type')).toBe('message/imdn+xml')
    expect(imdn.body.toString()).toContain('<delivered/>')
  }, 20_000)

  it('keeps held messages across a restart', async () => {
    const n = await node()
    await users(n, 'alice', 'dave')
    const alice = await phone(n, 'alice')
    expect((await sendMessage(alice, 'dave', 'before restart')).status).toBe(202)
    const dataDir = n.dataDir
    nodes.splice(nodes.indexOf(n), 1)
    await n.node.stop()
    const n2 = await node({}, dataDir)
    const dave = await phone(n2, 'dave')
    expect((await dave.register()).status).toBe(200)
    await until(() => bodiesOf(dave).length === 1, 10_000, 'message after restart')
    expect(bodiesOf(dave)).toEqual(['before restart'])
  }, 20_000)

  it('m1node msg list shows a user\'s history from the control API and, with the daemon down, from the store', async () => {
    const n = await node()
    await users(n, 'alice', 'hank')
    const alice = await phone(n, 'alice')
    const res = await sendMessage(alice, 'hank', 'listed')
    expect(res.status).toBe(202)
    const id = getHeader(res, 'M1-Message-ID')!
    await until(async () => (await n.node.messaging!.list({ login: 'hank' }))[0]?.state === 'stored', 5000, 'stored state')
    const live = await runCli(['msg', 'list', '--user', 'alice', '--data', n.dataDir])
    expect(live.code, live.stderr).toBe(0)
    expect(live.stdout).toMatch(new RegExp(`${id}\\s+alice@msg-node\\s+->\\s+hank\\s+stored\\s+text/plain`))
    nodes.splice(nodes.indexOf(n), 1)
    await n.node.stop()
    const offline = await runCli(['msg', 'list', '--user', 'hank', '--json', '--data', n.dataDir], { env: { M1NODE_NODE_NAME: 'msg-node' } })
    expect(offline.code, offline.stderr).toBe(0)
    expect(JSON.parse(offline.stdout.trim())).toMatchObject({ id, from: 'alice@msg-node', to: 'hank', state: 'stored' })
    expect((await runCli(['msg', 'list', '--user', 'nobody', '--data', n.dataDir])).stdout).toBe('')
  }, 30_000)

  it('delivers to every device of the receiver and retries a device that failed', async () => {
    const n = await node()
    await users(n, 'alice', 'erin')
    const erin1 = await phone(n, 'erin')
    const erin2 = await phone(n, 'erin')
    expect((await erin1.register()).status).toBe(200)
    expect((await erin2.register()).status).toBe(200)
    const alice = await phone(n, 'alice')
    expect((await sendMessage(alice, 'erin', 'to both')).status).toBe(202)
    await until(() => bodiesOf(erin1).length === 1 && bodiesOf(erin2).length === 1, 5000, 'both devices')
  }, 20_000)

  it('answers 413, 429 with Retry-After, 486 and 404, and lets anonymous senders reach local users only', async () => {
    const n = await node({ messaging: { max_body_bytes: 100, rate_burst: 4, rate_per_second: 1, inbox_max: 2 } })
    await users(n, 'alice', 'frank', 'gina')
    const alice = await phone(n, 'alice')
    expect((await sendMessage(alice, 'frank', 'x'.repeat(101))).status).toBe(413)
    expect((await sendMessage(alice, 'nobody', 'x')).status).toBe(404)
    expect((await sendMessage(alice, 'frank', '1')).status).toBe(202)
    expect((await sendMessage(alice, 'frank', '2')).status).toBe(202)
    // frank has no device: his inbox holds two (every attempt, refused or not, takes a token: 4 so far)
    expect((await sendMessage(alice, 'frank', '3')).status).toBe(486)
    const limited = await sendMessage(alice, 'gina', '4')
    expect(limited.status).toBe(429)
    expect(Number(getHeader(limited, 'Retry-After'))).toBeGreaterThanOrEqual(1)
    // a sender of another domain, no account: local user yes, anything else needs authentication
    const stranger = new Phone('zed', 'x', { port: n.udp, domain: 'msg-node' })
    await stranger.open()
    phones.push(stranger)
    expect((await sendMessage(stranger, 'gina', 'hi', { from: 'sip:zed@elsewhere.example', auth: false })).status).toBe(202)
    expect((await sendMessage(stranger, 'x', 'hi', { uri: 'sip:x@other.example', from: 'sip:zed@elsewhere.example', auth: false })).status).toBe(407)
    const list = await n.node.messaging!.list({ login: 'gina' })
    expect(list).toMatchObject([{ from: 'zed@elsewhere.example', to: 'gina' }])
    expect(messagesOf(alice)).toHaveLength(0)
  }, 20_000)

  it('has messages of different senders with a slow device at once, each sender one at a time and in order', async () => {
    const n = await node({ messaging: { rate_per_second: 0 } })
    await users(n, 'alice', 'carol', 'bob')
    // bob registers from a phone, then a slow device takes its port: 200 to each MESSAGE after 200 ms
    const reg = new Phone('bob', 'pw-bob', { port: n.udp, domain: 'msg-node' })
    await reg.open()
    expect((await reg.register()).status).toBe(200)
    const port = reg.port
    reg.close()
    const dev = createSocket('udp4')
    await new Promise<void>(resolve => dev.bind(port, '127.0.0.1', resolve))
    const open = new Map<string, string>() // message id -> sender, not answered yet
    let most = 0
    let sameSenderTwice = false
    const order: string[] = []
    dev.on('message', (buf) => {
      let req: SipRequest
      try { req = parseMessage(buf) as SipRequest } catch { return }
      if (req.kind !== 'request' || req.method !== 'MESSAGE') return
      const id = getHeader(req, 'M1-Message-ID') ?? ''
      if (open.has(id)) return // a retransmission
      const sender = req.from.uri.user ?? ''
      if ([...open.values()].includes(sender)) sameSenderTwice = true
      open.set(id, sender)
      most = Math.max(most, open.size)
      order.push(req.body.toString())
      setTimeout(() => {
        open.delete(id)
        dev.send(serialize(createResponse(req, 200, undefined, { toTag: 'dev' })), n.udp, '127.0.0.1')
      }, 200)
    })
    try {
      const alice = await phone(n, 'alice')
      const carol = await phone(n, 'carol')
      await Promise.all([alice, carol].map(async (p) => {
        for (let i = 0; i < 4; i++) expect((await sendMessage(p, 'bob', `${p.login} ${i}`)).status).toBe(202)
      }))
      await until(async () => order.length === 8 && open.size === 0, 10_000, 'all delivered')
      expect(sameSenderTwice).toBe(false)
      expect(most).toBe(2)
      for (const s of ['alice', 'carol']) expect(order.filter(b => b.startsWith(s))).toEqual([0, 1, 2, 3].map(i => `${s} ${i}`))
      await until(async () => (await n.node.messaging!.list({ login: 'bob' })).every(r => r.state === 'delivered'), 5000, 'delivered state')
    } finally {
      dev.close()
    }
  }, 30_000)
})
