// SIPp as both phones of a call through the node: bob (SIPp uas, registered with digest auth) is called by alice
// (SIPp uac, 407 proxy authentication), RTP from a pcap flows through the node's relay and is echoed back. Checked by
// SIPp's verdicts, by the SDP each side got (the relay's ports, never the other phone's) and by the call record.
import { describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { startNode } from '../helpers/node.js'
import { waitForRecords } from '../helpers/records.js'
import { freePort, has } from './lib/tools.js'
import { nodePerTest } from './lib/suite.js'
import type { CallRecord } from '../../src/routing/index.js'
import { expectSippOk, receivedMessages, runSipp, writeUsersCsv, type SippResult } from './lib/sipp.js'
import { freeUdpBlocks, sdpAddress, sdpAudioPort, startLine, tracedMessages, waitUdpBound } from './lib/calls.js'

const PCAP = '/usr/share/sip-tester/g711a.pcap'
/** SIPp's media ports (-mp): a range of this suite's own, since SIPp binds them only as it starts */
const SIPP_MEDIA = [64800, 65499] as const
const USERS = [{ login: 'alice', password: 'pw-alice' }, { login: 'bob', password: 'pw-bob' }]

/** The text of the first message SIPp received whose start line matches `re`. */
const received = (r: SippResult, re: RegExp): string | undefined => receivedMessages(r, re)[0]

describe.skipIf(!has('sipp') || !existsSync(PCAP))('SIPp calls through the node (B2BUA + media relay)', () => {
  let relayMin = 0
  const RELAY_SPAN = 200

  const suite = nodePerTest('sipp-calls', async () => {
    // a relay range of our own, above the ephemeral ports and away from other suites' ranges
    relayMin = 61000 + Math.floor(Math.random() * 15) * RELAY_SPAN
    const n = await startNode({ config: { media: { anchor: 'always', host: '127.0.0.1', port_min: relayMin, port_max: relayMin + RELAY_SPAN - 1 }, routing: { ring_timeout: 10 } } })
    for (const u of USERS) await n.node.users.add(u)
    return n
  })
  const children = suite.children

  const dir = async (name: string): Promise<string> => await suite.tmp.sub(name)

  /** Registers bob from `port` (the port the uas will then listen on): REGISTER -> 401 -> REGISTER -> 200. */
  const registerBob = async (port: number): Promise<void> => {
    const d = await dir(`reg-${port}`)
    const inf = await writeUsersCsv(join(d, 'users.csv'), [USERS[1]!])
    const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: suite.n.udp, localPort: port, inf, dir: d, args: ['-set', 'domain', 'test-node'] })
    expectSippOk(r, 'register')
  }

  /** Starts a SIPp uas on `port` (not awaited) and resolves once it listens. */
  const uas = async (scenario: string, port: number, args: string[]): Promise<{ done: Promise<SippResult> }> => {
    const d = await dir(`uas-${port}`)
    const run = runSipp(children, { scenario, transport: 'u1', remotePort: suite.n.udp, localPort: port, dir: d, timeoutS: 20, traceMsg: true, args: ['-recv_timeout', '15000', ...args] })
    expect(await waitUdpBound(port, 5000), `uas on ${port} did not start`).toBe(true)
    // wrapped: an async function returning the bare promise would wait for SIPp to exit
    return { done: run }
  }

  const uac = async (mediaPort: number, holdMs: number): Promise<SippResult> => {
    return await runSipp(children, {
      scenario: 'call-uac.xml',
      transport: 'u1',
      remotePort: suite.n.udp,
      dir: await dir('uac'),
      timeoutS: 20,
      traceMsg: true,
      args: ['-s', 'alice', '-au', 'alice', '-ap', 'pw-alice', '-set', 'callee', 'bob', '-set', 'domain', 'test-node', '-mp', String(mediaPort), '-d', String(holdMs)]
    })
  }

  const records = async (count: number): Promise<CallRecord[]> => await waitForRecords(suite.n.node, count)

  const inRelay = (port: number | undefined): boolean => port != null && port >= relayMin && port < relayMin + RELAY_SPAN

  it('alice calls bob: 407, 180, 200, RTP both ways through the relay, BYE; a call record counts the packets', async () => {
    const bobPort = await freePort()
    const [bobMedia, aliceMedia] = await freeUdpBlocks(2, 4, ...SIPP_MEDIA) as [number, number]
    await registerBob(bobPort)
    expect(suite.n.node.location.lookup('bob')).toHaveLength(1)

    const bob = await uas('call-uas.xml', bobPort, ['-mp', String(bobMedia), '-rtp_echo'])
    const alice = await uac(aliceMedia, 3000)
    // the caller's verdict first: when it failed, the callee would only wait for its own timeout
    expectSippOk(alice, 'alice (uac)')
    const bobResult = await bob.done
    expectSippOk(bobResult, 'bob (uas)')

    // alice: challenged once, then ringing and answered
    const statuses = tracedMessages(alice.messages).filter(m => m.dir === 'received').map(m => startLine(m.text).split(' ')[1])
    expect(statuses).toContain('407')
    expect(statuses).toContain('180')
    expect(statuses.filter(s => s === '200')).toHaveLength(2) // the INVITE's and the BYE's

    // each side's SDP names the relay, never the other phone
    const invite = received(bobResult, /^INVITE /)
    const ok = received(alice, /^SIP\/2\.0 200 /)
    expect(invite, bobResult.messages.slice(0, 3000)).toBeDefined()
    expect(ok, alice.messages.slice(0, 3000)).toBeDefined()
    expect(sdpAddress(invite!)).toBe('127.0.0.1')
    expect(sdpAddress(ok!)).toBe('127.0.0.1')
    const toBob = sdpAudioPort(invite!)
    const toAlice = sdpAudioPort(ok!)
    expect(inRelay(toBob), `INVITE to bob offers port ${toBob}`).toBe(true)
    expect(inRelay(toAlice), `200 to alice answers port ${toAlice}`).toBe(true)
    expect(toBob).not.toBe(toAlice)
    // the callee saw the node's own dialog: another Call-ID, the authenticated caller in From
    expect(invite).toMatch(/^From: .*<sip:alice@test-node>/m)
    expect(invite).toMatch(/^P-Asserted-Identity: <sip:alice@test-node>/m)

    // bob only echoes what reached him: packets both ways prove the path alice -> relay -> bob -> relay -> alice
    const recs = await records(1)
    expect(recs).toHaveLength(1)
    const rec = recs[0]!
    expect(rec).toMatchObject({ caller: 'alice@test-node', callee: 'bob@test-node', status: 200, reason: 'caller-bye' })
    expect(rec.media, JSON.stringify(rec)).toBeDefined()
    expect(rec.media!.packets.a2b).toBeGreaterThan(50)
    expect(rec.media!.packets.b2a).toBeGreaterThan(50)
    expect(rec.media!.bytes.a2b).toBeGreaterThan(50 * 160)
  }, 30_000)

  it('forks to two SIPp phones registered as bob: one answers, the other rings and gets CANCEL', async () => {
    const deskPort = await freePort()
    let softPort = await freePort()
    while (softPort === deskPort) softPort = await freePort()
    const [softMedia, aliceMedia] = await freeUdpBlocks(2, 4, ...SIPP_MEDIA) as [number, number]
    await registerBob(deskPort)
    await registerBob(softPort)
    expect(suite.n.node.location.lookup('bob')).toHaveLength(2)

    const desk = await uas('call-uas-ring.xml', deskPort, [])
    // the softphone rings a moment before answering, so that the desk phone has rung too
    const soft = await uas('call-uas.xml', softPort, ['-mp', String(softMedia), '-rtp_echo', '-d', '500'])
    const alice = await uac(aliceMedia, 1000)
    expectSippOk(alice, 'alice (uac)')
    const [deskResult, softResult] = await Promise.all([desk.done, soft.done])
    expectSippOk(softResult, 'soft (uas)')
    expectSippOk(deskResult, 'desk (uas, ringing)')
    expect(received(deskResult, /^CANCEL /)).toBeDefined()
    expect(received(deskResult, /^ACK /)).toBeDefined()
    const recs = await records(1)
    expect(recs).toHaveLength(1)
    expect(recs[0]).toMatchObject({ status: 200, reason: 'caller-bye' })
    expect(recs[0]!.legs.filter(l => l.side === 'b')).toHaveLength(2)
  }, 30_000)
})
