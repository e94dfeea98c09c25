// baresip 1.0 (libre 1.1) as a softphone: it registers through the node as outbound proxy, shows "200 OK", and
// un-registers when it quits. Runs headless: its own config folder, no audio modules, stdin a closed pipe.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, tempDir, waitFor, watch, type Watched } from './lib/tools.js'
import { BARESIP_MODULES, writeBaresipConfig } from './lib/baresip.js'
import { existsSync } from 'node:fs'
import { runSipp } from './lib/sipp.js'

const haveBaresip = has('baresip') && existsSync(`${BARESIP_MODULES}/account.so`)

describe.skipIf(!haveBaresip)('baresip against the registrar', () => {
  let n: TestNode | undefined
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()

  /**
   * baresip 1.0's libre fails the whole authentication with ENOSYS as soon as one WWW-Authenticate names an
   * algorithm other than MD5, even when an MD5 challenge comes first: such phones need `auth.algorithms = ['MD5']`.
   */
  const node = async (algorithms: string[] = ['MD5']): Promise<TestNode> => {
    n = await startNode({ config: { auth: { algorithms } } })
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
    return n
  }

  /** Starts baresip with one account; -s prints the SIP trace, shown when a test fails. */
  const baresip = async (account: string): Promise<Watched> => {
    await writeBaresipConfig(tmp.dir, { sipPort: await freePort(), accounts: [account] })
    return watch(children.spawn('baresip', ['-s', '-f', tmp.dir], { cwd: tmp.dir }))
  }

  beforeEach(async () => {
    tmp = await tempDir('baresip')
  })
  afterEach(async () => {
    await children.killAll()
    await n?.stop()
    n = undefined
    await tmp.remove()
  })

  it('registers over UDP and shows 200 OK', async () => {
    const { udp, node: m1 } = await node()
    const b = await baresip(`<sip:alice@test-node;transport=udp>;auth_pass=pw-alice;outbound="sip:127.0.0.1:${udp}"`)
    expect(await b.waitOutput(/alice@test-node: \{0\/UDP\/v4\} 200 OK \(m1node\/[^)]*\) \[1 binding\]/, 5000), b.output()).toBe(true)
    const bindings = m1.location.lookup('alice')
    expect(bindings).toHaveLength(1)
    // baresip makes its Contact user from the login and a per-account suffix
    expect(bindings[0]!.contact).toMatch(/^sip:alice(-[^@]*)?@127\.0\.0\.1:\d+$/)
    expect(bindings[0]!.flow).toMatchObject({ transport: 'UDP', remoteAddress: '127.0.0.1' })
    expect(bindings[0]!.instance).toMatch(/^<urn:uuid:[0-9a-f-]{36}>$/)
    expect(bindings[0]!.userAgent).toMatch(/^baresip v1\./)
  }, 15_000)

  it('registers over TCP', async () => {
    const { tcp, node: m1 } = await node()
    const b = await baresip(`<sip:alice@test-node;transport=tcp>;auth_pass=pw-alice;outbound="sip:127.0.0.1:${tcp};transport=tcp"`)
    expect(await b.waitOutput(/alice@test-node: \{0\/TCP\/v4\} 200 OK/, 5000), b.output()).toBe(true)
    const bindings = m1.location.lookup('alice')
    expect(bindings).toHaveLength(1)
    expect(bindings[0]!.contact).toMatch(/^sip:alice(-[^@]*)?@127\.0\.0\.1:\d+;transport=tcp$/)
    expect(bindings[0]!.flow).toMatchObject({ transport: 'TCP', remoteAddress: '127.0.0.1' })
  }, 15_000)

  it('registers with the node addressed by IP, and un-registers when it quits', async () => {
    const { udp, node: m1 } = await node()
    const b = await baresip(`<sip:alice@127.0.0.1:${udp};transport=udp>;auth_pass=pw-alice`)
    expect(await b.waitOutput(/alice@127\.0\.0\.1: \{0\/UDP\/v4\} 200 OK/, 5000), b.output()).toBe(true)
    expect(m1.location.lookup('alice')).toHaveLength(1)
    // SIGTERM: baresip sends REGISTER Expires: 0 for every account, then exits
    b.child.kill('SIGTERM')
    expect(await waitFor(() => m1.location.lookup('alice').length === 0, 5000), b.output()).toBe(true)
    expect(await b.waitExit(5000)).toBe(0)
  }, 15_000)

  it('gives up when a challenge other than MD5 is offered too (libre 1.x limitation)', async () => {
    const { udp, node: m1 } = await node(['MD5', 'SHA-256'])
    const b = await baresip(`<sip:alice@test-node;transport=udp>;auth_pass=pw-alice;outbound="sip:127.0.0.1:${udp}"`)
    expect(await b.waitOutput(/Register: Function not implemented/, 5000), b.output()).toBe(true)
    expect(m1.location.lookup('alice')).toHaveLength(0)
  }, 15_000)

  it('receives a text message a SIPp device sent, and answers it 200', async () => {
    const { udp, node: m1 } = await node()
    await m1.users.add({ login: 'bob', password: 'pw-bob' })
    const b = await baresip(`<sip:alice@test-node;transport=udp>;auth_pass=pw-alice;outbound="sip:127.0.0.1:${udp}"`)
    expect(await b.waitOutput(/alice@test-node: \{0\/UDP\/v4\} 200 OK/, 5000), b.output()).toBe(true)
    const r = await runSipp(children, {
      scenario: 'message-uac.xml', transport: 'u1', remotePort: udp, dir: tmp.dir,
      args: ['-s', 'bob', '-au', 'bob', '-ap', 'pw-bob', '-set', 'to', 'alice', '-set', 'domain', 'test-node']
    })
    expect(r.code, r.stderr + r.errors).toBe(0)
    expect(await b.waitOutput(/hello 1 from bob/, 5000), b.output()).toBe(true)
    // the delivered state is written just after baresip's 200
    let list: Array<{ from: string, state: string }> = []
    for (let end = Date.now() + 5000; Date.now() < end; await new Promise(resolve => setTimeout(resolve, 50))) {
      list = await m1.messaging!.list({ login: 'alice' })
      if (list[0]?.state === 'delivered') break
    }
    expect(list.map(m => [m.from, m.state]), b.output()).toEqual([['bob@test-node', 'delivered']])
  }, 20_000)
})
