// Text messages between two nodes behind NAT routers in the NAT lab (test/nat/lab.sh): SIPp devices in each LAN,
// `m1node start` daemons inside the LAN namespaces, two volunteer relays on the public segment. Needs root, ip, nft,
// conntrack and sipp; skipped otherwise. Run under the lab lock: `flock /tmp/m1lab.lock npx vitest run test/nat/messages.test.ts`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { runSipp, type SippResult } from '../interop/lib/sipp.js'
import { cliIn, lab, labUnavailable, NsChildren, stopIn, until, type LabDaemon } from './lab.js'
import { expectSippOk, LabPair, registerIn, udpBound } from './pair.js'

const SKIP = labUnavailable()
if (SKIP != null) console.warn(`NAT lab skipped: ${SKIP}`)

interface Listed { id: string, from: string, to: string, state: string, note?: string }

async function messagesOf (d: LabDaemon, login: string): Promise<Listed[]> {
  const r = await cliIn(d.ns, ['msg', 'list', '--user', login, '--json', '--data', d.dir], 10_000)
  if (r.code !== 0) throw new Error(`msg list at ${d.name}: ${r.stderr}`)
  return r.stdout.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as Listed)
}

/** The MESSAGE requests a SIPp device received (-trace_msg), whole. */
function receivedMessages (r: SippResult): string[] {
  return r.messages.split(/-{10,}/).filter(m => /received/.test(m) && /^\s*MESSAGE /m.test(m))
}

describe.skipIf(SKIP != null)('NAT lab: text messages between nodes behind NAT', () => {
  let work = ''
  let pair: LabPair
  const lan1 = new NsChildren('m1lab-lan1')
  const lan2 = new NsChildren('m1lab-lan2')
  const dir = async (n: string): Promise<string> => { const d = join(work, n); await mkdir(d, { recursive: true }); return d }

  /** A device that takes one MESSAGE (200) on `port`, running in the background. */
  const device = async (lan: NsChildren, ns: string, port: number, tag: string, timeoutS: number): Promise<{ done: Promise<SippResult> }> => {
    // the port of the registered binding: free it is (a device of an earlier case has exited)
    await until(`port ${port} free in ${ns}`, async () => !udpBound(ns, port), 10_000, 200).catch((err) => {
      console.log(spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hlunp'], { encoding: 'utf8' }).stdout)
      throw err
    })
    const done = runSipp(lan, { scenario: 'nat-message-uas.xml', transport: 'u1', remotePort: 5060, localPort: port, dir: await dir(tag), timeoutS, traceMsg: true, args: ['-recv_timeout', String(timeoutS * 1000)] })
    await until(`${tag} listening`, async () => udpBound(ns, port), 5000, 50)
    // wrapped: an async function returning the promise itself would wait for it
    return { done }
  }

  /** bob (LAN 1, node-a) sends `text` to alice@node-b from port 5071; the answer must be 202. */
  const send = async (tag: string, text: string): Promise<SippResult> => await runSipp(lan1, {
    scenario: 'nat-message-uac.xml', transport: 'u1', remotePort: 5060, localPort: 5071, dir: await dir(tag), timeoutS: 15, traceMsg: true,
    args: ['-s', 'bob', '-au', 'bob', '-ap', 'pw-bob', '-set', 'callee', 'alice', '-set', 'domain', 'node-b', '-set', 'from', 'node-a', '-set', 'text', text]
  })

  beforeAll(async () => {
    lab('up', 'eim')
    work = await mkdtemp(join(tmpdir(), 'm1lab-msg-'))
    // a lab-friendly threshold: two failed attempts (about 1 s apart) and the messages go to the mailboxes
    // node records are cached for a minute (the lab's default is none): a sender does not query the DHT, where the
    // stopped node's peer is still a routing entry that costs a dial timeout, at every attempt
    pair = new LabPair(work, { M1NODE_MESSAGING_OFFLINE_AFTER: '2', M1NODE_DIRECTORY_CACHE_TTL: '60', M1NODE_LOG_LEVEL: 'debug' })
    await pair.startRelay('relay-1')
    await pair.startRelay('relay-2')
    await pair.startPair(1)
    // node-b's record names its relays as mailboxes: wait until both are in it
    await pair.relaysHeld(pair.b!, 2)
    await pair.resolves(pair.a!, 'node-b', pair.relayId('relay-2'))
    await pair.resolves(pair.a!, 'node-b', pair.relayId('relay-1'))
    await registerIn(lan2, join(work, 'reg-alice'), 'alice', 'pw-alice', 'node-b', 5070)
    await registerIn(lan1, join(work, 'reg-bob'), 'bob', 'pw-bob', 'node-a', 5072)
  }, 90_000)

  afterEach((ctx) => {
    // what the nodes said about messages, when a case failed
    if (ctx.task.result?.state !== 'fail') return
    for (const d of [pair.a, pair.b, ...Object.values(pair.relays)]) if (d != null) console.log(`--- ${d.name}\n` + d.output().split('\n').filter(l => /"c":"messaging"|mailbox|"level":(40|50)/.test(l)).slice(-40).map(l => l.slice(0, 400)).join('\n'))
  })

  afterAll(async () => {
    await lan1.killAll()
    await lan2.killAll()
    await pair?.stopAll()
    lab('down')
    if (work !== '') await rm(work, { recursive: true, force: true })
  }, 60_000)

  it('a message from LAN 1 to LAN 2: 202, delivered to the device, delivery notification back', async () => {
    const t0 = Date.now()
    const alice = await device(lan2, 'm1lab-lan2', 5070, 'alice-1', 25)
    const bobImdn = await device(lan1, 'm1lab-lan1', 5072, 'bob-imdn-1', 25)
    const sent = await send('send-1', 'hello-through-two-nats')
    expectSippOk(sent, 'bob sends (LAN 1)')
    const got = await alice.done
    const acceptedMs = Date.now() - t0
    expectSippOk(got, 'alice receives (LAN 2)')
    const msg = receivedMessages(got)
    expect(msg.length).toBeGreaterThanOrEqual(1)
    expect(msg[0]).toContain('hello-through-two-nats')
    expect(msg[0]).toMatch(/From: <sip:bob@node-a>/)
    const imdn = await bobImdn.done
    expectSippOk(imdn, 'bob gets the delivery notification (LAN 1)')
    expect(receivedMessages(imdn)[0]).toMatch(/message\/imdn\+xml[\s\S]*<delivered\s*\/>/)
    const list = await until('delivered at node-a', async () => {
      const l = await messagesOf(pair.a!, 'bob')
      return l.some(m => m.to === 'alice' && m.state === 'delivered') ? l : undefined
    }, 15_000)
    expect(list.filter(m => m.to === 'alice').map(m => m.state)).toEqual(['delivered'])
    console.log(`NAT lab messages: sent and delivered across two NATs in ${acceptedMs} ms`)
  }, 60_000)

  it('a message to a NATed node that is offline waits in its relay mailbox and is delivered when it comes back', async () => {
    await stopIn(pair.b!)
    pair.b = undefined
    const bobImdn = await device(lan1, 'm1lab-lan1', 5072, 'bob-imdn-2', 50)
    expectSippOk(await send('send-2', 'while-you-were-away'), 'bob sends to offline node-b (LAN 1)')
    // node-a's outbox fails twice, then deposits in node-b's mailboxes (its relays, named in its node record)
    const relayIds = [pair.relayId('relay-1'), pair.relayId('relay-2')]
    const held = await until('the message held by a relay mailbox', async () => {
      const m = (await messagesOf(pair.a!, 'bob')).find(x => x.to === 'alice' && x.id != null && x.state === 'stored' && x.note?.startsWith('mailbox:') === true)
      return m
    }, 30_000, 500)
    expect(relayIds).toContain(held.note!.slice('mailbox:'.length))
    const alice = await device(lan2, 'm1lab-lan2', 5070, 'alice-2', 40)
    const t0 = Date.now()
    await pair.startB()
    const got = await alice.done
    const deliveredMs = Date.now() - t0
    expectSippOk(got, 'alice receives after node-b is back (LAN 2)')
    expect(receivedMessages(got)[0]).toContain('while-you-were-away')
    // node-b reports delivery to node-a, which notifies bob (RFC 5438)
    expectSippOk(await bobImdn.done, 'bob gets the delivery notification (LAN 1)')
    await until('delivered at node-a', async () => (await messagesOf(pair.a!, 'bob')).some(m => m.id === held.id && m.state === 'delivered'), 15_000)
    console.log(`NAT lab messages: held by relay mailbox ${held.note}, delivered ${deliveredMs} ms after node-b was started again`)
  }, 60_000)
})
