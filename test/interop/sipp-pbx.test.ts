// SIPp as a PBX on a trunk, as a DID provider and as an upstream provider's registrar: the trunk registers with
// Asterisk's `line` parameter and gets calls on exactly that URI, extensions arrive as the Request-URI user, 200
// calls at once pass through one trunk, provider INVITEs reach the DID's extension, and the node's upstream
// registration comes back after the provider restarts.
import { afterEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { readFile, writeFile } from 'node:fs/promises'
import { startNode } from '../helpers/node.js'
import { waitForRecords } from '../helpers/records.js'
import { Children, freePort, has, tempDir } from './lib/tools.js'
import { nodePerTest } from './lib/suite.js'
import { expectSippOk, receivedMessages, receivedStatuses, runSipp, writeUsersCsv, type SippResult } from './lib/sipp.js'
import { startLine, waitUdpBound } from './lib/calls.js'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

/** Request-URIs of the INVITEs SIPp received. */
function inviteUris (r: SippResult): string[] {
  return receivedMessages(r, /^INVITE /).map(text => startLine(text).split(' ')[1]!)
}

describe.skipIf(!has('sipp'))('SIPp PBX trunks, DIDs and upstream providers', () => {
  let trunk: { username: string, password: string }

  const suite = nodePerTest('sipp-pbx', async () => {
    const n = await startNode({ name: 'pbx-node', config: { media: { anchor: 'never' }, routing: { ring_timeout: 20 }, p2p: { enabled: false }, pbx: { did_providers: ['127.0.0.1'] } } })
    await n.node.users.add({ login: 'acme', password: 'pw-acme' })
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
    trunk = await n.node.pbx.addTrunk({ login: 'acme', name: 'office-pbx' })
    return n
  })
  const children = suite.children

  const dir = async (name: string): Promise<string> => await suite.tmp.sub(name)

  /** The PBX registers its trunk from `port` with `;line=<line>`. */
  const registerPbx = async (port: number, line: string): Promise<void> => {
    const d = await dir(`reg-${port}`)
    const inf = join(d, 'trunk.csv')
    await writeFile(inf, `SEQUENTIAL\n${trunk.username};${trunk.password};[authentication username=${trunk.username} password=${trunk.password}]\n`)
    const r = await runSipp(children, { scenario: 'pbx-register.xml', transport: 'u1', remotePort: suite.n.udp, localPort: port, inf, dir: d, args: ['-set', 'domain', 'pbx-node', '-set', 'line', line] })
    expectSippOk(r, 'pbx register')
  }

  /** The PBX answering calls on `port` (not awaited); resolves once it listens. */
  const pbxUas = async (port: number, calls: number, extra: string[] = []): Promise<{ done: Promise<SippResult> }> => {
    const d = await dir(`uas-${port}`)
    const run = runSipp(children, { scenario: 'call-uas.xml', transport: 'u1', remotePort: suite.n.udp, localPort: port, dir: d, calls, timeoutS: 60, traceMsg: calls < 10, args: ['-recv_timeout', '50000', ...extra] })
    expect(await waitUdpBound(port, 5000), `uas on ${port} did not start`).toBe(true)
    return { done: run }
  }

  const caller = async (name: string, callee: string, calls: number, extra: string[] = []): Promise<SippResult> => {
    return await runSipp(children, {
      scenario: 'pbx-call-uac.xml',
      transport: 'u1',
      remotePort: suite.n.udp,
      dir: await dir(name),
      calls,
      timeoutS: 60,
      traceMsg: calls < 10,
      args: ['-s', 'alice', '-au', 'alice', '-ap', 'pw-alice', '-set', 'callee', callee, '-set', 'domain', 'pbx-node', '-d', '500', ...extra]
    })
  }

  it('calls to acme reach the PBX on its registered Contact, line parameter kept; acme.201 arrives as user 201', async () => {
    const port = await freePort()
    await registerPbx(port, 'xkq3bzn')
    expect(suite.n.node.location.lookup('acme')).toMatchObject([{ trunk: 'office-pbx', contact: `sip:s@127.0.0.1:${port};line=xkq3bzn` }])

    let pbx = await pbxUas(port, 1)
    expectSippOk(await caller('main', 'acme', 1), 'alice -> acme')
    let r = await pbx.done
    expectSippOk(r, 'pbx (main)')
    expect(inviteUris(r)).toEqual([`sip:s@127.0.0.1:${port};line=xkq3bzn`])

    await suite.n.node.pbx.setSettings('acme', { mode: 'extensions' })
    pbx = await pbxUas(port, 1)
    expectSippOk(await caller('ext', 'acme.201', 1), 'alice -> acme.201')
    r = await pbx.done
    expectSippOk(r, 'pbx (extension)')
    expect(inviteUris(r)).toEqual([`sip:201@127.0.0.1:${port};line=xkq3bzn`])
  }, 60_000)

  it('200 concurrent calls through one trunk all complete', async () => {
    const port = await freePort()
    await registerPbx(port, 'load')
    const pbx = await pbxUas(port, 200)
    let peak = 0
    const poll = setInterval(() => { peak = Math.max(peak, suite.n.node.calls.size) }, 20)
    try {
      // 200 at once (-l 200), each held 8 s, started at 200 per second
      const alice = await caller('load', 'acme', 200, ['-l', '200', '-r', '200', '-d', '8000'])
      expectSippOk(alice, 'alice (200 calls)')
      expect(alice.stats['SuccessfulCall(C)']).toBe('200')
      const r = await pbx.done
      expectSippOk(r, 'pbx (200 calls)')
    } finally {
      clearInterval(poll)
    }
    expect(peak).toBe(200)
    const records = await waitForRecords(suite.n.node, 200, 20_000)
    expect(records.filter(c => c.status === 200)).toHaveLength(200)
  }, 120_000)

  it('a DID provider reaches the mapped extension; an unknown DID gets 404; a PBX calls out with its trunk login', async () => {
    await suite.n.node.pbx.setSettings('acme', { mode: 'extensions' })
    await suite.n.node.pbx.addDid('+15551234567', 'acme.201')
    const port = await freePort()
    await registerPbx(port, 'did')
    const pbx = await pbxUas(port, 1)
    const provider = async (name: string, callee: string): Promise<SippResult> => await runSipp(children, {
      scenario: 'invite-noauth.xml', transport: 'u1', remotePort: suite.n.udp, dir: await dir(name), timeoutS: 20, traceMsg: true,
      args: ['-s', '+12125550100', '-set', 'callee', callee, '-set', 'domain', 'pbx-node', '-d', '500']
    })
    const ok = await provider('did', '+15551234567')
    expectSippOk(ok, 'provider')
    expect(receivedStatuses(ok.messages)).toContain(200)
    const r = await pbx.done
    expectSippOk(r, 'pbx (DID)')
    expect(inviteUris(r)).toEqual([`sip:201@127.0.0.1:${port};line=did`])

    const unknown = await provider('unknown', '+15559999999')
    expectSippOk(unknown, 'provider (unknown DID)')
    expect(receivedStatuses(unknown.messages)).toContain(404)

    // the PBX (extension 201, trunk credentials) calls alice, who answers as a SIPp uas
    const alicePort = await freePort()
    const d = await dir('alice-reg')
    const inf = await writeUsersCsv(join(d, 'alice.csv'), [{ login: 'alice', password: 'pw-alice' }])
    expectSippOk(await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: suite.n.udp, localPort: alicePort, inf, dir: d, args: ['-set', 'domain', 'pbx-node'] }), 'alice register')
    const alice = await pbxUas(alicePort, 1)
    const out = await runSipp(children, {
      scenario: 'pbx-call-uac.xml', transport: 'u1', remotePort: suite.n.udp, dir: await dir('pbx-out'), timeoutS: 20, traceMsg: true,
      args: ['-s', '201', '-au', trunk.username, '-ap', trunk.password, '-set', 'callee', 'alice', '-set', 'domain', 'pbx-node', '-d', '500']
    })
    expectSippOk(out, 'pbx -> alice')
    const got = await alice.done
    expectSippOk(got, 'alice (uas)')
    const invite = receivedMessages(got, /^INVITE /)[0]!
    expect(invite).toMatch(/^From: <sip:acme@pbx-node>/m)
  }, 90_000)
})

describe.skipIf(!has('sipp'))('SIPp upstream provider', () => {
  const children = new Children()
  afterEach(async () => { await children.killAll() })

  it('the node stays registered upstream across provider restarts', async () => {
    const tmp = await tempDir('sipp-upstream')
    const port = await freePort()
    const dirs: string[] = []
    const provider = async (nodePort: number): Promise<{ done: Promise<SippResult> }> => {
      const d = await tmp.sub(`p-${Date.now()}`)
      dirs.push(d)
      const run = runSipp(children, {
        scenario: 'provider-registrar.xml', transport: 'u1', remotePort: nodePort, localPort: port, dir: d, calls: 1, timeoutS: 100, traceMsg: true,
        args: ['-set', 'user', '15551234567', '-set', 'pass', 'provider-secret', '-set', 'grant', '3', '-recv_timeout', '50000']
      })
      expect(await waitUdpBound(port, 5000)).toBe(true)
      return { done: run }
    }
    const n = await startNode({
      name: 'up-node',
      config: { p2p: { enabled: false }, media: { anchor: 'never' }, sip: { t1: 100, t2: 400 }, upstream: [{ server: `127.0.0.1:${port}`, username: '15551234567', password: 'provider-secret', expiry: 60 }] } as any
    })
    // SIPp answers to its remote address (the node), so it starts once the node listens; the node retries until then
    void await provider(n.udp)
    const state = (): string => n.node.upstream!.status()[0]!.state
    const until = async (pred: () => boolean, ms: number, what: string): Promise<void> => {
      const end = Date.now() + ms
      while (!pred()) {
        if (Date.now() > end) {
          const logs = await Promise.all(dirs.map(async d => await readFile(join(d, 'messages.log'), 'utf8').catch(() => '')))
          throw new Error(`${what}: ${JSON.stringify(n.node.upstream!.status())}\n${logs.join('\n').slice(-4000)}`)
        }
        await sleep(100)
      }
    }
    try {
      await until(() => state() === 'registered', 40_000, 'first registration')
      // refreshes every second (the provider grants 3 s): still registered a while later
      const firstUntil = n.node.upstream!.status()[0]!.expiresAt!
      await sleep(3500)
      expect(state()).toBe('registered')
      expect(n.node.upstream!.status()[0]!.expiresAt!).toBeGreaterThan(firstUntil)
      // the provider goes down
      await children.killAll()
      await until(() => state() === 'failed', 20_000, 'failure noticed')
      expect(n.node.upstream!.status()[0]!.lastError).toMatch(/timeout|transport/)
      // and comes back: the node registers again by itself
      void await provider(n.udp)
      await until(() => state() === 'registered', 40_000, 're-registration')
      expect(await n.node.metrics.render()).toMatch(/m1node_upstream_registered\{server="127\.0\.0\.1:\d+",username="15551234567"\} 1/)
      expect(await n.node.metrics.render()).not.toContain('provider-secret')
    } finally {
      await n.stop()
      await tmp.remove()
    }
  }, 120_000)
})
