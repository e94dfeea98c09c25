// baresip 1.0 calling baresip 1.0 through the node: bob registers and answers automatically, alice dials him by
// login, each plays a tone from a WAV file (alice 440 Hz, bob 1000 Hz) and records what it hears (sndfile filter).
// Checked by the node's call record (RTP relayed both ways) and by the recordings: each side heard the other's tone.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { startNode } from '../helpers/node.js'
import { waitForRecords } from '../helpers/records.js'
import { nodePerTest } from './lib/suite.js'
import { expectHeardEachOther, haveBaresipAudio, startTonePhone, withoutStatusLines, type TonePhone } from './lib/baresip-audio.js'
import { freeUdpBlocks } from './lib/calls.js'
import type { CallRecord } from '../../src/routing/index.js'

/** baresip's RTP ports: a range of this suite's own, since baresip binds them only when a call starts */
const RTP_PORTS = [64000, 64799] as const

describe.skipIf(!haveBaresipAudio())('baresip calls baresip through the node', () => {
  let relayMin = 0

  const suite = nodePerTest('baresip-calls', async () => {
    relayMin = 61000 + Math.floor(Math.random() * 15) * 200
    // baresip 1.0 answers only MD5 challenges (see baresip.test.ts)
    const n = await startNode({ config: { auth: { algorithms: ['MD5'] }, media: { anchor: 'always', host: '127.0.0.1', port_min: relayMin, port_max: relayMin + 199 } } })
    for (const login of ['alice', 'bob']) await n.node.users.add({ login, password: `pw-${login}` })
    return n
  })
  const children = suite.children

  const phone = async (login: string, hz: number, autoAnswer: boolean, rtp: number): Promise<TonePhone> =>
    await startTonePhone(children, { dir: join(suite.tmp.dir, login), login, domain: 'test-node', proxyPort: suite.n.udp, hz, autoAnswer, rtp })

  const records = async (count: number): Promise<CallRecord[]> => await waitForRecords(suite.n.node, count)

  /** The relay port a phone's RTP comes from, as baresip reports the first packet. */
  const rtpSource = (out: string): number | undefined => {
    const m = /incoming rtp for 'audio' established, receiving from 127\.0\.0\.1:(\d+)/.exec(out)
    return m != null ? Number(m[1]) : undefined
  }

  it('alice dials bob by login; bob answers; each hears the other through the relay; alice hangs up', async () => {
    // both RTP ranges chosen up front: baresip binds its ports only when the call starts
    const [bobRtp, aliceRtp] = await freeUdpBlocks(2, 8, ...RTP_PORTS) as [number, number]
    const bob = await phone('bob', 1000, true, bobRtp)
    expect(await bob.out.waitOutput(/bob@test-node: \{0\/UDP\/v4\} 200 OK/, 5000), bob.out.output()).toBe(true)
    const alice = await phone('alice', 440, false, aliceRtp)
    expect(await alice.out.waitOutput(/alice@test-node: \{0\/UDP\/v4\} 200 OK/, 5000), alice.out.output()).toBe(true)
    const show = (): string => `--- alice ---\n${withoutStatusLines(alice.out.output())}\n--- bob ---\n${withoutStatusLines(bob.out.output())}`

    await alice.command('/dial sip:bob@test-node')
    // answermode=auto: bob answers at once
    expect(await bob.out.waitOutput(/answering call on line \d+ from sip:alice@test-node/, 5000), show()).toBe(true)
    expect(await alice.out.waitOutput(/alice@test-node: Call established: sip:bob@test-node/, 5000), show()).toBe(true)
    expect(await bob.out.waitOutput(/bob@test-node: Call established: sip:alice@test-node/, 5000), show()).toBe(true)
    // both phones get their RTP from the node's relay ports, not from each other
    expect(await alice.out.waitOutput(/incoming rtp for 'audio' established/, 3000), show()).toBe(true)
    expect(await bob.out.waitOutput(/incoming rtp for 'audio' established/, 3000), show()).toBe(true)
    for (const out of [alice.out.output(), bob.out.output()]) {
      const port = rtpSource(out)
      expect(port != null && port >= relayMin && port < relayMin + 200, `RTP from port ${port}\n${show()}`).toBe(true)
    }

    // ~2 s of audio both ways, then alice hangs up
    await new Promise(resolve => setTimeout(resolve, 2000))
    await alice.command('/hangup')
    expect(await bob.out.waitOutput(/Call with sip:alice@test-node terminated/, 5000), show()).toBe(true)

    const recs = await records(1)
    expect(recs).toHaveLength(1)
    const rec = recs[0]!
    expect(rec).toMatchObject({ caller: 'alice@test-node', callee: 'bob@test-node', status: 200, reason: 'caller-bye' })
    // 50 packets/s each way (20 ms ptime) for about two seconds
    expect(rec.media?.packets.a2b, JSON.stringify(rec)).toBeGreaterThan(60)
    expect(rec.media?.packets.b2a, JSON.stringify(rec)).toBeGreaterThan(60)

    // what each phone decoded is the other's tone, not silence
    await expectHeardEachOther(alice, bob)
  }, 30_000)
})
