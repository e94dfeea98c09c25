import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, tempDir, waitFor } from './lib/tools.js'
import { writeBaresipConfig } from './lib/baresip.js'

describe.skipIf(!has('baresip'))('baresip registers with the node', () => {
  let n: TestNode
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()

  beforeEach(async () => {
    n = await startNode()
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
    tmp = await tempDir('baresip')
  })
  afterEach(async () => {
    await children.killAll()
    await n.stop()
    await tmp.remove()
  })

  it('registers over UDP', async () => {
    const port = await freePort()
    await writeBaresipConfig(tmp.dir, { sipPort: port, accounts: [`<sip:alice@test-node;transport=udp>;auth_pass=pw-alice;outbound="sip:127.0.0.1:${n.udp}"`] })
    const child = children.spawn('baresip', ['-f', tmp.dir], { cwd: tmp.dir })
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { out += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { out += d })
    const ok = await waitFor(() => n.node.location.lookup('alice').length > 0, 5000)
    await new Promise(r => setTimeout(r, 500))
    console.log(out, n.node.location.lookup('alice'))
    expect(ok).toBe(true)
  }, 20_000)
})
