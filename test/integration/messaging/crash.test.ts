import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createSocket } from 'node:dgram'
import type { ChildProcess } from 'node:child_process'
import { runCli, startDaemon, stopDaemon } from '../../helpers/cli.js'
import { Phone } from '../../helpers/phone.js'
import { getHeader } from '../../../src/sip/message/index.js'
import { messagesOf, sendMessage, sleep, until } from './helpers.js'

/** A port free for both TCP and UDP on 127.0.0.1 (kept across restarts of a daemon). */
async function freePort (): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer()
      s.once('error', reject)
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
    })
    const ok = await new Promise<boolean>(resolve => {
      const u = createSocket('udp4')
      u.once('error', () => { resolve(false) })
      u.bind(port, '127.0.0.1', () => { u.close(() => resolve(true)) })
    })
    if (ok) return port
  }
}

interface Daemon { name: string, dir: string, sip: number, p2p: number, peerId?: string, child?: ChildProcess }

const TOTAL = 1000
const WINDOW = 50

// two `m1node start` processes; bob@crash-a sends 1,000 messages to alice@crash-b while kill -9 hits one node
describe('messages survive kill -9', () => {
  const daemons: Daemon[] = []
  const phones: Phone[] = []
  afterEach(async () => {
    for (const p of phones.splice(0)) p.close()
    await Promise.all(daemons.map(async d => { if (d.child != null) await stopDaemon(d.child) }))
    await Promise.all(daemons.splice(0).map(async d => await rm(d.dir, { recursive: true, force: true })))
  }, 30_000)

  const env = (d: Daemon, peers: Daemon[]): Record<string, string> => ({
    M1NODE_NODE_NAME: d.name,
    M1NODE_SIP_UDP_PORT: String(d.sip),
    M1NODE_SIP_TRANSPORTS: 'udp',
    M1NODE_P2P_LISTEN: `/ip4/127.0.0.1/tcp/${d.p2p}`,
    M1NODE_P2P_BOOTSTRAP: peers.filter(p => p.peerId != null).map(p => `/ip4/127.0.0.1/tcp/${p.p2p}/p2p/${p.peerId!}`).join(','),
    M1NODE_MESSAGING_RATE_PER_SECOND: '0',
    M1NODE_MESSAGING_INBOX_MAX: '100000',
    M1NODE_DIRECTORY_NEGATIVE_CACHE_TTL: '0',
    M1NODE_MEDIA_ANCHOR: 'never'
  })
  const start = async (d: Daemon, peers: Daemon[]): Promise<void> => {
    const { child } = await startDaemon(d.dir, env(d, peers))
    d.child = child
    if (d.peerId == null) {
      const status = JSON.parse((await runCli(['status', '--json', '--data', d.dir])).stdout) as { peerId: string }
      d.peerId = status.peerId
    }
  }
  const daemon = async (name: string, login: string): Promise<Daemon> => {
    const d: Daemon = { name, dir: await mkdtemp(join(tmpdir(), `m1node-${name}-`)), sip: await freePort(), p2p: await freePort() }
    daemons.push(d)
    const r = await runCli(['user', 'add', login, '-p', `pw-${login}`, '--data', d.dir], { env: { M1NODE_NODE_NAME: name } })
    expect(r.code, r.stderr).toBe(0)
    return d
  }

  const run = async (victim: 'sender' | 'receiver'): Promise<void> => {
    const a = await daemon('crash-a', 'bob')
    const b = await daemon('crash-b', 'alice')
    await start(a, [])
    await start(b, [a])
    const alice = new Phone('alice', 'pw-alice', { port: b.sip, domain: 'crash-b' })
    const bob = new Phone('bob', 'pw-bob', { port: a.sip, domain: 'crash-a' })
    for (const p of [alice, bob]) { await p.open(); phones.push(p) }
    expect((await alice.register()).status).toBe(200)
    // the sender's node must find crash-b in the directory before the test starts counting
    await until(async () => (await sendMessage(bob, 'alice', 'warm-up', { uri: 'sip:alice@crash-b', timeoutMs: 3000 }).catch(() => undefined))?.status === 202 &&
      messagesOf(alice).length > 0, 20_000, 'first message across')

    const accepted = new Set<string>()
    const killAt = 2 + Math.floor(Math.random() * (TOTAL / WINDOW - 6))
    const d = victim === 'sender' ? a : b
    for (let chunk = 0; chunk * WINDOW < TOTAL; chunk++) {
      const sends = Array.from({ length: WINDOW }, async (_, i) => {
        const res = await sendMessage(bob, 'alice', `c${chunk * WINDOW + i}`, { uri: 'sip:alice@crash-b', timeoutMs: 2000 }).catch(() => undefined)
        const id = res?.status === 202 ? getHeader(res, 'M1-Message-ID') : undefined
        if (id != null) accepted.add(id)
      })
      if (chunk === killAt) {
        // kill -9 at a random moment inside this window of sends
        await sleep(Math.random() * 30)
        d.child!.kill('SIGKILL')
        await new Promise(resolve => d.child!.once('exit', resolve))
        d.child = undefined
      }
      await Promise.all(sends)
      if (chunk === killAt) await start(d, victim === 'sender' ? [b] : [a])
    }
    expect(accepted.size).toBeGreaterThan(TOTAL / 2)
    // deliveries per message id: distinct transactions (Via branch), so SIP retransmissions of one do not count
    const received = (): Map<string, number> => {
      const branches = new Map<string, Set<string>>()
      for (const m of messagesOf(alice)) {
        const id = getHeader(m, 'M1-Message-ID')
        if (id == null || m.body.toString() === 'warm-up') continue
        const set = branches.get(id) ?? new Set<string>()
        set.add(String(m.vias[0]?.params.branch))
        branches.set(id, set)
      }
      return new Map([...branches].map(([id, set]) => [id, set.size]))
    }
    const t0 = Date.now()
    try {
      await until(() => { const r = received(); return [...accepted].every(id => r.has(id)) }, 45_000, `all ${accepted.size} accepted messages at the device`)
    } catch (err) {
      const states = async (dd: Daemon): Promise<Record<string, number>> => {
        const out = (await runCli(['msg', 'list', '--json', '--limit', '5000', '--data', dd.dir])).stdout.split('\n').filter(Boolean).map(l => JSON.parse(l) as { state: string, queue?: string })
        const c: Record<string, number> = {}
        for (const r of out) c[`${r.state}/${r.queue ?? '-'}`] = (c[`${r.state}/${r.queue ?? '-'}`] ?? 0) + 1
        return c
      }
      const got = received()
      const missingIds = [...accepted].filter(id => !got.has(id))
      const bl = (await runCli(['msg', 'list', '--json', '--limit', '5000', '--data', b.dir])).stdout.split('\n').filter(Boolean).map(l => JSON.parse(l) as { id: string })
      console.log('missing', missingIds.slice(0, 5), bl.filter(r => missingIds.slice(0, 3).includes(r.id)), 'raw hits', alice.received.filter(m => missingIds.slice(0, 3).some(id => JSON.stringify(m.headers).includes(id))).length, 'all ids sorted pos', missingIds.map(id => [...accepted].sort().indexOf(id)).slice(0, 40).join(','))
      throw new Error(`${String(err)}; received ${received().size}; killed at chunk ${killAt}; a: ${JSON.stringify(await states(a))}; b: ${JSON.stringify(await states(b))}`)
    }
    console.log(`${victim} killed: ${accepted.size} accepted, all delivered ${Date.now() - t0} ms after the last send`)
    const counts = received()
    const missing = [...accepted].filter(id => !counts.has(id))
    expect(missing).toEqual([])
    // at most the message in flight to the device when the receiving node died is delivered again (same id)
    const again = [...counts.values()].filter(n => n > 1).length
    expect(again).toBeLessThanOrEqual(victim === 'receiver' ? 2 : 0)
  }

  it('kill -9 of the receiving node: every 202 is delivered', async () => { await run('receiver') }, 120_000)
  it('kill -9 of the sending node: every 202 is delivered', async () => { await run('sender') }, 120_000)
})
