// Calls across `m1node start` daemons in separate processes (the built dist/), bootstrapped to each other on loopback:
// a SIPp uac at daemon-a calls a SIPp uas registered at daemon-b as alice (RTP echoed across both relays and the
// /m1/rtp/1.0.0 stream), a third daemon is reached the same way, and each failure has its status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { BIN, runCli, startDaemon, stopDaemon } from '../helpers/cli.js'
import { Phone } from '../helpers/phone.js'
import { createSocket } from 'node:dgram'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { Children, has, watch } from './lib/tools.js'
import { BARESIP_MODULES } from './lib/baresip.js'
import { writeBaresipAudioConfig } from './lib/baresip-audio.js'
import { decodeWav, encodeWav, rms, tone, zeroCrossingHz } from './lib/wav.js'
import { runSipp, writeUsersCsv, type SippResult } from './lib/sipp.js'
import { freePort } from './lib/tools.js'
import { freeUdpBlocks, sdpAudioPort, startLine, tracedMessages, waitUdpBound } from './lib/calls.js'

const PCAP = '/usr/share/sip-tester/g711a.pcap'
const SIPP_MEDIA = [64000, 64799] as const
const BARESIP = has('baresip') && ['account', 'menu', 'uuid', 'g711', 'aufile', 'sndfile', 'alsa', 'cons'].every(m => existsSync(`${BARESIP_MODULES}/${m}.so`))
const DIST = BIN.replace(/bin\/m1node\.js$/, 'dist/cli/index.js')

interface Daemon { name: string, dir: string, child?: ChildProcess, udp: number, boot: string[] }

function events (r: SippResult): string {
  return r.errors.split('\n').filter(l => !/Overload warning: the (minor|major) watchdog/.test(l) && !/^The following events occurred:/.test(l) && l.trim() !== '').join('\n')
}

function expectOk (r: SippResult, who: string): void {
  expect({ who, code: r.code, timedOut: r.timedOut, errors: events(r).slice(0, 2000) }, `${who} sipp stderr: ${r.stderr.slice(0, 2000)}`)
    .toEqual({ who, code: 0, timedOut: false, errors: '' })
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

describe.skipIf(!has('sipp') || !existsSync(PCAP) || !existsSync(DIST))('calls across daemons (separate processes)', () => {
  const children = new Children()
  const daemons: Record<string, Daemon> = {}
  const phones: Phone[] = []
  let work = ''

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
    work = await mkdtemp(join(tmpdir(), 'm1node-fed-'))
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
    if (work !== '') await rm(work, { recursive: true, force: true })
  }, 30_000)

  it('a SIPp uac at daemon-a calls a SIPp uas registered at daemon-b as alice: 180, 200, ACK, BYE, RTP both ways', async () => {
    const a = daemons['daemon-a']!
    const b = daemons['daemon-b']!
    const dir = async (name: string): Promise<string> => { const d = join(work, name); await mkdir(d, { recursive: true }); return d }
    const alicePort = await freePort()
    const [aliceMedia, bobMedia] = await freeUdpBlocks(2, 4, ...SIPP_MEDIA) as [number, number]
    const reg = await dir('reg')
    expectOk(await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: b.udp, localPort: alicePort, inf: await writeUsersCsv(join(reg, 'users.csv'), [{ login: 'alice', password: 'pw-alice' }]), dir: reg, args: ['-set', 'domain', 'daemon-b'] }), 'register')

    const uasDir = await dir('uas')
    const uas = runSipp(children, { scenario: 'call-uas.xml', transport: 'u1', remotePort: b.udp, localPort: alicePort, dir: uasDir, timeoutS: 25, traceMsg: true, args: ['-recv_timeout', '20000', '-mp', String(aliceMedia), '-rtp_echo'] })
    expect(await waitUdpBound(alicePort, 5000)).toBe(true)
    const uac = await runSipp(children, {
      scenario: 'call-uac.xml', transport: 'u1', remotePort: a.udp, dir: await dir('uac'), timeoutS: 25, traceMsg: true,
      args: ['-s', 'bob', '-au', 'bob', '-ap', 'pw-bob', '-set', 'callee', 'alice', '-set', 'domain', 'daemon-b', '-mp', String(bobMedia), '-d', '3000']
    })
    expectOk(uac, 'bob (uac at daemon-a)')
    const uasResult = await uas
    expectOk(uasResult, 'alice (uas at daemon-b)')
    const statuses = tracedMessages(uac.messages).filter(m => m.dir === 'received').map(m => startLine(m.text).split(' ')[1])
    expect(statuses).toContain('180')
    const invite = tracedMessages(uasResult.messages).find(m => m.dir === 'received' && /^INVITE /.test(startLine(m.text)))!.text
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

  it.skipIf(!BARESIP)('baresip at daemon-a calls baresip at daemon-b by grace@daemon-b: each hears the other\'s tone', async () => {
    const a = daemons['daemon-a']!
    const b = daemons['daemon-b']!
    const [graceRtp, frankRtp] = await freeUdpBlocks(2, 8, 64800, 65499) as [number, number]
    const baresip = async (d: Daemon, login: string, hz: number, autoAnswer: boolean, rtp: number): Promise<{ out: ReturnType<typeof watch>, recordDir: string, command: (line: string) => Promise<void> }> => {
      const dir = join(work, `baresip-${login}`)
      await mkdir(dir, { recursive: true })
      const wav = join(dir, `tone-${hz}.wav`)
      await writeFile(wav, encodeWav(tone(hz, 10)))
      const recordDir = join(dir, 'rec')
      const sipPort = await freePort()
      let consPort = await freePort()
      while (consPort === sipPort) consPort = await freePort()
      await writeBaresipAudioConfig(dir, {
        sipPort,
        accounts: [`<sip:${login}@${d.name};transport=udp>;auth_pass=pw-${login};outbound="sip:127.0.0.1:${d.udp}";audio_codecs=PCMA,PCMU${autoAnswer ? ';answermode=auto' : ''}`],
        sourceWav: wav,
        recordDir,
        rtpPorts: [rtp, rtp + 7],
        consPort
      })
      const out = watch(children.spawn('baresip', ['-f', dir], { cwd: dir }))
      const command = async (line: string): Promise<void> => {
        const sock = createSocket('udp4')
        try {
          await new Promise<void>((resolve, reject) => { sock.send(`${line}\n`, consPort, '127.0.0.1', (err) => { if (err != null) reject(err); else resolve() }) })
        } finally {
          sock.close()
        }
      }
      return { out, recordDir, command }
    }
    const heard = async (recordDir: string): Promise<{ rms: number, hz: number, seconds: number }> => {
      const file = (await readdir(recordDir)).find(f => f.endsWith('-dec.wav'))
      expect(file, `no -dec.wav in ${recordDir}`).toBeDefined()
      const pcm = decodeWav(await readFile(join(recordDir, file!)))
      return { rms: rms(pcm.samples), hz: zeroCrossingHz(pcm), seconds: pcm.samples.length / pcm.sampleRate }
    }
    const grace = await baresip(b, 'grace', 1000, true, graceRtp)
    expect(await grace.out.waitOutput(/grace@daemon-b: \{0\/UDP\/v4\} 200 OK/, 5000), grace.out.output()).toBe(true)
    const frank = await baresip(a, 'frank', 440, false, frankRtp)
    expect(await frank.out.waitOutput(/frank@daemon-a: \{0\/UDP\/v4\} 200 OK/, 5000), frank.out.output()).toBe(true)
    const show = (): string => `--- frank ---\n${frank.out.output()}\n--- grace ---\n${grace.out.output()}`.replace(/\[\d+:\d\d:\d\d\] audio=\S+ \(bit\/s\)\s*/g, '')

    await frank.command('/dial sip:grace@daemon-b')
    expect(await grace.out.waitOutput(/answering call on line \d+ from sip:frank@daemon-a/, 10_000), show()).toBe(true)
    expect(await frank.out.waitOutput(/Call established: sip:grace@daemon-b/, 10_000), show()).toBe(true)
    expect(await frank.out.waitOutput(/incoming rtp for 'audio' established/, 5000), show()).toBe(true)
    expect(await grace.out.waitOutput(/incoming rtp for 'audio' established/, 5000), show()).toBe(true)
    await sleep(2000)
    await frank.command('/hangup')
    expect(await grace.out.waitOutput(/Call with sip:frank@daemon-a terminated/, 5000), show()).toBe(true)

    const graceHeard = await heard(grace.recordDir)
    const frankHeard = await heard(frank.recordDir)
    expect(graceHeard.seconds).toBeGreaterThan(1.5)
    expect(frankHeard.seconds).toBeGreaterThan(1.5)
    expect(graceHeard.rms, JSON.stringify(graceHeard)).toBeGreaterThan(0.2)
    expect(frankHeard.rms, JSON.stringify(frankHeard)).toBeGreaterThan(0.2)
    expect(Math.abs(graceHeard.hz - 440), JSON.stringify(graceHeard)).toBeLessThan(30)
    expect(Math.abs(frankHeard.hz - 1000), JSON.stringify(frankHeard)).toBeLessThan(50)
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
