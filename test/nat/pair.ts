// Two relays and two NATed nodes in the NAT lab, for the message and long-call cases (lab.test.ts has its own).
import { mkdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { expect } from 'vitest'
import { runSipp, writeUsersCsv, type SippResult } from '../interop/lib/sipp.js'
import { cliIn, startIn, status, stopIn, until, type LabDaemon, type NsChildren } from './lab.js'

export const RELAY_ADDR = { 'relay-1': '11.22.33.10', 'relay-2': '11.22.33.11' } as const
export type RelayName = keyof typeof RELAY_ADDR

export function sippEvents (r: SippResult): string {
  return r.errors.split('\n').filter(l => !/Overload warning/.test(l) && !/^The following events occurred:/.test(l) && l.trim() !== '').join('\n')
}

export function expectSippOk (r: SippResult, who: string): void {
  expect({ who, code: r.code, timedOut: r.timedOut, errors: sippEvents(r).slice(0, 2000) }, `${who}: ${r.stderr.slice(0, 1500)}`).toEqual({ who, code: 0, timedOut: false, errors: '' })
}

export function udpBound (ns: string, port: number): boolean {
  return spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hlun', `sport = :${port}`], { encoding: 'utf8' }).stdout.trim() !== ''
}

/** Relays and the two LAN nodes (node-a: bob in LAN 1, node-b: alice in LAN 2), started and stopped together. */
export class LabPair {
  readonly relays: Partial<Record<RelayName, LabDaemon>> = {}
  readonly relayAddrs: Record<string, string> = {}
  a?: LabDaemon
  b?: LabDaemon

  constructor (readonly work: string, readonly nodeEnv: Record<string, string> = {}) {}

  async startRelay (name: RelayName, env: Record<string, string> = {}): Promise<LabDaemon> {
    const dir = join(this.work, name)
    await mkdir(dir, { recursive: true })
    const ip = RELAY_ADDR[name]
    const others = Object.entries(this.relayAddrs).filter(([n]) => n !== name).map(([, x]) => x)
    const d = await startIn(`m1lab-${name.replace('-', '')}`, name, dir, {
      M1NODE_P2P_LISTEN: `/ip4/${ip}/tcp/4001`,
      M1NODE_P2P_PUBLIC: 'true',
      M1NODE_P2P_BOOTSTRAP: others.join(','),
      ...env
    }, ['--relay'])
    this.relays[name] = d
    const st = await status(d)
    this.relayAddrs[name] = st.p2p.find(x => x.startsWith(`/ip4/${ip}/`))!
    return d
  }

  relayId (name: RelayName): string { return this.relayAddrs[name]!.split('/p2p/')[1]! }

  /** A node in a LAN (private address only: behind NAT); the same data dir on every start. */
  async startNode (lan: 1 | 2, name: string, users: Array<[string, string]>, env: Record<string, string> = {}): Promise<LabDaemon> {
    const dir = join(this.work, name)
    const fresh = !existsSync(dir)
    await mkdir(dir, { recursive: true })
    const ns = `m1lab-lan${lan}`
    for (const [login, password] of fresh ? users : []) {
      const r = await cliIn(ns, ['user', 'add', login, '-p', password, '--data', dir], 20_000, { M1NODE_NODE_NAME: name })
      expect(r.code, r.stderr).toBe(0)
    }
    return await startIn(ns, name, dir, {
      M1NODE_P2P_LISTEN: `/ip4/10.${lan}.0.10/tcp/4001`,
      M1NODE_P2P_RELAYS: Object.values(this.relayAddrs).join(','),
      M1NODE_P2P_BOOTSTRAP: Object.values(this.relayAddrs).join(','),
      M1NODE_MEDIA_PORT_MIN: '42000',
      M1NODE_MEDIA_PORT_MAX: '42999',
      ...this.nodeEnv,
      ...env
    })
  }

  async startA (): Promise<LabDaemon> { return this.a = await this.startNode(1, 'node-a', [['bob', 'pw-bob']]) }
  async startB (): Promise<LabDaemon> { return this.b = await this.startNode(2, 'node-b', [['alice', 'pw-alice']]) }

  async relaysHeld (d: LabDaemon, n: number): Promise<string[]> {
    return await until(`${d.name} holding ${n} relay(s)`, async () => {
      const st = await status(d)
      return st.relays.length >= n ? st.relays : undefined
    }, 20_000)
  }

  async resolves (from: LabDaemon, name: string, withText?: string): Promise<void> {
    await until(`${from.name} resolving ${name}`, async () => {
      const r = await cliIn(from.ns, ['resolve', name, '--json', '--data', from.dir], 15_000)
      if (r.code !== 0) return undefined
      return withText == null || r.stdout.includes(withText) ? true : undefined
    }, 30_000, 500)
  }

  /** Both nodes up, each holding `relays` reservations and resolving the other. */
  async startPair (relays = 1): Promise<void> {
    await this.startA()
    await this.startB()
    await this.relaysHeld(this.a!, relays)
    await this.relaysHeld(this.b!, relays)
    await this.resolves(this.a!, 'node-b')
    await this.resolves(this.b!, 'node-a')
  }

  async stopAll (): Promise<void> {
    for (const d of [this.a, this.b, ...Object.values(this.relays)]) if (d != null) await stopIn(d)
    this.a = this.b = undefined
  }
}

/** REGISTERs `login` from `port` in a LAN (SIPp register-auth.xml). */
export async function registerIn (lan: NsChildren, dir: string, login: string, password: string, domain: string, port: number): Promise<void> {
  await mkdir(dir, { recursive: true })
  if (udpBound(lan.ns, port)) console.log(`port ${port} in ${lan.ns} is taken:\n${spawnSync('ip', ['netns', 'exec', lan.ns, 'ss', '-Hlunp'], { encoding: 'utf8' }).stdout}`)
  expectSippOk(await runSipp(lan, { scenario: 'register-auth.xml', transport: 'u1', remotePort: 5060, localPort: port, inf: await writeUsersCsv(join(dir, 'users.csv'), [{ login, password }]), dir, args: ['-set', 'domain', domain] }), `register ${login}`)
}
