// baresip 1.0 calling baresip 1.0 through the node: bob registers and answers automatically, alice dials him by
// login, each plays a tone from a WAV file (alice 440 Hz, bob 1000 Hz) and records what it hears (sndfile filter).
// Checked by the node's call record (RTP relayed both ways) and by the recordings: each side heard the other's tone.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createSocket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startNode, type TestNode } from '../helpers/node.js'
import { waitForRecords } from '../helpers/records.js'
import { Children, freePort, has, tempDir, watch, type Watched } from './lib/tools.js'
import { BARESIP_MODULES } from './lib/baresip.js'
import { writeBaresipAudioConfig } from './lib/baresip-audio.js'
import { freeUdpBlocks } from './lib/calls.js'
import { decodeWav, encodeWav, rms, tone, zeroCrossingHz } from './lib/wav.js'
import type { CallRecord } from '../../src/routing/index.js'

const MODULES = ['account', 'menu', 'uuid', 'g711', 'aufile', 'sndfile', 'alsa', 'cons']
const haveBaresip = has('baresip') && MODULES.every(m => existsSync(`${BARESIP_MODULES}/${m}.so`))

/** baresip's RTP ports: a range of this suite's own, since baresip binds them only when a call starts */
const RTP_PORTS = [64000, 64799] as const

interface Phone {
  b: Watched
  /** where sndfile writes the call's audio */
  recordDir: string
  /** sends a command line to baresip's console (`/dial uri`, `/hangup`) */
  command: (line: string) => Promise<void>
}

describe.skipIf(!haveBaresip)('baresip calls baresip through the node', () => {
  let n: TestNode | undefined
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()
  let relayMin = 0

  beforeEach(async () => {
    tmp = await tempDir('baresip-calls')
    relayMin = 61000 + Math.floor(Math.random() * 15) * 200
    // baresip 1.0 answers only MD5 challenges (see baresip.test.ts)
    n = await startNode({ config: { auth: { algorithms: ['MD5'] }, media: { anchor: 'always', host: '127.0.0.1', port_min: relayMin, port_max: relayMin + 199 } } })
    for (const login of ['alice', 'bob']) await n.node.users.add({ login, password: `pw-${login}` })
  })
  afterEach(async () => {
    await children.killAll()
    await n?.stop()
    n = undefined
    await tmp.remove()
  })

  const phone = async (login: string, hz: number, autoAnswer: boolean, rtp: number): Promise<Phone> => {
    const dir = join(tmp.dir, login)
    await mkdir(dir, { recursive: true })
    const wav = join(dir, `tone-${hz}.wav`)
    // longer than the call: aufile stops the source at the end of its file
    await writeFile(wav, encodeWav(tone(hz, 10)))
    const recordDir = join(dir, 'rec')
    const sipPort = await freePort()
    let consPort = await freePort()
    while (consPort === sipPort) consPort = await freePort()
    await writeBaresipAudioConfig(dir, {
      sipPort,
      accounts: [`<sip:${login}@test-node;transport=udp>;auth_pass=pw-${login};outbound="sip:127.0.0.1:${n!.udp}";audio_codecs=PCMA,PCMU${autoAnswer ? ';answermode=auto' : ''}`],
      sourceWav: wav,
      recordDir,
      rtpPorts: [rtp, rtp + 7],
      consPort
    })
    const b = watch(children.spawn('baresip', ['-f', dir], { cwd: dir }))
    const command = async (line: string): Promise<void> => {
      const sock = createSocket('udp4')
      try {
        await new Promise<void>((resolve, reject) => { sock.send(`${line}\n`, consPort, '127.0.0.1', (err) => { if (err != null) reject(err); else resolve() }) })
      } finally {
        sock.close()
      }
    }
    return { b, recordDir, command }
  }

  const records = async (count: number): Promise<CallRecord[]> => await waitForRecords(n!.node, count)

  /** The relay port a phone's RTP comes from, as baresip reports the first packet. */
  const rtpSource = (out: string): number | undefined => {
    const m = /incoming rtp for 'audio' established, receiving from 127\.0\.0\.1:(\d+)/.exec(out)
    return m != null ? Number(m[1]) : undefined
  }

  /** The recording sndfile made of what a phone received (its decoder output). */
  const heard = async (recordDir: string): Promise<{ rms: number, hz: number, seconds: number }> => {
    const file = (await readdir(recordDir)).find(f => f.endsWith('-dec.wav'))
    expect(file, `no -dec.wav in ${recordDir}`).toBeDefined()
    const pcm = decodeWav(await readFile(join(recordDir, file!)))
    return { rms: rms(pcm.samples), hz: zeroCrossingHz(pcm), seconds: pcm.samples.length / pcm.sampleRate }
  }

  it('alice dials bob by login; bob answers; each hears the other through the relay; alice hangs up', async () => {
    // both RTP ranges chosen up front: baresip binds its ports only when the call starts
    const [bobRtp, aliceRtp] = await freeUdpBlocks(2, 8, ...RTP_PORTS) as [number, number]
    const bob = await phone('bob', 1000, true, bobRtp)
    expect(await bob.b.waitOutput(/bob@test-node: \{0\/UDP\/v4\} 200 OK/, 5000), bob.b.output()).toBe(true)
    const alice = await phone('alice', 440, false, aliceRtp)
    expect(await alice.b.waitOutput(/alice@test-node: \{0\/UDP\/v4\} 200 OK/, 5000), alice.b.output()).toBe(true)
    // without the status line baresip redraws during a call
    const clean = (out: string): string => out.replace(/\[\d+:\d\d:\d\d\] audio=\S+ \(bit\/s\)\s*/g, '')
    const show = (): string => `--- alice ---\n${clean(alice.b.output())}\n--- bob ---\n${clean(bob.b.output())}`

    await alice.command('/dial sip:bob@test-node')
    // answermode=auto: bob answers at once
    expect(await bob.b.waitOutput(/answering call on line \d+ from sip:alice@test-node/, 5000), show()).toBe(true)
    expect(await alice.b.waitOutput(/alice@test-node: Call established: sip:bob@test-node/, 5000), show()).toBe(true)
    expect(await bob.b.waitOutput(/bob@test-node: Call established: sip:alice@test-node/, 5000), show()).toBe(true)
    // both phones get their RTP from the node's relay ports, not from each other
    expect(await alice.b.waitOutput(/incoming rtp for 'audio' established/, 3000), show()).toBe(true)
    expect(await bob.b.waitOutput(/incoming rtp for 'audio' established/, 3000), show()).toBe(true)
    for (const out of [alice.b.output(), bob.b.output()]) {
      const port = rtpSource(out)
      expect(port != null && port >= relayMin && port < relayMin + 200, `RTP from port ${port}\n${show()}`).toBe(true)
    }

    // ~2 s of audio both ways, then alice hangs up
    await new Promise(resolve => setTimeout(resolve, 2000))
    await alice.command('/hangup')
    expect(await bob.b.waitOutput(/Call with sip:alice@test-node terminated/, 5000), show()).toBe(true)

    const recs = await records(1)
    expect(recs).toHaveLength(1)
    const rec = recs[0]!
    expect(rec).toMatchObject({ caller: 'alice@test-node', callee: 'bob@test-node', status: 200, reason: 'caller-bye' })
    // 50 packets/s each way (20 ms ptime) for about two seconds
    expect(rec.media?.packets.a2b, JSON.stringify(rec)).toBeGreaterThan(60)
    expect(rec.media?.packets.b2a, JSON.stringify(rec)).toBeGreaterThan(60)

    // what each phone decoded is the other's tone, not silence (sndfile fixes the WAV header as the call closes;
    // decodeWav reads what is there either way)
    const bobHeard = await heard(bob.recordDir)
    const aliceHeard = await heard(alice.recordDir)
    expect(bobHeard.seconds).toBeGreaterThan(1.5)
    expect(aliceHeard.seconds).toBeGreaterThan(1.5)
    // a full-scale-half sine has an RMS of 0.35; silence ~0
    expect(bobHeard.rms, JSON.stringify(bobHeard)).toBeGreaterThan(0.2)
    expect(aliceHeard.rms, JSON.stringify(aliceHeard)).toBeGreaterThan(0.2)
    expect(Math.abs(bobHeard.hz - 440), JSON.stringify(bobHeard)).toBeLessThan(30)
    expect(Math.abs(aliceHeard.hz - 1000), JSON.stringify(aliceHeard)).toBeLessThan(50)
  }, 30_000)
})
