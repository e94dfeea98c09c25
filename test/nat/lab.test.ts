// Calls between two nodes behind NAT routers, through volunteer relays, in the NAT lab (test/nat/lab.sh): network
// namespaces, veth links and nftables masquerade on one machine. Each node runs as `m1node start` (the built CLI)
// inside its LAN namespace, with SIPp phones next to it. Needs root, ip, nft, conntrack and sipp; skipped otherwise.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runSipp, writeUsersCsv, type SippResult } from '../interop/lib/sipp.js'
import { cliIn, lab, labUnavailable, NsChildren, peers, startIn, status, stopIn, until, type LabDaemon } from './lab.js'

const SKIP = labUnavailable()
if (SKIP != null) console.warn(`NAT lab skipped: ${SKIP}`)

const RELAY_ADDR = { 'relay-1': '11.22.33.10', 'relay-2': '11.22.33.11' } as const

function events (r: SippResult): string {
  return r.errors.split('\n').filter(l => !/Overload warning/.test(l) && !/^The following events occurred:/.test(l) && l.trim() !== '').join('\n')
}

function expectOk (r: SippResult, who: string): void {
  expect({ who, code: r.code, timedOut: r.timedOut, errors: events(r).slice(0, 2000) }, `${who}: ${r.stderr.slice(0, 1500)}`).toEqual({ who, code: 0, timedOut: false, errors: '' })
}

function udpBound (ns: string, port: number): boolean {
  return spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hlun', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim() !== ''
}

describe.skipIf(SKIP != null)('NAT lab: nodes behind NAT reach each other through relays', () => {
  let work = ''
  const relays: Partial<Record<keyof typeof RELAY_ADDR, LabDaemon>> = {}
  const relayAddrs: Record<string, string> = {}
  let a: LabDaemon | undefined
  let b: LabDaemon | undefined
  const lan1 = new NsChildren('m1lab-lan1')
  const lan2 = new NsChildren('m1lab-lan2')

  const startRelay = async (name: keyof typeof RELAY_ADDR, env: Record<string, string> = {}): Promise<LabDaemon> => {
    const dir = join(work, name)
    await mkdir(dir, { recursive: true })
    const ip = RELAY_ADDR[name]
    const others = Object.entries(relayAddrs).filter(([n]) => n !== name).map(([, x]) => x)
    const d = await startIn(`m1lab-${name.replace('-', '')}`, name, dir, {
      M1NODE_P2P_LISTEN: `/ip4/${ip}/tcp/4001`,
      M1NODE_P2P_PUBLIC: 'true',
      M1NODE_P2P_BOOTSTRAP: others.join(','),
      ...env
    }, ['--relay'])
    relays[name] = d
    const st = await status(d)
    relayAddrs[name] = st.p2p.find(x => x.startsWith(`/ip4/${ip}/`))!
    return d
  }

  /** A node in a LAN: private address only, so `p2p.public = auto` finds it is behind NAT. */
  const startNode = async (lan: 1 | 2, name: string, users: Array<[string, string]>): Promise<LabDaemon> => {
    // the same data dir (identity) on every start: the node name stays its own in the directory
    const dir = join(work, name)
    const fresh = !existsSync(dir)
    await mkdir(dir, { recursive: true })
    const ns = `m1lab-lan${lan}`
    for (const [login, password] of fresh ? users : []) {
      const r = await cliIn(ns, ['user', 'add', login, '-p', password, '--data', dir], 20_000, { M1NODE_NODE_NAME: name })
      expect(r.code, r.stderr).toBe(0)
    }
    return await startIn(ns, name, dir, {
      M1NODE_P2P_LISTEN: `/ip4/10.${lan}.0.10/tcp/4001`,
      M1NODE_P2P_RELAYS: Object.values(relayAddrs).join(','),
      M1NODE_P2P_BOOTSTRAP: Object.values(relayAddrs).join(','),
      M1NODE_MEDIA_PORT_MIN: '42000',
      M1NODE_MEDIA_PORT_MAX: '42999'
    })
  }

  const relaysHeld = async (d: LabDaemon, n: number): Promise<string[]> => await until(`${d.name} holding ${n} relay(s)`, async () => {
    const st = await status(d)
    return st.relays.length >= n ? st.relays : undefined
  }, 20_000)

  const resolves = async (from: LabDaemon, name: string, withRelay?: string): Promise<void> => {
    await until(`${from.name} resolving ${name}`, async () => {
      const r = await cliIn(from.ns, ['resolve', name, '--json', '--data', from.dir], 15_000)
      if (r.code !== 0) return undefined
      return withRelay == null || r.stdout.includes(withRelay) ? true : undefined
    }, 30_000, 500)
  }

  const startPair = async (): Promise<void> => {
    a = await startNode(1, 'node-a', [['bob', 'pw-bob']])
    b = await startNode(2, 'node-b', [['alice', 'pw-alice']])
    expect((await status(a)).public).toBe(false)
    await relaysHeld(a, 1)
    await relaysHeld(b, 1)
    await resolves(a, 'node-b')
    await resolves(b, 'node-a')
  }

  const stopPair = async (): Promise<void> => {
    if (a != null) await stopIn(a)
    if (b != null) await stopIn(b)
    a = b = undefined
  }

  /** bob (SIPp uac in LAN 1, at node-a) calls alice (SIPp uas in LAN 2, registered at node-b); RTP is echoed back. */
  const call = async (tag: string, holdMs = 2000): Promise<{ uac: SippResult, uas: SippResult, paths: Set<string> }> => {
    const dir = async (n: string): Promise<string> => { const d = join(work, `${tag}-${n}`); await mkdir(d, { recursive: true }); return d }
    const alicePort = 5070
    const reg = await dir('reg')
    expectOk(await runSipp(lan2, { scenario: 'register-auth.xml', transport: 'u1', remotePort: 5060, localPort: alicePort, inf: await writeUsersCsv(join(reg, 'users.csv'), [{ login: 'alice', password: 'pw-alice' }]), dir: reg, args: ['-set', 'domain', 'node-b'] }), 'register alice')
    const uas = runSipp(lan2, { scenario: 'call-uas.xml', transport: 'u1', remotePort: 5060, localPort: alicePort, dir: await dir('uas'), timeoutS: 25, traceMsg: true, args: ['-recv_timeout', '20000', '-mp', '40000', '-rtp_echo'] })
    await until('uas listening', async () => udpBound('m1lab-lan2', alicePort), 5000, 50)
    // how node-a reaches node-b while the call runs
    const paths = new Set<string>()
    let sampling = true
    const sampler = (async () => { while (sampling) { paths.add(await path().catch(() => 'none')); await new Promise(resolve => setTimeout(resolve, 300)) } })()
    const uac = await runSipp(lan1, {
      scenario: 'call-uac.xml', transport: 'u1', remotePort: 5060, localPort: 5070, dir: await dir('uac'), timeoutS: 25, traceMsg: true,
      args: ['-s', 'bob', '-au', 'bob', '-ap', 'pw-bob', '-set', 'callee', 'alice', '-set', 'domain', 'node-b', '-mp', '40000', '-d', String(holdMs)]
    })
    const uasResult = await uas
    sampling = false
    await sampler
    paths.delete('none')
    return { uac, uas: uasResult, paths }
  }

  const lastRecord = async (d: LabDaemon): Promise<{ status: number, media?: { packets: { a2b: number, b2a: number } }, mediaPath?: string, mediaPaths?: Array<{ at: number, path: string }> }> => {
    const r = await cliIn(d.ns, ['calls', 'list', '--json', '--data', d.dir])
    const lines = r.stdout.split('\n').filter(l => l.trim() !== '')
    // oldest first, and the nodes keep their data directories between cases: the last line is the last call
    return JSON.parse(lines[lines.length - 1]!)
  }

  /** node-a's log lines about the direct media path (which ICE pair, which switches). */
  const directLog = (): string => a!.output().split('\n').filter(l => /direct media path|media path switched/.test(l)).map(l => {
    try { const j = JSON.parse(l) as { msg: string, pair?: string, path?: string, why?: string }; return `${j.msg}${j.pair != null ? ` (${j.pair})` : ''}${j.path != null ? ` to ${j.path}` : ''}${j.why != null ? ` (${j.why})` : ''}` } catch { return l }
  }).join('; ')

  /** 'relayed' or 'direct': how node-a is connected to node-b now. */
  const path = async (): Promise<string> => {
    const idB = (await status(b!)).peerId
    const conns = (await peers(a!)).filter(p => p.peerId === idB)
    if (conns.length === 0) return 'none'
    return conns.some(c => c.addrs.every(x => !x.includes('/p2p-circuit'))) ? 'direct' : 'relayed'
  }

  beforeAll(async () => {
    lab('up', 'eim')
    work = await mkdtemp(join(tmpdir(), 'm1lab-'))
    await startRelay('relay-1')
    await startRelay('relay-2')
  }, 60_000)

  afterAll(async () => {
    await lan1.killAll()
    await lan2.killAll()
    await stopPair()
    for (const r of Object.values(relays)) if (r != null) await stopIn(r)
    lab('down')
    if (work !== '') await rm(work, { recursive: true, force: true })
  }, 60_000)

  it('(a) endpoint-independent NATs: a call with media both ways, signalling through a relay from the first second', async () => {
    const t0 = Date.now()
    await startPair()
    const reachableMs = Date.now() - t0
    const { uac, uas, paths } = await call('eim', 6000)
    expectOk(uac, 'bob (uac, LAN 1)')
    expectOk(uas, 'alice (uas, LAN 2)')
    const rec = await lastRecord(a!)
    expect(rec.status).toBe(200)
    expect(rec.media!.packets.a2b).toBeGreaterThan(20)
    expect(rec.media!.packets.b2a).toBeGreaterThan(20)
    // the call was carried through a relay; DCUtR runs on that connection, and whether it went direct is
    // reported, not assumed
    expect(paths.has('relayed')).toBe(true)
    // the media path ladder: first packets on the relayed stream, then ICE (STUN on the relays) punches through
    // both endpoint-independent NATs and the data channel carries the media to the end
    expect(rec.mediaPaths![0]!.path).toBe('stream-relayed')
    expect(rec.mediaPath).toBe('datachannel')
    console.log(`NAT lab (eim): node-a: ${directLog()}`)
    const recB = await lastRecord(b!)
    expect(recB.mediaPath).toBe('datachannel')
    const switchMs = rec.mediaPaths!.length > 1 ? rec.mediaPaths![1]!.at - rec.mediaPaths![0]!.at : -1
    console.log(`NAT lab (eim): both nodes reachable ${reachableMs} ms after start; paths seen during the call: ${[...paths].join(', ')}; media ${rec.mediaPaths!.map(p => p.path).join(' > ')} (data channel ${switchMs} ms after the stream)`)
  }, 60_000)

  it('(b) symmetric NATs: the same call works relayed', async () => {
    await stopPair()
    lab('nat', 'symmetric')
    await startPair()
    const { uac, uas, paths } = await call('sym', 4000)
    expectOk(uac, 'bob (uac, LAN 1)')
    expectOk(uas, 'alice (uas, LAN 2)')
    const rec = await lastRecord(a!)
    expect(rec.status).toBe(200)
    expect(rec.media!.packets.a2b).toBeGreaterThan(20)
    expect(rec.media!.packets.b2a).toBeGreaterThan(20)
    // no hole punching through symmetric NATs: relayed the whole call, and ICE finds no pair either (no TURN)
    expect([...paths]).toEqual(['relayed'])
    console.log(`NAT lab (symmetric): node-a: ${directLog()}`)
    expect(rec.mediaPath).toBe('stream-relayed')
    expect(rec.mediaPaths!.map(p => p.path)).toEqual(['stream-relayed'])
  }, 60_000)

  it('(c) a relay dies: with the second relay, new calls work again within a bounded time', async () => {
    const killed = relays['relay-1']!
    const t0 = Date.now()
    await stopIn(killed, 'SIGKILL')
    await until('a call through the remaining relay', async () => {
      const { uac, uas } = await call(`fail-${Date.now()}`, 500)
      return uac.code === 0 && uas.code === 0 ? true : undefined
    }, 40_000, 500)
    const recoveredMs = Date.now() - t0
    console.log(`NAT lab: new calls work ${recoveredMs} ms after the relay was killed`)
    expect(recoveredMs).toBeLessThan(40_000)
    expect((await status(a!)).relays.every(x => !x.includes(relayAddrs['relay-1']!.split('/p2p/')[1]!))).toBe(true)
  }, 90_000)

  it('(d) a relay at capacity refuses, and the node uses another', async () => {
    await stopPair()
    lab('nat', 'eim')
    await startRelay('relay-1', { M1NODE_RELAY_MAX_RESERVATIONS: '1' })
    a = await startNode(1, 'node-a', [['bob', 'pw-bob']])
    const idR1 = relayAddrs['relay-1']!.split('/p2p/')[1]!
    const idR2 = relayAddrs['relay-2']!.split('/p2p/')[1]!
    await until('node-a on relay-1', async () => (await status(a!)).relays.some(x => x.includes(idR1)), 20_000)
    b = await startNode(2, 'node-b', [['alice', 'pw-alice']])
    const held = await relaysHeld(b, 1)
    await new Promise(resolve => setTimeout(resolve, 2000))
    expect((await status(b)).relays.map(x => x.split('/p2p/')[1])).toEqual([idR2])
    expect(held.some(x => x.includes(idR1))).toBe(false)
    expect((await status(relays['relay-1']!)).relay?.reservations).toBe(1)
    await resolves(a, 'node-b')
    const { uac, uas } = await call('cap')
    expectOk(uac, 'bob (uac, LAN 1)')
    expectOk(uas, 'alice (uas, LAN 2)')
  }, 90_000)
})
