import type { M1Node } from '../../src/node.js'
import type { CallRecord } from '../../src/routing/index.js'

/** The node's call records once at least `count` are written (a call's record is written as it ends, asynchronously). */
export async function waitForRecords (node: M1Node, count: number, timeoutMs = 3000): Promise<CallRecord[]> {
  const end = Date.now() + timeoutMs
  let recs = await node.records.list()
  while (recs.length < count && Date.now() < end) {
    await new Promise(resolve => setTimeout(resolve, 20))
    recs = await node.records.list()
  }
  return recs
}
