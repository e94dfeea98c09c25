// sipsak 0.9.8 as a probe: OPTIONS pings over UDP and TCP, and its usrloc mode (-U) registering with MD5 digest
// (qop=auth), un-registering with -x 0, and failing on a wrong password.
//
// Quirks of sipsak 0.9.8.1:
// - it writes 5-digit ports cut to 4 digits into the Request-URI (sip:127.0.0.1:41804 becomes :4180), though it
//   sends to the right port: the node gets a 4-digit port here;
// - without -H it looks up the host name for its Via; -H 127.0.0.1 keeps it off DNS;
// - usrloc mode asks for Expires: 15 unless -x says otherwise, which is below the node's min_expires (423);
// - usrloc mode puts "alice@" as digest username unless -u gives it;
// - it sends from one socket and listens on another unless -S (symmetric) with -l: without it the binding's flow
//   is its sending socket and the node flags the Contact as behind NAT.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, type RunResult } from './lib/tools.js'

describe.skipIf(!has('sipsak'))('sipsak against the node', () => {
  let n: TestNode
  /** the node's SIP port, UDP and TCP alike */
  let P: number
  const children = new Children()

  const sipsak = async (args: string[]): Promise<RunResult> =>
    await children.run('sipsak', ['-vv', '-H', '127.0.0.1', ...args], { timeoutMs: 10_000 })
  const shown = (r: RunResult): string => `exit ${String(r.code)}\n${r.stdout}\n${r.stderr}`.slice(0, 4000)

  beforeEach(async () => {
    // port 0 would give a 5-digit ephemeral port: bind a 4-digit one (retry once if another process took it first)
    for (let attempt = 0; ; attempt++) {
      P = await freePort(5100, 9999)
      try {
        n = await startNode({ config: { sip: { udp_port: P, tcp_port: P } } })
        break
      } catch (err) {
        if (attempt >= 2) throw err
      }
    }
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
  })
  afterEach(async () => {
    await children.killAll()
    await n.stop()
  })

  it('gets 200 to an OPTIONS ping over UDP', async () => {
    const r = await sipsak(['-s', `sip:127.0.0.1:${P}`])
    expect(r.code, shown(r)).toBe(0)
    expect(r.stdout).toMatch(/^SIP\/2\.0 200 OK/m)
    expect(r.stdout).toMatch(/^Allow: .*\bREGISTER\b/m)
  }, 15_000)

  it('gets 200 to an OPTIONS ping over TCP', async () => {
    const r = await sipsak(['-E', 'tcp', '-s', `sip:127.0.0.1:${P}`])
    expect(r.code, shown(r)).toBe(0)
    expect(r.stdout).toMatch(/^Via: SIP\/2\.0\/TCP .*;received=127\.0\.0\.1/m)
  }, 15_000)

  it('registers with digest auth in usrloc mode, then un-registers', async () => {
    const local = await freePort(5100, 9999)
    const reg = await sipsak(['-S', '-l', String(local), '-U', '-x', '120', '-u', 'alice', '-a', 'pw-alice', '-s', `sip:alice@127.0.0.1:${P}`])
    expect(reg.code, shown(reg)).toBe(0)
    expect(reg.stdout).toMatch(/All usrloc tests completed successful/)
    const bindings = n.node.location.lookup('alice')
    expect(bindings).toHaveLength(1)
    expect(bindings[0]).toMatchObject({
      contact: `sip:alice@127.0.0.1:${local}`,
      flow: { transport: 'UDP', remoteAddress: '127.0.0.1', remotePort: local },
      nat: false,
      userAgent: 'sipsak 0.9.8.1'
    })
    expect(bindings[0]!.expiresAt - Date.now()).toBeLessThanOrEqual(120_000)

    const unreg = await sipsak(['-S', '-l', String(local), '-U', '-x', '0', '-u', 'alice', '-a', 'pw-alice', '-s', `sip:alice@127.0.0.1:${P}`])
    expect(unreg.code, shown(unreg)).toBe(0)
    expect(n.node.location.lookup('alice')).toHaveLength(0)
  }, 20_000)

  it('fails to register with a wrong password', async () => {
    const r = await sipsak(['-U', '-x', '120', '-u', 'alice', '-a', 'not-the-password', '-s', `sip:alice@127.0.0.1:${P}`])
    // the node challenges again; sipsak gives up as its request already carried credentials
    expect(r.code, shown(r)).not.toBe(0)
    expect(r.stdout + r.stderr).toMatch(/authorization failed/)
    expect(n.node.location.lookup('alice')).toHaveLength(0)
  }, 15_000)
})
