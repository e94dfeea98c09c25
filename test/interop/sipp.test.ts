import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { startNode, type TestNode } from '../helpers/node.js'
import { Children, freePort, has, tempDir } from './lib/tools.js'
import { runSipp, writeUsersCsv } from './lib/sipp.js'

describe.skipIf(!has('sipp'))('SIPp registers with the node', () => {
  let n: TestNode
  let tmp: { dir: string, remove: () => Promise<void> }
  const children = new Children()

  beforeEach(async () => {
    n = await startNode()
    await n.node.users.add({ login: 'alice', password: 'pw-alice' })
    tmp = await tempDir('sipp')
  })
  afterEach(async () => {
    await children.killAll()
    await n.stop()
    await tmp.remove()
  })

  it('REGISTER with digest over UDP', async () => {
    const inf = await writeUsersCsv(join(tmp.dir, 'users.csv'), [{ login: 'alice', password: 'pw-alice' }])
    const port = await freePort()
    const r = await runSipp(children, { scenario: 'register-auth.xml', transport: 'u1', remotePort: n.udp, localPort: port, inf, dir: tmp.dir })
    console.log(r, n.node.location.lookup('alice'))
    expect(r.code).toBe(0)
  }, 20_000)
})
