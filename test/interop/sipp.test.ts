// SIPp as the phone: digest REGISTER over UDP and TCP, refresh, un-REGISTER, wrong passwords and a batch of users,
// checked both by SIPp's verdict (exit code 0 = every call succeeded) and by the node's location service.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, tempDir } from './lib/tools.js'
import { receivedStatuses, runSipp, writeUsersCsv, type SippResult } from './lib/sipp.js'

const ALICE = { login: 'alice', password: 'pw-alice' }

/** Every call succeeded: exit code 0, no unexpected message; a failure shows what SIPp printed. */
function expectOk (r: SippResult): void {
  expect({ code: r.code, timedOut: r.timedOut, errors: r.errors.slice(0, 2000) }, `sipp stderr: ${r.stderr.slice(0, 2000)}`)
    .toEqual({ code: 0, timedOut: false, errors: '' })
}

describe.skipIf(!has('sipp'))('SIPp (sip-tester) against the registrar', () => {
  let n: TestNode | undefined
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()

  const node = async (config?: Record<string, Record<string, unknown>>): Promise<TestNode> => {
    n = await startNode(config != null ? { config } : {})
    await n.node.users.add(ALICE)
    return n
  }

  beforeEach(async () => {
    tmp = await tempDir('sipp')
  })
  afterEach(async () => {
    await children.killAll()
    await n?.stop()
    n = undefined
    await tmp.remove()
  })

  it('registers with digest auth over UDP', async () => {
    const { udp, node: m1 } = await node()
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const port = await freePort()
    const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: udp, localPort: port, inf, dir: tmp.dir, traceMsg: true })
    expectOk(r)
    expect(r.stats['SuccessfulCall(C)']).toBe('1')
    expect(receivedStatuses(r.messages)).toEqual([401, 200])
    const bindings = m1.location.lookup('alice')
    expect(bindings).toHaveLength(1)
    expect(bindings[0]!.contact).toBe(`sip:alice@127.0.0.1:${port};transport=UDP`)
    expect(bindings[0]!.flow).toMatchObject({ transport: 'UDP', remoteAddress: '127.0.0.1', remotePort: port })
    expect(bindings[0]!.userAgent).toBe('SIPp')
  }, 20_000)

  it('registers with digest auth over TCP, with the node name as domain', async () => {
    const { tcp, node: m1 } = await node()
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const port = await freePort()
    const r = await runSipp(children, {
      scenario: 'register-auth.xml', transport: 't1', remotePort: tcp, localPort: port, inf, dir: tmp.dir, traceMsg: true,
      args: ['-set', 'domain', 'test-node']
    })
    expectOk(r)
    expect(receivedStatuses(r.messages)).toEqual([401, 200])
    expect(r.messages).toMatch(/^From: <sip:alice@test-node>/m)
    const bindings = m1.location.lookup('alice')
    expect(bindings).toHaveLength(1)
    expect(bindings[0]!.contact).toBe(`sip:alice@127.0.0.1:${port};transport=TCP`)
    // SIPp connects from an ephemeral port; the binding remembers that connection, not the Contact port
    expect(bindings[0]!.flow).toMatchObject({ transport: 'TCP', remoteAddress: '127.0.0.1' })
  }, 20_000)

  it('refreshes the same Contact into one binding', async () => {
    const { udp, node: m1 } = await node()
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const port = await freePort()
    const run = async (): Promise<void> => {
      const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: udp, localPort: port, inf, dir: tmp.dir })
      expectOk(r)
    }
    await run()
    const [first] = m1.location.lookup('alice')
    await run()
    const after = m1.location.lookup('alice')
    expect(after).toHaveLength(1)
    // SIPp's Call-ID embeds its pid: the refresh came from the second run
    expect(after[0]!.callId).not.toBe(first!.callId)
    expect(after[0]!.contact).toBe(first!.contact)
    expect(after[0]!.expiresAt).toBeGreaterThanOrEqual(first!.expiresAt)
  }, 30_000)

  it('unregisters with Expires: 0', async () => {
    const { udp, node: m1 } = await node()
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const port = await freePort()
    const reg = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: udp, localPort: port, inf, dir: tmp.dir })
    expectOk(reg)
    expect(m1.location.lookup('alice')).toHaveLength(1)
    const unreg = await runSipp(children, { scenario: 'unregister.xml', transport: 'u1', remotePort: udp, localPort: port, inf, dir: tmp.dir, traceMsg: true })
    expectOk(unreg)
    expect(receivedStatuses(unreg.messages)).toEqual([401, 200])
    expect(m1.location.lookup('alice')).toHaveLength(0)
  }, 30_000)

  it('registers and unregisters within one call over TCP', async () => {
    const { tcp, node: m1 } = await node()
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const r = await runSipp(children, { scenario: 'register-unregister.xml', transport: 't1', remotePort: tcp, inf, dir: tmp.dir, traceMsg: true })
    expectOk(r)
    // the scenario asks a fresh challenge for the un-REGISTER (SIPp would reuse nc=00000001 on the first nonce)
    expect(receivedStatuses(r.messages)).toEqual([401, 200, 401, 200])
    expect(m1.location.lookup('alice')).toHaveLength(0)
  }, 20_000)

  it('challenges a wrong password again and binds nothing', async () => {
    const { udp, node: m1 } = await node()
    const r = await runSipp(children, {
      scenario: 'register-wrong-password.xml', transport: 'u1', remotePort: udp, dir: tmp.dir, traceMsg: true,
      args: ['-s', 'alice', '-au', 'alice', '-ap', 'not-the-password']
    })
    expectOk(r)
    expect(receivedStatuses(r.messages)).toEqual([401, 401])
    expect(m1.location.lookup('alice')).toHaveLength(0)
  }, 20_000)

  it('forbids a source after repeated wrong passwords, even with the right one', async () => {
    const { udp, node: m1 } = await node({ auth: { max_failures: 2 } })
    // one call at a time (-l 1), so the failures count in order
    const wrong = await runSipp(children, {
      scenario: 'register-wrong-password.xml', transport: 'u1', remotePort: udp, dir: tmp.dir, traceMsg: true, calls: 3,
      args: ['-s', 'alice', '-au', 'alice', '-ap', 'not-the-password', '-l', '1']
    })
    expectOk(wrong)
    expect(wrong.stats['SuccessfulCall(C)']).toBe('3')
    // call 1: 401, 401 (first failure); call 2: 401, 403 (second failure blocks); call 3: 403 at once
    expect(receivedStatuses(wrong.messages)).toEqual([401, 401, 401, 403, 403])
    // blocked: the right password is refused too, before any challenge
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [ALICE])
    const right = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: udp, inf, dir: tmp.dir, traceMsg: true })
    expect(right.code).toBe(1)
    expect(receivedStatuses(right.messages)).toEqual([403])
    expect(m1.location.lookup('alice')).toHaveLength(0)
  }, 30_000)

  it('registers 20 users from an injection file at 50 calls/s', async () => {
    const { udp, node: m1 } = await node()
    const users = Array.from({ length: 20 }, (_, i) => ({ login: `u${String(i + 1).padStart(5, '0')}`, password: `pw-${i + 1}` }))
    for (const u of users) await m1.users.add(u)
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), users)
    const port = await freePort()
    const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: udp, localPort: port, inf, dir: tmp.dir, calls: 20, rate: 50 })
    expectOk(r)
    expect(r.stats['SuccessfulCall(C)']).toBe('20')
    expect(r.stats['FailedCall(C)']).toBe('0')
    for (const u of users) {
      const b = m1.location.lookup(u.login)
      expect(b, u.login).toHaveLength(1)
      expect(b[0]!.contact).toBe(`sip:${u.login}@127.0.0.1:${port};transport=UDP`)
    }
  }, 30_000)
})
