// Calls across `m1node start` daemons in separate processes (the built dist/), bootstrapped to each other on loopback:
// a SIPp uac at daemon-a calls a SIPp uas registered at daemon-b as alice (RTP echoed across both relays and the
// /m1/rtp/1.0.0 stream), a third daemon is reached the same way, baresip hears tones both ways, a node spoofing
// another node's caller is refused, and each failure has its status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { BIN, runCli, startDaemon, stopDaemon } from '../helpers/cli.js'
import { Phone } from '../helpers/phone.js'
import { startNode, type TestNode } from '../helpers/node.js'
import { sleep } from '../helpers/wait.js'
import { finalResponse, p2pInvite, sipFrame } from '../helpers/sip-stream.js'
import type { SipResponse } from '../../src/sip/message/index.js'
import { SIP_PROTOCOL, type SipStream } from '../../src/routing/index.js'
import { Children, freePort, has, tempDir, type TempDir } from './lib/tools.js'
import { expectHeardEachOther, haveBaresipAudio, startTonePhone, withoutStatusLines, type TonePhone } from './lib/baresip-audio.js'
import { expectSippOk, receivedMessages, runSipp, writeUsersCsv } from './lib/sipp.js'
import { freeUdpBlocks, sdpAudioPort, startLine, tracedMessages, waitUdpBound } from './lib/calls.js'

const PCAP = '/usr/share/sip-tester/g711a.pcap'
const SIPP_MEDIA = [64000, 64799] as const
const DIST = BIN.replace(/bin\/m1node\.js$/, 'dist/cli/index.js')

interface Daemon { name: string, dir: string, child?: ChildProcess, udp: number, boot: string[] }

describe.skipIf(!has('sipp') || !existsSync(PCAP) || !existsSync(DIST))('calls across daemons (separate processes)', () => {
  const children = new Children()
  const daemons: Record<string, Daemon> = {}
  const phones: Phone[] = []
  let work: TempDir | undefined

  const users: Record<string, Array<[string, string]>> = {
    'daemon-a': [['bob', 'pw-bob'], ['frank', 'pw-frank']],
    'daemon-b': [['alice', 'pw-alice'], ['carol', 'pw-carol'], ['grace', 'pw-grace']],
    'daemon-c': [['dave', 'pw-dave']]
  }

  const start = async (name: string, index: number, bootstrap: string[]): Promise<Daemon> => {
    const dir = await mkdtemp(join(tmpdir(), `m1node-${name}-`))
    for (const [login, password] of users[name]!) {
      const r = await runCli(['user', 'add', login, '-p', password, '--data', dir], { env: { M1NODE_NODE_NAME: name } })
      expect(r.code, r.stderr).toBe(0)
    }
    const d = await startDaemon(dir, {
      M1NODE_NODE_NAME: name,
      M1NODE_P2P_BOOTSTRAP: bootstrap.join(','),
      M1NODE_MEDIA_HOST: '127.0.0.1',
      M1NODE_MEDIA_PORT_MIN: String(52000 + index * 1000),
      M1NODE_MEDIA_PORT_MAX: String(52999 + index * 1000),
      M1NODE_ROUTING_RING_TIMEOUT: '10',
      // baresip 1.0 answers only MD5 challenges
      M1NODE_AUTH_ALGORITHMS: 'MD5',
      M1NODE_DIRECTORY_NEGATIVE_CACHE_TTL: '0'
    })
    const status = JSON.parse((await runCli(['status', '--json', '--data', dir])).stdout) as { p2p: string[], sip: Array<{ transport: string, port: number }> }
    const daemon: Daemon = { name, dir, child: d.child, udp: status.sip.find(s => s.transport === 'UDP')!.port, boot: status.p2p.filter(x => x.includes('/127.0.0.1/')) }
    daemons[name] = daemon
    return daemon
  }

  /** Until `from` resolves `name` (a node name or login@node) through the DHT. */
  const resolves = async (from: Daemon, name: string): Promise<void> => {
    const deadline = Date.now() + 30_000
    let last = ''
    while (Date.now() < deadline) {
      const r = await runCli(['resolve', name, '--data', from.dir])
      if (r.code === 0) return
      last = r.stdout + r.stderr
      await sleep(500)
    }
    throw new Error(`${from.name} never resolved ${name}: ${last}`)
  }

  const phone = async (d: Daemon, login: string): Promise<Phone> => {
    const p = new Phone(login, users[d.name]!.find(u => u[0] === login)![1], { port: d.udp, domain: d.name })
    await p.open()
    phones.push(p)
    return p
  }

  const calls = async (d: Daemon): Promise<Array<{ caller: string, callee: string, status: number, media?: { packets: { a2b: number, b2a: number } }, legs: Array<{ side: string, node?: string }> }>> => {
    const r = await runCli(['calls', 'list', '--json', '--data', d.dir])
    return r.stdout.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l))
  }

  beforeAll(async () => {
    work = await tempDir('fed')
    const a = await start('daemon-a', 0, [])
    const b = await start('daemon-b', 1, a.boot)
    await start('daemon-c', 2, a.boot)
    await resolves(a, 'daemon-b')
    await resolves(a, 'daemon-c')
    await resolves(b, 'daemon-a')
  }, 90_000)

  afterAll(async () => {
    for (const p of phones.splice(0)) p.close()
    await children.killAll()
    await Promise.all(Object.values(daemons).map(async d => { if (d.child != null) await stopDaemon(d.child) }))
    await Promise.all(Object.values(daemons).map(async d => await rm(d.dir, { recursive: true, force: true })))
    await work?.remove()
  }, 30_000)

  it('a SIPp uac at daemon-a calls a SIPp uas registered at daemon-b as alice: 180, 200, ACK, BYE, RTP both ways', async () => {
    const a = daemons['daemon-a']!
    const b = daemons['daemon-b']!
    const dir = async (name: string): Promise<string> => await work!.sub(name)
    const alicePort = await freePort()
    const [aliceMedia, bobMedia] = await freeUdpBlocks(2, 4, ...SIPP_MEDIA) as [number, number]
    const reg = await dir('reg')
    expectSippOk(await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: b.udp, localPort: alicePort, inf: await writeUsersCsv(join(reg, 'users.csv'), [{ login: 'alice', password: 'pw-alice' }]), dir: reg, args: ['-set', 'domain', 'daemon-b'] }), 'register')

    const uasDir = await dir('uas')
    const uas = runSipp(children, { scenario: 'call-uas.xml', transport: 'u1', remotePort: b.udp, localPort: alicePort, dir: uasDir, timeoutS: 25, traceMsg: true, args: ['-recv_timeout', '20000', '-mp', String(aliceMedia), '-rtp_echo'] })
    expect(await waitUdpBound(alicePort, 5000)).toBe(true)
    const uac = await runSipp(children, {
      scenario: 'call-uac.xml', transport: 'u1', remotePort: a.udp, dir: await dir('uac'), timeoutS: 25, traceMsg: true,
      args: ['-s', 'bob', '-au', 'bob', '-ap', 'pw-bob', '-set', 'callee', 'alice', '-set', 'domain', 'daemon-b', '-mp', String(bobMedia), '-d', '3000']
    })
    expectSippOk(uac, 'bob (uac at daemon-a)')
    const uasResult = await uas
    expectSippOk(uasResult, 'alice (uas at daemon-b)')
    const statuses = tracedMessages(uac.messages).filter(m => m.dir === 'received').map(m => startLine(m.text).split(' ')[1])
    expect(statuses).toContain('180')
    const invite = receivedMessages(uasResult, /^INVITE /)[0]!
    // alice's phone sees the caller as daemon-a vouched for it, and only daemon-b's relay in the SDP
    expect(invite).toMatch(/^P-Asserted-Identity: <sip:bob@daemon-a>/m)
    expect(invite).not.toMatch(/m1-rtp/)
    expect(sdpAudioPort(invite)).toBeGreaterThanOrEqual(53000)

    // alice's uas echoes what reached it: packets both ways on both nodes prove bob -> A -> stream -> B -> alice and back
    let recA: Awaited<ReturnType<typeof calls>>[number] | undefined
    let recB: typeof recA
    for (let i = 0; i < 40 && (recA == null || recB == null); i++) {
      recA = (await calls(a)).find(c => c.callee === 'alice@daemon-b')
      recB = (await calls(b)).find(c => c.callee === 'alice@daemon-b')
      if (recA == null || recB == null) await sleep(250)
    }
    expect(recA).toMatchObject({ caller: 'bob@daemon-a', status: 200 })
    expect(recA!.legs.find(l => l.side === 'b')?.node).toBe('daemon-b')
    expect(recB!.legs.find(l => l.side === 'a')?.node).toBe('daemon-a')
    expect(recA!.media!.packets.a2b).toBeGreaterThan(50)
    expect(recA!.media!.packets.b2a).toBeGreaterThan(50)
    expect(recB!.media!.packets.a2b).toBeGreaterThan(50)
    expect(recB!.media!.packets.b2a).toBeGreaterThan(50)
    // no stream outlives its call
    const metrics = await (await fetch(`${JSON.parse((await runCli(['status', '--json', '--data', a.dir])).stdout).web as string}/metrics`)).text()
    expect(metrics).toMatch(/^m1node_media_p2p_streams 0$/m)
  }, 60_000)

  it('a third daemon: bob@daemon-a reaches dave@daemon-c', async () => {
    const dave = await phone(daemons['daemon-c']!, 'dave')
    expect((await dave.register()).status).toBe(200)
    const bob = await phone(daemons['daemon-a']!, 'bob')
    const call = bob.call('dave', { uri: 'sip:dave@daemon-c' })
    expect((await call.final).status).toBe(200)
    expect((await dave.waitRequest('INVITE')).from.uri.host).toBe('daemon-a')
    expect((await call.bye()).status).toBe(200)
    await dave.waitRequest('BYE')
  }, 30_000)

  it('statuses: unknown node 404, unknown remote user 404, remote busy 486, caller cancels 487', async () => {
    const b = daemons['daemon-b']!
    const bob = await phone(daemons['daemon-a']!, 'bob')
    expect((await bob.call('x', { uri: 'sip:x@no-such-node' }).final).status).toBe(404)
    expect((await bob.call('nobody', { uri: 'sip:nobody@daemon-b' }).final).status).toBe(404)

    const carol = await phone(b, 'carol')
    expect((await carol.register()).status).toBe(200)
    carol.behaviour = { kind: 'reject', status: 486 }
    expect((await bob.call('carol', { uri: 'sip:carol@daemon-b' }).final).status).toBe(486)

    carol.behaviour = { kind: 'ring' }
    const ringing = bob.call('carol', { uri: 'sip:carol@daemon-b' })
    await bob.wait(m => m.kind === 'response' && m.status === 180 && m.callId === ringing.callId, 10_000)
    ringing.cancel()
    expect((await ringing.final).status).toBe(487)
  }, 40_000)

  it.skipIf(!haveBaresipAudio())('baresip at daemon-a calls baresip at daemon-b by grace@daemon-b: each hears the other\'s tone', async () => {
    const a = daemons['daemon-a']!
    const b = daemons['daemon-b']!
    const [graceRtp, frankRtp] = await freeUdpBlocks(2, 8, 64800, 65499) as [number, number]
    const baresip = async (d: Daemon, login: string, hz: number, autoAnswer: boolean, rtp: number): Promise<TonePhone> =>
      await startTonePhone(children, { dir: await work!.sub(`baresip-${login}`), login, domain: d.name, proxyPort: d.udp, hz, autoAnswer, rtp })
    const grace = await baresip(b, 'grace', 1000, true, graceRtp)
    expect(await grace.out.waitOutput(/grace@daemon-b: \{0\/UDP\/v4\} 200 OK/, 5000), grace.out.output()).toBe(true)
    const frank = await baresip(a, 'frank', 440, false, frankRtp)
    expect(await frank.out.waitOutput(/frank@daemon-a: \{0\/UDP\/v4\} 200 OK/, 5000), frank.out.output()).toBe(true)
    const show = (): string => withoutStatusLines(`--- frank ---\n${frank.out.output()}\n--- grace ---\n${grace.out.output()}`)

    await frank.command('/dial sip:grace@daemon-b')
    expect(await grace.out.waitOutput(/answering call on line \d+ from sip:frank@daemon-a/, 10_000), show()).toBe(true)
    expect(await frank.out.waitOutput(/Call established: sip:grace@daemon-b/, 10_000), show()).toBe(true)
    expect(await frank.out.waitOutput(/incoming rtp for 'audio' established/, 5000), show()).toBe(true)
    expect(await grace.out.waitOutput(/incoming rtp for 'audio' established/, 5000), show()).toBe(true)
    await sleep(2000)
    await frank.command('/hangup')
    expect(await grace.out.waitOutput(/Call with sip:frank@daemon-a terminated/, 5000), show()).toBe(true)

    await expectHeardEachOther(frank, grace)
  }, 40_000)

  it('a node that claims another node\'s caller in From is refused (403) by daemon-b', async () => {
    const b = daemons['daemon-b']!
    const peerB = (JSON.parse((await runCli(['status', '--json', '--data', b.dir])).stdout) as { peerId: string }).peerId
    let spoofer: TestNode | undefined
    try {
      spoofer = await startNode({ name: 'spoofer', config: { p2p: { bootstrap: b.boot } } })
      const stream = await spoofer.node.p2p!.dialStream(peerB, SIP_PROTOCOL) as unknown as SipStream
      stream.send(sipFrame(p2pInvite({ n: 1, from: 'sip:bob@daemon-a', to: 'sip:carol@daemon-b', via: 'spoofer' })))
      let res: SipResponse | undefined
      try { res = await finalResponse(stream, 10_000) } catch {} finally { stream.abort(new Error('done')) }
      expect(res?.status).toBe(403)
    } finally {
      await spoofer?.stop()
    }
  }, 40_000)

  it('remote daemon stopped: 480', async () => {
    const b = daemons['daemon-b']!
    await stopDaemon(b.child!)
    b.child = undefined
    const bob = await phone(daemons['daemon-a']!, 'bob')
    const status = (await bob.call('alice', { uri: 'sip:alice@daemon-b' }).final).status
    expect([480, 503]).toContain(status)
  }, 40_000)
})
