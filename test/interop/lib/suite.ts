import { afterEach, beforeEach } from 'vitest'
import type { TestNode } from '../../helpers/node.js'
import { Children, tempDir, type TempDir } from './tools.js'

/** The node, folder and tool processes of the running test of an interop suite. */
export interface NodePerTest {
  /** the running test's node */
  readonly n: TestNode
  /** the running test's temporary folder */
  readonly tmp: TempDir
  /** the tools (SIPp, baresip, …) the tests spawn */
  readonly children: Children
}

/**
 * Gives each test of the calling `describe` a fresh temporary folder and a node made by `start`; after each test the
 * tools' processes are killed, then the node is stopped and the folder removed.
 */
export function nodePerTest (prefix: string, start: (tmp: TempDir) => Promise<TestNode>): NodePerTest {
  const children = new Children()
  let n: TestNode | undefined
  let tmp: TempDir | undefined
  beforeEach(async () => {
    tmp = await tempDir(prefix)
    n = await start(tmp)
  })
  afterEach(async () => {
    await children.killAll()
    await n?.stop()
    n = undefined
    await tmp?.remove()
    tmp = undefined
  })
  return {
    children,
    get n () { if (n == null) throw new Error('no node outside a test'); return n },
    get tmp () { if (tmp == null) throw new Error('no folder outside a test'); return tmp }
  }
}
